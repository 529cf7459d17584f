//! The build cache: a step's key is the digest of its parent's key, the expanded
//! instruction, the build arguments it sees and, for COPY, the content of its sources.
//! A hit is a record `KILN_ROOT/buildcache/<key>` naming the layer the step made.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use kiln_image::digest::DiffId;

use crate::Error;

/// What a cached step produced.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// The layer's diffID (also its blob digest: build layers are uncompressed), or None
    /// when the step changed nothing.
    pub diff_id: Option<DiffId>,
    /// For a COPY --from keyed by its source's cache key: the key made from the content
    /// it copied, which the next step takes as its parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then: Option<CacheKey>,
    /// When the step ran (RFC 3339): its history entry keeps this time on a cache hit,
    /// as BuildKit's does, so a rebuild from the cache gives the same image ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

pub struct Cache {
    dir: PathBuf,
}

/// What a step was built from last time, to say why it misses the cache now.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Inputs {
    pub parent: String,
    pub instruction: String,
    pub environment: String,
    /// COPY/ADD sources: path → mode and content digest.
    pub files: std::collections::BTreeMap<String, String>,
    /// The layer the step made from these inputs (its diffID), if any.
    #[serde(default)]
    pub result: Option<DiffId>,
}

impl Inputs {
    /// Whether only the sources' content differs from `before` (nothing removed): the
    /// step can start from its previous result and copy just what changed.
    pub fn only_files_changed_from(&self, before: &Inputs) -> bool {
        before.parent == self.parent
            && before.instruction == self.instruction
            && before.environment == self.environment
            && before.files.keys().all(|k| self.files.contains_key(k))
    }

    /// Why `self` (now) misses where `before` was built.
    pub fn why_not(&self, before: Option<&Inputs>) -> String {
        let Some(before) = before else {
            return "not built before".into();
        };
        if before.parent != self.parent {
            return "an earlier step changed".into();
        }
        if before.instruction != self.instruction {
            return "the instruction changed (after expansion)".into();
        }
        if before.environment != self.environment {
            return "a build argument, ENV, USER or WORKDIR it sees changed".into();
        }
        if before.files == self.files {
            return "its cached result is gone (pruned)".into();
        }
        let changed = self
            .files
            .iter()
            .find(|(p, d)| before.files.get(*p) != Some(*d))
            .map(|(p, _)| p.clone());
        let removed = before
            .files
            .keys()
            .find(|p| !self.files.contains_key(*p))
            .cloned();
        match (changed, removed) {
            (Some(p), _) if before.files.contains_key(&p) => format!("source file changed: {p}"),
            (Some(p), _) => format!("source file added: {p}"),
            (None, Some(p)) => format!("source file removed: {p}"),
            (None, None) => "its sources changed".into(),
        }
    }
}

/// A cache key: the sha256 of its parts, each length-prefixed (so no two lists of parts
/// give one key). Written as its 64 hex digits (file names, records, registry caches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey([u8; 32]);

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::str::FromStr for CacheKey {
    type Err = String;

    fn from_str(s: &str) -> Result<CacheKey, String> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|e| format!("cache key {s:?}: {e}"))?;
        Ok(CacheKey(bytes))
    }
}

impl serde::Serialize for CacheKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CacheKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<CacheKey, D::Error> {
        let s = <std::borrow::Cow<str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

pub fn key(parts: &[&str]) -> CacheKey {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    CacheKey(h.finalize().into())
}

impl Cache {
    pub fn new(root: &Path) -> Result<Cache, Error> {
        let dir = root.join("buildcache");
        std::fs::create_dir_all(&dir).map_err(|e| Error::Io {
            op: "create directory",
            path: dir.clone(),
            source: e,
        })?;
        Ok(Cache { dir })
    }

    fn inputs_path(&self, slot: &str) -> PathBuf {
        self.dir.join("inputs").join(slot)
    }

    /// The inputs a step at `slot` (a Dockerfile position) had when it last ran.
    pub fn last_inputs(&self, slot: &str) -> Option<Inputs> {
        serde_json::from_slice(&std::fs::read(self.inputs_path(slot)).ok()?).ok()
    }

    pub fn remember_inputs(&self, slot: &str, inputs: &Inputs) {
        let path = self.inputs_path(slot);
        let _ = std::fs::create_dir_all(self.dir.join("inputs"));
        if let Ok(tmp) = tempfile::NamedTempFile::new_in(self.dir.join("inputs")) {
            // Buffered: straight to the file, serde_json writes a token per system call.
            if serde_json::to_writer(std::io::BufWriter::new(tmp.as_file()), inputs).is_ok() {
                let _ = tmp.persist(path);
            }
        }
    }

    /// The record of `key`, marked as used now (the cache size limit drops the least
    /// recently used first).
    pub fn get(&self, key: &CacheKey) -> Option<Record> {
        let path = self.dir.join(key.to_string());
        let record = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
        if let Ok(f) = std::fs::File::options().write(true).open(&path) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
        Some(record)
    }

    /// Written through a temporary file and a rename: concurrent builds see a record whole
    /// or not at all.
    pub fn put(&self, key: &CacheKey, record: &Record) -> Result<(), Error> {
        let path = self.dir.join(key.to_string());
        let tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| Error::Io {
            op: "rename",
            path: self.dir.clone(),
            source: e,
        })?;
        let bytes = serde_json::to_vec(record).map_err(|source| Error::Encode {
            what: "cache record",
            source,
        })?;
        std::io::Write::write_all(&mut tmp.as_file(), &bytes).map_err(|e| Error::Io {
            op: "write",
            path: tmp.path().to_path_buf(),
            source: e,
        })?;
        tmp.persist(&path).map_err(|e| Error::Io {
            op: "rename",
            path,
            source: e.error,
        })?;
        Ok(())
    }
}
