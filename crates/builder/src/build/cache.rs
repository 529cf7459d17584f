//! The build cache: a step's key is the digest of its parent's key, the expanded
//! instruction, the build arguments it sees and, for COPY, the content of its sources.
//! A hit is a record `KILN_ROOT/buildcache/<key>` naming the layer the step made.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::Error;

/// What a cached step produced.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// The layer's diffID (also its blob digest: build layers are uncompressed), or None
    /// when the step changed nothing.
    pub diff_id: Option<String>,
}

pub struct Cache {
    dir: PathBuf,
}

pub fn key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

impl Cache {
    pub fn new(root: &Path) -> Result<Cache, Error> {
        let dir = root.join("buildcache");
        std::fs::create_dir_all(&dir).map_err(|e| Error::Read {
            path: dir.clone(),
            source: e,
        })?;
        Ok(Cache { dir })
    }

    pub fn get(&self, key: &str) -> Option<Record> {
        serde_json::from_slice(&std::fs::read(self.dir.join(key)).ok()?).ok()
    }

    /// Written through a temporary file and a rename: concurrent builds see a record whole
    /// or not at all.
    pub fn put(&self, key: &str, record: &Record) -> Result<(), Error> {
        let tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| Error::Read {
            path: self.dir.clone(),
            source: e,
        })?;
        serde_json::to_writer(tmp.as_file(), record)
            .map_err(|e| Error::Context(format!("cache record: {e}")))?;
        tmp.persist(self.dir.join(key)).map_err(|e| Error::Read {
            path: self.dir.join(key),
            source: e.error,
        })?;
        Ok(())
    }
}
