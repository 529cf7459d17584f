//! Upload sessions: start (or mount), chunks in order, status, cancel, and the close that
//! verifies the digest and makes the blob visible in one rename.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use kiln_image::digest::{Digest, Hasher};

use super::Registry;
use crate::errcode::{ApiError, Code};
use crate::names::valid_name;
use crate::paths;
use crate::storage::ByteStream;
use crate::Error;

/// The sha256 of a session's bytes so far, and how many it has seen.
pub(super) struct Hashing {
    hasher: Arc<Mutex<Hasher>>,
    offset: u64,
}

/// Where an upload stands: its bytes so far.
#[derive(Debug, Clone)]
pub struct UploadStatus {
    /// The session's id.
    pub session: String,
    /// How many bytes it has received, in order.
    pub size: u64,
}

/// A session's single writer: held while a request appends to or closes it, released
/// when the request ends, however it ends (a client that goes away drops it too).
struct Writer {
    busy: Arc<Mutex<HashSet<String>>>,
    session: String,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.busy.lock().expect("busy lock").remove(&self.session);
    }
}

/// A blob that is now in the repository.
#[derive(Debug, Clone)]
pub struct Committed {
    /// Its digest, as verified.
    pub digest: Digest,
}

impl Registry {
    /// Starts an upload session in `name`.
    pub async fn start_upload(&self, name: &str) -> Result<UploadStatus, ApiError> {
        self.writable()?;
        let session = uuid::Uuid::new_v4().simple().to_string();
        let now = humantime::format_rfc3339(std::time::SystemTime::now()).to_string();
        self.storage
            .put(&paths::upload_started(name, &session), Bytes::from(now))
            .await?;
        Ok(UploadStatus { session, size: 0 })
    }

    /// Links a blob `from` holds into `name`: true when done, false when `from` does not
    /// hold it (the caller then starts an ordinary upload, as the spec says).
    pub async fn mount(&self, name: &str, d: &Digest, from: &str) -> Result<bool, ApiError> {
        self.writable()?;
        if !valid_name(from) || !self.linked(from, d).await? {
            return Ok(false);
        }
        if self.storage.stat(&paths::blob(d)).await?.is_none() {
            return Ok(false);
        }
        self.link(name, d).await?;
        Ok(true)
    }

    async fn link(&self, name: &str, d: &Digest) -> Result<(), Error> {
        self.storage
            .put(&paths::layer_link(name, d), Bytes::from(d.to_string()))
            .await
    }

    /// The session's bytes so far; BLOB_UPLOAD_UNKNOWN when there is no such session.
    pub async fn upload_status(&self, name: &str, session: &str) -> Result<UploadStatus, ApiError> {
        if self
            .storage
            .stat(&paths::upload_started(name, session))
            .await?
            .is_none()
        {
            return Err(ApiError::new(
                Code::BlobUploadUnknown,
                format!("no upload session {session} in {name}: start a new upload"),
            ));
        }
        let size = self
            .storage
            .stat(&paths::upload_data(name, session))
            .await?
            .map_or(0, |m| m.size);
        Ok(UploadStatus {
            session: session.to_string(),
            size,
        })
    }

    /// Takes the session for this request; a second request while one writes it gets
    /// 416 BLOB_UPLOAD_INVALID, as a chunk out of order does.
    fn writer(&self, session: &str) -> Result<Writer, ApiError> {
        if !self
            .busy
            .lock()
            .expect("busy lock")
            .insert(session.to_string())
        {
            return Err(ApiError::new(
                Code::RangeInvalid,
                format!("another request is writing upload {session}: send its chunks one at a time, and close it after the last"),
            ));
        }
        Ok(Writer {
            busy: self.busy.clone(),
            session: session.to_string(),
        })
    }

    /// Appends a chunk. `start`, from `Content-Range`, must be where the upload stands
    /// (416 otherwise, with the current range).
    pub async fn append(
        &self,
        name: &str,
        session: &str,
        start: Option<u64>,
        body: ByteStream,
    ) -> Result<UploadStatus, ApiError> {
        self.writable()?;
        let _writer = self.writer(session)?;
        self.append_locked(name, session, start, body).await
    }

    async fn append_locked(
        &self,
        name: &str,
        session: &str,
        start: Option<u64>,
        body: ByteStream,
    ) -> Result<UploadStatus, ApiError> {
        let status = self.upload_status(name, session).await?;
        if start.is_some_and(|s| s != status.size) {
            return Err(ApiError::new(
                Code::RangeInvalid,
                format!(
                    "the upload has {} bytes: the next chunk starts there",
                    status.size
                ),
            ));
        }
        let hasher = {
            let mut hashing = self.hashing.lock().expect("hashing lock");
            match hashing.remove(session) {
                Some(h) if h.offset == status.size => Some(h.hasher),
                _ if status.size == 0 => Some(Arc::new(Mutex::new(Hasher::sha256()))),
                _ => None,
            }
        };
        let body: ByteStream = match &hasher {
            Some(h) => {
                let h = h.clone();
                Box::pin(body.map(move |chunk| {
                    if let Ok(bytes) = &chunk {
                        h.lock().expect("hasher lock").update(bytes);
                    }
                    chunk
                }))
            }
            None => body,
        };
        let data = paths::upload_data(name, session);
        let size = match self.storage.append(&data, status.size, body).await {
            Ok(size) => size,
            Err(Error::Offset { actual, .. }) => {
                return Err(ApiError::new(
                    Code::RangeInvalid,
                    format!("the upload has {actual} bytes: the next chunk starts there"),
                ))
            }
            // What arrived is kept; the client may go on from the new status.
            Err(e) => return Err(e.into()),
        };
        if let Some(hasher) = hasher {
            self.hashing.lock().expect("hashing lock").insert(
                session.to_string(),
                Hashing {
                    hasher,
                    offset: size,
                },
            );
        }
        Ok(UploadStatus {
            session: session.to_string(),
            size,
        })
    }

    /// Closes the session: appends the last chunk, checks the bytes against `digest`, and
    /// makes the blob visible (a rename) and linked into `name`. A mismatch discards the
    /// session and stores nothing.
    pub async fn commit(
        &self,
        name: &str,
        session: &str,
        digest: &Digest,
        last: Option<(Option<u64>, ByteStream)>,
    ) -> Result<Committed, ApiError> {
        self.writable()?;
        let _writer = self.writer(session)?;
        if let Some((start, body)) = last {
            self.append_locked(name, session, start, body).await?;
        }
        let status = self.upload_status(name, session).await?;
        let data = paths::upload_data(name, session);
        let hashed = self.hashing.lock().expect("hashing lock").remove(session);
        let actual = match hashed {
            Some(h)
                if h.offset == status.size
                    && digest.algorithm() == &oci_spec::image::DigestAlgorithm::Sha256 =>
            {
                let hasher = Arc::try_unwrap(h.hasher)
                    .map(|m| m.into_inner().expect("hasher lock"))
                    .unwrap_or_else(|shared| shared.lock().expect("hasher lock").clone());
                hasher.finish()
            }
            _ => self.hash_stored(&data, status.size, digest).await?,
        };
        if &actual != digest {
            self.storage.delete(&paths::upload(name, session)).await?;
            return Err(ApiError::with(
                Code::DigestInvalid,
                serde_json::json!({"expected": digest.to_string(), "received": actual.to_string(), "size": status.size}),
            ));
        }
        let blob = paths::blob(digest);
        if self.storage.stat(&blob).await?.is_none() {
            if status.size == 0 {
                self.storage.put(&blob, Bytes::new()).await?;
            } else {
                self.storage.rename(&data, &blob).await?;
            }
        }
        self.link(name, digest).await?;
        self.storage.delete(&paths::upload(name, session)).await?;
        Ok(Committed {
            digest: digest.clone(),
        })
    }

    /// Hashes what a session stored (a session another process started, or a digest
    /// other than sha256).
    async fn hash_stored(&self, data: &str, size: u64, digest: &Digest) -> Result<Digest, Error> {
        let mut hasher = Hasher::for_digest(digest);
        if size > 0 {
            let mut stream = self.storage.reader(data, 0, None).await?;
            while let Some(chunk) = stream.next().await {
                hasher.update(&chunk.map_err(Error::io("read", data))?);
            }
        }
        Ok(hasher.finish())
    }

    /// Cancels the session and drops its bytes.
    pub async fn cancel_upload(&self, name: &str, session: &str) -> Result<(), ApiError> {
        self.writable()?;
        let _writer = self.writer(session)?;
        self.upload_status(name, session).await?;
        self.hashing.lock().expect("hashing lock").remove(session);
        self.storage.delete(&paths::upload(name, session)).await?;
        Ok(())
    }
}
