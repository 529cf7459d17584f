//! WORKDIR: the path joined and cleaned as BuildKit stores it, and the directory made as
//! a step (BuildKit's `mkdir -p` as the current USER), so an image has the directory
//! its config names and a non-root USER may write in it.

use std::path::{Path, PathBuf};

use super::copying::resolve_dest;
use super::union::{entry, settle_dirs};

/// Makes `dir` (absolute, in the image) in `upper`: each missing directory as `uid:gid`
/// with mode 755; the image's own directories on the way are repeated with their mode,
/// owner and time, as a layer carries the parents of what it adds. Nothing when the
/// image has the directory already.
pub(super) fn make(
    layers: &[PathBuf],
    dir: &str,
    uid: u32,
    gid: u32,
    upper: &Path,
) -> std::io::Result<()> {
    // Symlinks of the image on the way are followed inside it, as mkdir -p would.
    let resolved = resolve_dest(layers, &format!("{dir}/"));
    let rel = Path::new(&resolved)
        .strip_prefix("/")
        .unwrap_or(Path::new(""));
    let mut at = PathBuf::new();
    for part in rel.components() {
        at.push(part);
        match entry(layers, &at) {
            // Not a directory, which mkdir -p would refuse: the RUN that follows says so.
            Some((_, meta)) if !meta.is_dir() => break,
            _ => std::fs::create_dir(upper.join(&at))?,
        }
    }
    settle_dirs(layers, rel, upper, (uid, gid))?;
    // Only the image's own directories: nothing was made, and no layer is.
    if created_nothing(layers, upper) {
        std::fs::remove_dir_all(upper)?;
        std::fs::create_dir(upper)?;
    }
    Ok(())
}

fn created_nothing(layers: &[PathBuf], upper: &Path) -> bool {
    walkdir::WalkDir::new(upper)
        .min_depth(1)
        .into_iter()
        .flatten()
        .all(|e| entry(layers, e.path().strip_prefix(upper).unwrap_or(e.path())).is_some())
}
