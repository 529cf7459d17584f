//! The image's tree as a step sees it: its layers' snapshots (topmost last) read as
//! overlayfs reads them, whiteouts and opaque directories honoured, without following a
//! symlink of any layer on the host's side.

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use super::Layer;

fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    xattr::get(dir, "trusted.overlay.opaque").is_ok_and(|v| v.as_deref() == Some(b"y"))
}

/// The topmost entry at `rel` (no symlink among its parents) in the layers (topmost
/// last), honouring whiteouts and opaque directories; none when it is not there.
pub(super) fn entry(layers: &[Layer], rel: &Path) -> Option<(PathBuf, Metadata)> {
    let parts: Vec<Component> = rel.components().collect();
    for layer in layers.iter().rev() {
        let mut at = layer.snapshot.clone();
        let mut hides_lower = false;
        for (i, part) in parts.iter().enumerate() {
            at.push(part);
            let Ok(meta) = std::fs::symlink_metadata(&at) else {
                break;
            };
            if is_whiteout(&meta) {
                return None;
            }
            if i + 1 == parts.len() {
                return Some((at, meta));
            }
            if !meta.is_dir() {
                // A file or symlink here replaces the directory the path goes through.
                return None;
            }
            hides_lower |= is_opaque(&at);
        }
        if hides_lower {
            return None;
        }
    }
    None
}
