//! What a step's upper directory takes from the image below it (the image's tree is
//! read through [`kiln_image::tree`]).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

pub(super) use kiln_image::tree::entry;

/// Gives each directory of `upper` on the way to `rel` (and `rel` itself) the metadata
/// BuildKit gives it: a directory the image has keeps its mode, owner and time (a
/// COPY into `/tmp` leaves it 1777); one the step made is 755 and owned by `owner`.
/// `layers` (each layer's tree, bottom first) empty: nothing below counts (COPY --link).
pub(super) fn settle_dirs(
    layers: &[PathBuf],
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
