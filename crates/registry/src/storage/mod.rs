//! Where the registry keeps everything: a deliberately dumb store of objects by path
//! (see [`crate::paths`] for the tree). All registry state lives in it, never in a local
//! database, so several registry processes can share one. The invariants (digests
//! verified, links written after blobs, nothing half-written visible) belong to the
//! service above; a backend only promises what each method says.

mod fs;
mod pieces;
mod s3;

pub use fs::FsStorage;
pub use s3::S3Storage;

use std::pin::Pin;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::Stream;

use crate::Error;

/// A stream of bytes in or out of storage.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// What [`Storage::stat`] tells.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    /// Its length in bytes.
    pub size: u64,
    /// When it was last written (garbage collection keeps what is younger than its grace).
    pub modified: SystemTime,
}

/// A path-keyed object store (distribution's storage driver): get, put, stat, read,
/// append, rename, delete, list, and no more. Paths are those of [`crate::paths`].
#[async_trait::async_trait]
pub trait Storage: Send + Sync + 'static {
    /// The whole object (for small ones: links, tags, manifests). `Error::NotFound` when
    /// there is none.
    async fn get(&self, path: &str) -> Result<Bytes, Error>;
    /// Writes the object whole and atomically: a reader sees the old one or the new one.
    async fn put(&self, path: &str, data: Bytes) -> Result<(), Error>;
    /// Size and modification time, or None when there is no object at `path`.
    async fn stat(&self, path: &str) -> Result<Option<Meta>, Error>;
    /// `len` bytes (to the end when None) from `offset`, streamed.
    async fn reader(&self, path: &str, offset: u64, len: Option<u64>) -> Result<ByteStream, Error>;
    /// Appends the stream to the object (made empty if missing), which must be `offset`
    /// bytes long now; returns its new size. What arrived before a failure stays.
    async fn append(&self, path: &str, offset: u64, data: ByteStream) -> Result<u64, Error>;
    /// Moves an object, atomically replacing any at `to`.
    async fn rename(&self, from: &str, to: &str) -> Result<(), Error>;
    /// Removes the object, or everything under `path/`; nothing there is not an error.
    async fn delete(&self, path: &str) -> Result<(), Error>;
    /// The names directly under `path/` (objects and prefixes), sorted; none when absent.
    async fn list(&self, path: &str) -> Result<Vec<String>, Error>;
}

/// The storage a configuration names: its S3 bucket, or else its directory.
pub fn open(config: &crate::config::StorageConfig) -> Result<std::sync::Arc<dyn Storage>, Error> {
    match (&config.s3, &config.root) {
        (Some(s3), _) => Ok(std::sync::Arc::new(S3Storage::open(s3)?)),
        (None, Some(root)) => Ok(std::sync::Arc::new(FsStorage::open(root)?)),
        (None, None) => Err(Error::Config {
            path: "storage".into(),
            message: "no storage: set storage.root (or --root) or storage.s3".into(),
        }),
    }
}
