//! Unpacked layers for overlay stacks: `KILN_ROOT/snapshots/<diffID hex>/`, each one
//! layer's files with its whiteouts in overlayfs' form, made once and shared by builds.

use std::path::{Path, PathBuf};

use kiln_image::digest::Digest;
use kiln_image::store::Store;

use crate::Error;

pub struct Snapshots {
    dir: PathBuf,
    tmp: PathBuf,
}

impl Snapshots {
    pub fn new(root: &Path) -> Result<Snapshots, Error> {
        let s = Snapshots {
            dir: root.join("snapshots"),
            tmp: root.join("tmp"),
        };
        for d in [&s.dir, &s.tmp] {
            std::fs::create_dir_all(d).map_err(|e| Error::Read {
                path: d.clone(),
                source: e,
            })?;
        }
        Ok(s)
    }

    pub fn path(&self, diff_id: &str) -> PathBuf {
        self.dir
            .join(diff_id.strip_prefix("sha256:").unwrap_or(diff_id))
    }

    /// A fresh scratch directory for one step (removed with the value).
    pub fn scratch(&self) -> Result<tempfile::TempDir, Error> {
        tempfile::Builder::new()
            .prefix("step-")
            .tempdir_in(&self.tmp)
            .map_err(|e| Error::Read {
                path: self.tmp.clone(),
                source: e,
            })
    }

    /// The snapshot of a layer from the store, unpacked on first use (into a scratch
    /// directory, then renamed, so a half-unpacked snapshot is never used) and checked
    /// against its diffID: a base image or a registry cache that names a layer wrongly
    /// is caught here.
    pub fn ensure(&self, store: &Store, diff_id: &str, blob: &Digest) -> Result<PathBuf, Error> {
        let path = self.path(diff_id);
        if path.is_dir() {
            // Its time is its last use, for the cache size limit.
            if let Ok(dir) = std::fs::File::open(&path) {
                let _ = dir.set_modified(std::time::SystemTime::now());
            }
            return Ok(path);
        }
        let scratch = self.scratch()?;
        let target = scratch.path().join("layer");
        std::fs::create_dir(&target).map_err(|e| Error::Read {
            path: target.clone(),
            source: e,
        })?;
        let expected = kiln_image::digest::parse(diff_id)?;
        kiln_image::layer::apply_snapshot(store.open_blob(blob)?, &target, &expected)?;
        self.adopt(&target, diff_id)
    }

    /// Makes `dir` (a step's upper directory) the snapshot of `diff_id`.
    pub fn adopt(&self, dir: &Path, diff_id: &str) -> Result<PathBuf, Error> {
        let path = self.path(diff_id);
        if std::fs::rename(dir, &path).is_err() && !path.is_dir() {
            return Err(Error::Read {
                path,
                source: std::io::Error::other("cannot move the snapshot into place"),
            });
        }
        Ok(path)
    }
}
