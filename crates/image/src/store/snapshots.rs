//! Layer snapshots: each layer's tree unpacked once in overlayfs' form under
//! `KILN_ROOT/snapshots/<diffID hex>`, the lower directories of RUN steps and of
//! containers alike; and layer outlines, under `KILN_ROOT/outlines/<diffID hex>`: the tree
//! of a layer whose large files were never written out (a COPY wrote their data into the
//! layer alone), each of them a sparse placeholder of its size, owner, mode and time.
//! Everything that reads names, metadata and account files (a later COPY's destination,
//! `--chown` names, WORKDIR) reads an outline as it would the snapshot; what reads data
//! (a RUN step, a container) unpacks the snapshot from the blob when it first needs it.

use std::path::{Path, PathBuf};

use super::Store;
use crate::digest::{DiffId, Digest};
use crate::error::{Error, Result};

impl Store {
    /// Where the snapshot of layer `diff_id` is (or would be).
    pub fn snapshot_path(&self, diff_id: &DiffId) -> PathBuf {
        self.root.join("snapshots").join(diff_id.hex())
    }

    /// The snapshot of layer `diff_id`, unpacked from `blob` on first use into a scratch
    /// directory under `scratch` (on the store's filesystem), then renamed into place, so
    /// a half-unpacked snapshot is never used; checked against its diffID, so a base image
    /// or a registry cache that names a layer wrongly is caught here. Its time is its last
    /// use, for the build cache's size limit.
    pub fn snapshot(&self, diff_id: &DiffId, blob: &Digest, scratch: &Path) -> Result<PathBuf> {
        let path = self.snapshot_path(diff_id);
        if path.is_dir() {
            if let Ok(dir) = std::fs::File::open(&path) {
                let _ = dir.set_modified(std::time::SystemTime::now());
            }
            return Ok(path);
        }
        let tmp = tempfile::Builder::new()
            .prefix("layer-")
            .tempdir_in(scratch)
            .map_err(Error::io("create a directory in", scratch))?;
        let target = tmp.path().join("layer");
        std::fs::create_dir(&target).map_err(Error::io("create", &target))?;
        // A blob that is the tar itself was hashed as it entered the store (blobs are
        // named by their digest); only a compressed one can name its tar wrongly.
        let check = (blob != diff_id.digest()).then(|| diff_id.digest());
        crate::layer::apply_snapshot(self.open_blob(blob)?, &target, check)?;
        self.adopt_snapshot(&target, diff_id)
    }

    /// Where the outline of layer `diff_id` is (or would be).
    pub fn outline_path(&self, diff_id: &DiffId) -> PathBuf {
        self.root.join("outlines").join(diff_id.hex())
    }

    /// Makes `dir` (on the store's filesystem) the outline of `diff_id`; one made at the
    /// same time by another process wins as well.
    pub fn adopt_outline(&self, dir: &Path, diff_id: &DiffId) -> Result<PathBuf> {
        adopt(dir, &self.outline_path(diff_id), "move the outline into")
    }

    /// Makes `dir` (on the store's filesystem) the snapshot of `diff_id`; one made at the
    /// same time by another process wins as well.
    pub fn adopt_snapshot(&self, dir: &Path, diff_id: &DiffId) -> Result<PathBuf> {
        adopt(dir, &self.snapshot_path(diff_id), "move the snapshot into")
    }
}

/// Renames `dir` to `path`, unless another process made `path` first.
fn adopt(dir: &Path, path: &Path, op: &'static str) -> Result<PathBuf> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
    }
    if let Err(e) = std::fs::rename(dir, path) {
        if !path.is_dir() {
            return Err(Error::io(op, path)(e));
        }
    }
    Ok(path.to_path_buf())
}
