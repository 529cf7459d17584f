//! The S3 backend (any S3-compatible service, through the `object_store` crate), so that
//! several registry processes can serve one bucket. S3 has no append: each chunk of an
//! upload is an object of its own (`<path>.parts/<offset>`), and closing the upload
//! streams them into the blob with a multipart upload, which becomes visible whole or
//! not at all. Listings follow S3's pagination (the crate pages through them).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use super::{ByteStream, Meta, Storage};
use crate::config::S3Config;
use crate::Error;

/// Objects in an S3-compatible bucket, under a prefix: several registries can serve one
/// bucket (all state is in it).
pub struct S3Storage {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

fn failed(op: &'static str, path: &str) -> impl FnOnce(object_store::Error) -> Error {
    let path = path.to_string();
    move |e| match e {
        object_store::Error::NotFound { .. } => Error::NotFound(path),
        e => Error::Io {
            op,
            path: path.into(),
            source: std::io::Error::other(e.to_string()),
        },
    }
}

impl S3Storage {
    /// Credentials come from the configuration or the usual `AWS_*` variables.
    pub fn open(config: &S3Config) -> Result<S3Storage, Error> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&config.bucket);
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret);
        }
        let store = builder.build().map_err(|e| Error::Config {
            path: "storage.s3".into(),
            message: e.to_string(),
        })?;
        Ok(S3Storage {
            store: Arc::new(store),
            prefix: config
                .prefix
                .clone()
                .unwrap_or_default()
                .trim_matches('/')
                .to_string(),
        })
    }

    fn key(&self, path: &str) -> ObjectPath {
        let path = path.trim_matches('/');
        if self.prefix.is_empty() {
            ObjectPath::from(path)
        } else {
            ObjectPath::from(format!("{}/{path}", self.prefix))
        }
    }

    fn parts_dir(&self, path: &str) -> ObjectPath {
        self.key(&format!("{}.parts", path.trim_end_matches('/')))
    }

    /// The chunks of an appended object, in order: (key, offset, size).
    async fn parts(&self, path: &str) -> Result<Vec<(ObjectPath, u64, u64)>, Error> {
        let dir = self.parts_dir(path);
        let mut parts: Vec<(ObjectPath, u64, u64)> = self
            .store
            .list(Some(&dir))
            .map_ok(|m| {
                let offset = m
                    .location
                    .filename()
                    .and_then(|f| f.parse().ok())
                    .unwrap_or(0);
                (m.location, offset, m.size)
            })
            .try_collect()
            .await
            .map_err(failed("list", path))?;
        parts.sort_by_key(|p| p.1);
        Ok(parts)
    }

    async fn delete_prefix(&self, prefix: &ObjectPath, path: &str) -> Result<(), Error> {
        let keys: Vec<ObjectPath> = self
            .store
            .list(Some(prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(failed("list", path))?;
        for key in keys {
            match self.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(failed("delete", path)(e)),
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Storage for S3Storage {
    async fn get(&self, path: &str) -> Result<Bytes, Error> {
        let result = self
            .store
            .get(&self.key(path))
            .await
            .map_err(failed("read", path))?;
        result.bytes().await.map_err(failed("read", path))
    }

    async fn put(&self, path: &str, data: Bytes) -> Result<(), Error> {
        self.store
            .put(&self.key(path), PutPayload::from_bytes(data))
            .await
            .map_err(failed("write", path))?;
        Ok(())
    }

    async fn stat(&self, path: &str) -> Result<Option<Meta>, Error> {
        match self.store.head(&self.key(path)).await {
            Ok(m) => Ok(Some(Meta {
                size: m.size,
                modified: m.last_modified.into(),
            })),
            Err(object_store::Error::NotFound { .. }) => {
                let parts = self.parts(path).await?;
                if parts.is_empty() {
                    return Ok(None);
                }
                let size = parts.iter().map(|p| p.2).sum();
                let last = self
                    .store
                    .head(&parts[parts.len() - 1].0)
                    .await
                    .map_err(failed("stat", path))?;
                Ok(Some(Meta {
                    size,
                    modified: last.last_modified.into(),
                }))
            }
            Err(e) => Err(failed("stat", path)(e)),
        }
    }

    async fn reader(&self, path: &str, offset: u64, len: Option<u64>) -> Result<ByteStream, Error> {
        let key = self.key(path);
        let range = match len {
            Some(0) => return Ok(Box::pin(futures_util::stream::empty())),
            Some(n) => GetRange::Bounded(offset..offset + n),
            None if offset == 0 => {
                // An appended object (an upload's bytes) reads as its chunks in order.
                if matches!(
                    self.store.head(&key).await,
                    Err(object_store::Error::NotFound { .. })
                ) {
                    let parts = self.parts(path).await?;
                    if parts.is_empty() {
                        return Err(Error::NotFound(path.to_string()));
                    }
                    let store = self.store.clone();
                    let stream = futures_util::stream::iter(parts)
                        .then(move |(k, _, _)| {
                            let store = store.clone();
                            async move { store.get(&k).await.map(|r| r.into_stream()) }
                        })
                        .try_flatten()
                        .map_err(|e| std::io::Error::other(e.to_string()));
                    return Ok(Box::pin(stream));
                }
                return self.whole(path, key).await;
            }
            None => GetRange::Offset(offset),
        };
        let opts = GetOptions {
            range: Some(range),
            ..Default::default()
        };
        let result = self
            .store
            .get_opts(&key, opts)
            .await
            .map_err(failed("read", path))?;
        Ok(Box::pin(
            result
                .into_stream()
                .map_err(|e| std::io::Error::other(e.to_string())),
        ))
    }

    async fn append(&self, path: &str, offset: u64, mut data: ByteStream) -> Result<u64, Error> {
        let size = self.stat(path).await?.map_or(0, |m| m.size);
        if size != offset {
            return Err(Error::Offset {
                path: path.to_string(),
                expected: offset,
                actual: size,
            });
        }
        // The chunk streams into one object, named by where it starts.
        let key = ObjectPath::from(format!("{}/{offset:020}", self.parts_dir(path)));
        let upload = self
            .store
            .put_multipart(&key)
            .await
            .map_err(failed("write", path))?;
        let mut writer = WriteMultipart::new(upload);
        let mut written = 0u64;
        let mut broke = None;
        while let Some(chunk) = data.next().await {
            match chunk {
                Ok(bytes) => {
                    writer
                        .wait_for_capacity(4)
                        .await
                        .map_err(failed("write", path))?;
                    written += bytes.len() as u64;
                    writer.put(bytes);
                }
                Err(e) => {
                    broke = Some(e.to_string());
                    break;
                }
            }
        }
        if written > 0 {
            writer.finish().await.map_err(failed("write", path))?;
        } else {
            let _ = writer.abort().await;
        }
        match broke {
            Some(why) => Err(Error::Body(why)),
            None => Ok(offset + written),
        }
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), Error> {
        let (src, dst) = (self.key(from), self.key(to));
        match self.store.head(&src).await {
            Ok(_) => {
                self.store
                    .copy(&src, &dst)
                    .await
                    .map_err(failed("copy", from))?;
                return self
                    .store
                    .delete(&src)
                    .await
                    .map_err(failed("delete", from));
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(failed("stat", from)(e)),
        }
        let parts = self.parts(from).await?;
        if parts.is_empty() {
            return Err(Error::NotFound(from.to_string()));
        }
        // The chunks stream into the target with a multipart upload: the blob appears
        // whole when it completes, or not at all.
        let mut stream = self.reader(from, 0, None).await?;
        let upload = self
            .store
            .put_multipart(&dst)
            .await
            .map_err(failed("write", to))?;
        let mut writer = WriteMultipart::new(upload);
        while let Some(chunk) = stream.next().await {
            let bytes = chunk.map_err(Error::io("read", from))?;
            writer
                .wait_for_capacity(4)
                .await
                .map_err(failed("write", to))?;
            writer.put(bytes);
        }
        writer.finish().await.map_err(failed("write", to))?;
        self.delete_prefix(&self.parts_dir(from), from).await
    }

    async fn delete(&self, path: &str) -> Result<(), Error> {
        match self.store.delete(&self.key(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(failed("delete", path)(e)),
        }
        self.delete_prefix(&self.parts_dir(path), path).await?;
        self.delete_prefix(&self.key(path), path).await
    }

    async fn list(&self, path: &str) -> Result<Vec<String>, Error> {
        let key = self.key(path);
        let listing = self
            .store
            .list_with_delimiter(Some(&key))
            .await
            .map_err(failed("list", path))?;
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .map(|p| p.filename().unwrap_or_default().to_string())
            .chain(
                listing
                    .objects
                    .iter()
                    .map(|o| o.location.filename().unwrap_or_default().to_string()),
            )
            // An appended object is listed under its own name.
            .map(|n| n.strip_suffix(".parts").map(str::to_string).unwrap_or(n))
            .filter(|n| !n.is_empty())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}

impl S3Storage {
    async fn whole(&self, path: &str, key: ObjectPath) -> Result<ByteStream, Error> {
        let result = self.store.get(&key).await.map_err(failed("read", path))?;
        Ok(Box::pin(
            result
                .into_stream()
                .map_err(|e| std::io::Error::other(e.to_string())),
        ))
    }
}
