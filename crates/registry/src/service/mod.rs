//! The registry's operations, and every invariant they keep: a blob becomes visible only
//! whole and verified, a repository link is written only after its blob, a manifest only
//! after everything it references is there, and nothing is read through a name the spec's
//! grammar did not accept. The HTTP layer above only translates.

mod blobs;
mod listing;
mod manifests;
mod uploads;

pub use blobs::BlobRange;
pub use listing::Page;
pub use manifests::{Manifest, Pushed};
pub use uploads::{Committed, UploadStatus};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::errcode::{ApiError, Code};
use crate::storage::Storage;

/// What the registry allows.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest manifest accepted, in bytes (the spec asks for at least 4 MiB).
    pub max_manifest: usize,
    /// `DELETE` of blobs and manifests.
    pub delete: bool,
    /// Refuse every write (a replica, or during maintenance).
    pub read_only: bool,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_manifest: 4 << 20,
            delete: true,
            read_only: false,
        }
    }
}

/// The registry's service: every invariant of the distribution spec (digests verified
/// before anything is visible, links written after their blobs, one writer per upload)
/// over a deliberately dumb [`Storage`]. Handlers call it; it never sees HTTP.
pub struct Registry {
    storage: Arc<dyn Storage>,
    limits: Limits,
    /// sha256 state of uploads in progress in this process, by session: the digest is
    /// computed as the bytes arrive. A session this process did not see (after a restart,
    /// or on another replica) is hashed from storage when it closes.
    hashing: Mutex<HashMap<String, uploads::Hashing>>,
    /// Sessions with a request writing or closing them: one at a time, so a close never
    /// verifies and renames bytes a chunk is still appending to.
    busy: Arc<Mutex<std::collections::HashSet<String>>>,
}

impl Registry {
    /// The service over `storage`, with `limits`.
    pub fn new(storage: Arc<dyn Storage>, limits: Limits) -> Registry {
        Registry {
            storage,
            limits,
            hashing: Mutex::new(HashMap::new()),
            busy: Arc::default(),
        }
    }

    /// The storage underneath (for garbage collection).
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The largest manifest accepted, in bytes.
    pub fn max_manifest(&self) -> usize {
        self.limits.max_manifest
    }

    fn writable(&self) -> Result<(), ApiError> {
        if self.limits.read_only {
            Err(ApiError::new(
                Code::Unsupported,
                "this registry is read-only",
            ))
        } else {
            Ok(())
        }
    }

    fn deletable(&self) -> Result<(), ApiError> {
        self.writable()?;
        if self.limits.delete {
            Ok(())
        } else {
            Err(ApiError::new(
                Code::Unsupported,
                "deleting is turned off in this registry's configuration",
            ))
        }
    }
}
