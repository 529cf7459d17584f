//! An overlayfs upper directory as layer changes: what a RUN step changed.
//!
//! overlayfs records a deletion as a 0/0 character device and a directory whose lower
//! contents are hidden with the `trusted.overlay.opaque` (or, on `userxattr` mounts,
//! `user.overlay.opaque`) attribute set to `y`; OCI layers say the same with `.wh.NAME`
//! and `.wh..wh..opq` entries.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::Change;
use crate::error::{Error, Result};

const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

/// The changes an overlay upper directory holds, relative to it.
pub fn overlay_changes(upper: &Path) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    for entry in walkdir::WalkDir::new(upper)
        .min_depth(1)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(upper).to_path_buf();
            Error::Io {
                op: "walk",
                path,
                source: e.into(),
            }
        })?;
        let rel: PathBuf = entry
            .path()
            .strip_prefix(upper)
            .expect("under upper")
            .to_path_buf();
        let meta = entry
            .path()
            .symlink_metadata()
            .map_err(Error::io("stat", entry.path()))?;
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            changes.push(Change::Delete(rel));
            continue;
        }
        if meta.is_dir() && is_opaque(entry.path()) {
            changes.push(Change::Opaque(rel.clone()));
        }
        changes.push(Change::Upsert(rel));
    }
    Ok(changes)
}

fn is_opaque(dir: &Path) -> bool {
    OPAQUE_XATTRS.iter().any(|name| {
        xattr::get(dir, name)
            .ok()
            .flatten()
            .is_some_and(|v| v == b"y")
    })
}
