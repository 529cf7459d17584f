//! The filesystem backend: objects are files under a root directory. Whole writes go
//! through a temporary file, fsync and rename; a `kill -9` leaves at most a temporary
//! file (in `_tmp/`, never read, removed at start).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use kiln_image::writeback::Writeback;

use super::{pieces, ByteStream, Meta, Storage};
use crate::Error;

/// Objects as files under a root directory.
pub struct FsStorage {
    root: PathBuf,
}

impl FsStorage {
    /// Storage under `root` (made if missing). Clears what killed writers left: temporary
    /// files older than an hour (younger ones may belong to another process serving the
    /// same root, or to `kiln registry gc` running beside it).
    pub fn open(root: impl Into<PathBuf>) -> Result<FsStorage, Error> {
        let root = root.into();
        let tmp = root.join("_tmp");
        std::fs::create_dir_all(&tmp).map_err(Error::io("create", &tmp))?;
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for entry in std::fs::read_dir(&tmp)
            .map_err(Error::io("list", &tmp))?
            .flatten()
        {
            if entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < hour_ago)
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(FsStorage { root })
    }

    fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    async fn parent(&self, path: &Path) -> Result<(), Error> {
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(Error::io("create", dir))?;
        }
        Ok(())
    }
}

fn not_found(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound
}

#[async_trait::async_trait]
impl Storage for FsStorage {
    async fn get(&self, path: &str) -> Result<Bytes, Error> {
        let p = self.path(path);
        match tokio::fs::read(&p).await {
            Ok(data) => Ok(Bytes::from(data)),
            Err(e) if not_found(&e) => Err(Error::NotFound(path.to_string())),
            Err(e) => Err(Error::io("read", &p)(e)),
        }
    }

    async fn put(&self, path: &str, data: Bytes) -> Result<(), Error> {
        let target = self.path(path);
        self.parent(&target).await?;
        let tmp = self
            .root
            .join("_tmp")
            .join(format!("put-{}", uuid::Uuid::new_v4().simple()));
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(Error::io("create", &tmp))?;
        file.write_all(&data)
            .await
            .map_err(Error::io("write", &tmp))?;
        file.sync_all().await.map_err(Error::io("sync", &tmp))?;
        drop(file);
        tokio::fs::rename(&tmp, &target)
            .await
            .map_err(Error::io("rename into", &target))
    }

    async fn stat(&self, path: &str) -> Result<Option<Meta>, Error> {
        let p = self.path(path);
        match tokio::fs::metadata(&p).await {
            Ok(m) if m.is_file() => Ok(Some(Meta {
                size: m.len(),
                modified: m.modified().map_err(Error::io("stat", &p))?,
            })),
            Ok(_) => Ok(None),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(Error::io("stat", &p)(e)),
        }
    }

    async fn reader(&self, path: &str, offset: u64, len: Option<u64>) -> Result<ByteStream, Error> {
        let p = self.path(path);
        let mut file = match tokio::fs::File::open(&p).await {
            Ok(f) => f.into_std().await,
            Err(e) if not_found(&e) => return Err(Error::NotFound(path.to_string())),
            Err(e) => return Err(Error::io("open", &p)(e)),
        };
        // One blocking task reads the file in megabyte pieces straight into the buffers
        // that are sent, a piece ahead of the socket: tokio's own file reads through a
        // buffer of its own (a second copy) and one blocking trip per read.
        let (out, stream) = tokio::sync::mpsc::channel(1);
        tokio::task::spawn_blocking(move || {
            let mut at = offset;
            // No piece larger than what is left of the file: a small blob takes a small
            // buffer.
            let size = file.metadata().map_or(u64::MAX, |m| m.len());
            let end = len.map_or(size, |l| offset.saturating_add(l).min(size));
            if let Err(e) = file.seek(SeekFrom::Start(offset)) {
                let _ = out.blocking_send(Err(e));
                return;
            }
            while at < end {
                let want = (end - at).min(pieces::PIECE as u64);
                // A small blob (a config, an attestation) takes a buffer of its size.
                let mut buf = match want < pieces::PIECE as u64 && at == offset {
                    true => Vec::with_capacity(want as usize),
                    false => pieces::take(),
                };
                let piece = match (&mut file).take(want).read_to_end(&mut buf) {
                    Ok(0) => {
                        pieces::give_back(buf);
                        break;
                    }
                    Ok(n) => {
                        at += n as u64;
                        Ok(pieces::into_bytes(buf))
                    }
                    Err(e) => Err(e),
                };
                let failed = piece.is_err();
                // The client went away: stop reading.
                if out.blocking_send(piece).is_err() || failed {
                    break;
                }
            }
        });
        Ok(Box::pin(futures_util::stream::unfold(
            stream,
            |mut stream| async move { stream.recv().await.map(|piece| (piece, stream)) },
        )))
    }

    async fn append(&self, path: &str, offset: u64, mut data: ByteStream) -> Result<u64, Error> {
        let p = self.path(path);
        self.parent(&p).await?;
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .await
            .map_err(Error::io("open", &p))?;
        let mut size = file.metadata().await.map_err(Error::io("stat", &p))?.len();
        if size != offset {
            return Err(Error::Offset {
                path: path.to_string(),
                expected: offset,
                actual: size,
            });
        }
        // Chunks arrive in tens of kilobytes; each write to a tokio file is a trip to
        // the blocking pool, so they are gathered first. Into 256 KiB, not a megabyte:
        // the tokio file keeps a buffer as large, and eight pushes at once with megabyte
        // buffers left the server 10 MiB larger for good (the allocator keeps what was
        // freed). The cost, if any, is in the one-stream push: 250 MiB/s in the bench
        // against 270-350 with megabytes, inside the spread of this machine's disk.
        let mut file = tokio::io::BufWriter::with_capacity(256 << 10, file);
        let mut writeback = Writeback::default();
        let mut result = Ok(());
        while let Some(chunk) = data.next().await {
            match chunk {
                Ok(bytes) => {
                    file.write_all(&bytes)
                        .await
                        .map_err(Error::io("write", &p))?;
                    size += bytes.len() as u64;
                    // The data goes to disk while more arrives, so the fsync before the
                    // blob becomes visible has little left to do.
                    if writeback.due(bytes.len() as u64) {
                        file.flush().await.map_err(Error::io("write", &p))?;
                        let clone = file
                            .get_ref()
                            .try_clone()
                            .await
                            .map_err(Error::io("sync", &p))?;
                        writeback.start(clone.into_std().await);
                    }
                }
                Err(e) => {
                    result = Err(Error::Body(e.to_string()));
                    break;
                }
            }
        }
        file.flush().await.map_err(Error::io("write", &p))?;
        result.map(|()| size)
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), Error> {
        let (f, t) = (self.path(from), self.path(to));
        self.parent(&t).await?;
        // The data reaches the disk before its name becomes visible.
        if let Ok(file) = tokio::fs::File::open(&f).await {
            file.sync_all().await.map_err(Error::io("sync", &f))?;
        }
        match tokio::fs::rename(&f, &t).await {
            Err(e) if not_found(&e) => Err(Error::NotFound(from.to_string())),
            other => other.map_err(Error::io("rename into", &t)),
        }
    }

    async fn delete(&self, path: &str) -> Result<(), Error> {
        let p = self.path(path);
        let removed = match tokio::fs::symlink_metadata(&p).await {
            Ok(m) if m.is_dir() => tokio::fs::remove_dir_all(&p).await,
            Ok(_) => tokio::fs::remove_file(&p).await,
            Err(e) => Err(e),
        };
        match removed {
            Err(e) if !not_found(&e) => Err(Error::io("remove", &p)(e)),
            _ => Ok(()),
        }
    }

    async fn list(&self, path: &str) -> Result<Vec<String>, Error> {
        let p = self.path(path);
        let mut dir = match tokio::fs::read_dir(&p).await {
            Ok(d) => d,
            Err(e) if not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list", &p)(e)),
        };
        let mut names = Vec::new();
        while let Some(entry) = dir.next_entry().await.map_err(Error::io("list", &p))? {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }
}
