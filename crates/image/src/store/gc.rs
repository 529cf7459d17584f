//! Garbage collection: blobs that no index entry reaches are removed.

use std::collections::HashSet;
use std::path::Path;

use oci_spec::image::{ImageIndex, ImageManifest};

use super::Store;
use crate::error::{Error, Result};
use crate::media;

/// What a collection removed.
#[derive(Debug, Default)]
pub struct GcReport {
    /// The digests of the blobs removed.
    pub removed_blobs: Vec<String>,
    /// The bytes they held.
    pub freed_bytes: u64,
}

impl Store {
    /// Removes every blob no index entry reaches (and where it came from), every
    /// remembered compression whose source layer is gone, and what killed writers left in
    /// `ingest/`. Waits for writers
    /// to finish (it takes `gc.lock` exclusively).
    pub fn gc(&self) -> Result<GcReport> {
        self.gc_after(|| Ok(HashSet::new()))
    }

    /// [`Store::gc`], with `cleanup` run first under the same exclusive lock: for caches
    /// beside the store (a builder's snapshots) that no writer may be using meanwhile.
    /// `cleanup` returns the digests those caches still name: they are kept too.
    pub fn gc_after(&self, cleanup: impl FnOnce() -> Result<HashSet<String>>) -> Result<GcReport> {
        let exclusive = self.lock("gc.lock", true)?;
        self.collect(exclusive, cleanup)
    }

    /// [`Store::gc_after`] only if no writer is at work now (None otherwise): for
    /// housekeeping that can wait for the next time.
    pub fn gc_after_if_idle(
        &self,
        cleanup: impl FnOnce() -> Result<HashSet<String>>,
    ) -> Result<Option<GcReport>> {
        match self.try_lock("gc.lock")? {
            Some(exclusive) => self.collect(exclusive, cleanup).map(Some),
            None => Ok(None),
        }
    }

    fn collect(
        &self,
        _exclusive: std::fs::File,
        cleanup: impl FnOnce() -> Result<HashSet<String>>,
    ) -> Result<GcReport> {
        let mut reachable = self.reachable()?;
        reachable.extend(cleanup()?);
        // After the caches' digests: a layer only the build cache names keeps its
        // compressed form too (the one a registry cache gave).
        let compressed = self.compressed_reachable(&reachable)?;
        reachable.extend(compressed);
        let mut report = GcReport::default();
        let blobs = self.root.join("blobs");
        for alg in read_dir(&blobs)? {
            for blob in read_dir(&alg)? {
                let name = format!(
                    "{}:{}",
                    alg.file_name().unwrap_or_default().to_string_lossy(),
                    blob.file_name().unwrap_or_default().to_string_lossy()
                );
                if !reachable.contains(&name) {
                    report.freed_bytes += std::fs::metadata(&blob).map(|m| m.len()).unwrap_or(0);
                    std::fs::remove_file(&blob).map_err(Error::io("remove blob", &blob))?;
                    if let Ok(d) = crate::digest::parse(&name) {
                        let _ = std::fs::remove_file(self.origins_path(&d));
                    }
                    report.removed_blobs.push(name);
                }
            }
        }
        // No writer holds the lock, so anything in ingest/ is a leftover of a killed one.
        for leftover in read_dir(&self.ingest_dir())? {
            std::fs::remove_file(&leftover).map_err(Error::io("remove", &leftover))?;
        }
        Ok(report)
    }

    /// Every blob an index entry reaches: manifests, indexes, configs, layers.
    fn reachable(&self) -> Result<HashSet<String>> {
        let mut seen = HashSet::new();
        let mut stack: Vec<(String, String)> = self
            .index()?
            .manifests()
            .iter()
            .map(|d| (d.digest().to_string(), d.media_type().to_string()))
            .collect();
        while let Some((digest, media_type)) = stack.pop() {
            if !seen.insert(digest.clone()) {
                continue;
            }
            let Ok(d) = crate::digest::parse(&digest) else {
                continue;
            };
            if !(media::is_index(&media_type) || media::is_manifest(&media_type))
                || !self.has_blob(&d)
            {
                continue;
            }
            let bytes = self.read_blob(&d)?;
            if media::is_index(&media_type) {
                if let Ok(index) = serde_json::from_slice::<ImageIndex>(&bytes) {
                    stack.extend(
                        index
                            .manifests()
                            .iter()
                            .map(|m| (m.digest().to_string(), m.media_type().to_string())),
                    );
                }
            } else if let Ok(manifest) = serde_json::from_slice::<ImageManifest>(&bytes) {
                seen.insert(manifest.config().digest().to_string());
                seen.extend(manifest.layers().iter().map(|l| l.digest().to_string()));
            }
        }
        Ok(seen)
    }
}

pub(super) fn read_dir(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| {
                e.map(|e| e.path())
                    .map_err(Error::io("read directory", dir))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::Io {
            op: "read directory",
            path: dir.to_path_buf(),
            source: e,
        }),
    }
}
