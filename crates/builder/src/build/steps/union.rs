//! The image's tree as a step sees it: its layers' snapshots (topmost last) read as
//! overlayfs reads them, whiteouts and opaque directories honoured, without following a
//! symlink of any layer on the host's side.

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
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

/// Gives each directory of `upper` on the way to `rel` (and `rel` itself) the metadata
/// BuildKit gives it: a directory the image has keeps its mode, owner and time (a
/// COPY into `/tmp` leaves it 1777); one the step made is 755 and owned by `owner`.
/// `layers` empty: nothing below counts (COPY --link).
pub(super) fn settle_dirs(
    layers: &[Layer],
    rel: &Path,
    upper: &Path,
    owner: (u32, u32),
) -> std::io::Result<()> {
    let mut at = PathBuf::new();
    for part in rel
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
    {
        at.push(part);
        let here = upper.join(&at);
        if !std::fs::symlink_metadata(&here).is_ok_and(|m| m.is_dir()) {
            return Ok(());
        }
        let (mode, uid, gid, time) = match entry(layers, &at) {
            Some((_, image)) if image.is_dir() => (
                image.mode() & 0o7777,
                image.uid(),
                image.gid(),
                Some((image.mtime(), image.mtime_nsec())),
            ),
            _ => (0o755, owner.0, owner.1, None),
        };
        std::os::unix::fs::lchown(&here, Some(uid), Some(gid))?;
        std::fs::set_permissions(&here, std::fs::Permissions::from_mode(mode))?;
        if let Some((secs, nanos)) = time {
            let t = nix::sys::time::TimeSpec::new(secs, nanos);
            nix::sys::stat::utimensat(
                nix::fcntl::AT_FDCWD,
                &here,
                &t,
                &t,
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            )
            .map_err(std::io::Error::from)?;
        }
    }
    Ok(())
}
