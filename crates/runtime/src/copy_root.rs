//! The copying snapshotter, for kernels without overlayfs, or where it will not mount
//! (some container sandboxes forbid it). The root
//! is a plain copy of the layers; after the process, what differs from that copy is
//! written to the upper directory in overlayfs' own form (0/0 character devices for
//! deletions, the opaque attribute on replaced directories), so the rest of the build
//! reads it as it reads an overlay's upper directory. Snapshots keep overlayfs' whiteout
//! devices, so the store must be on a filesystem that takes them (not overlayfs itself:
//! give `KILN_ROOT` a volume, as docker-in-docker does for `/var/lib/docker`).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{mknod, Mode, SFlag};
use nix::sys::time::TimeSpec;

const OPAQUE: &str = "trusted.overlay.opaque";
const OVERLAY_XATTRS: [&str; 2] = ["trusted.overlay.", "user.overlay."];

fn errno(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Whether overlayfs mounts here: tried once with directories made in `scratch` (on the
/// filesystem the upper directories will be on) and unmounted at once.
pub fn overlay_works(scratch: &Path) -> bool {
    let Ok(dir) = tempfile_dir(scratch) else {
        return false;
    };
    let names = ["lower", "upper", "work", "merged"];
    if names.iter().any(|n| fs::create_dir(dir.join(n)).is_err()) {
        let _ = fs::remove_dir_all(&dir);
        return false;
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        dir.join("lower").display(),
        dir.join("upper").display(),
        dir.join("work").display()
    );
    let merged = dir.join("merged");
    let mounted = nix::mount::mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(options.as_str()),
    )
    .is_ok();
    if mounted {
        let _ = nix::mount::umount2(&merged, nix::mount::MntFlags::MNT_DETACH);
    }
    let _ = fs::remove_dir_all(&dir);
    mounted
}

fn tempfile_dir(parent: &Path) -> io::Result<PathBuf> {
    fs::create_dir_all(parent)?;
    let dir = parent.join(format!("overlay-probe-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir(&dir)?;
    Ok(dir)
}

/// Writes the union of `lowers` (topmost first, whiteouts in overlayfs' form) into the
/// directory `target`: copies of the files, or hard links when `link` is set (for a
/// read-only view, where nothing can write through them to the layers).
pub fn merge_layers(lowers: &[PathBuf], target: &Path, link: bool) -> io::Result<()> {
    let mut dirs: HashMap<PathBuf, PathBuf> = HashMap::new();
    for lower in lowers.iter().rev() {
        let mut linked: HashMap<(u64, u64), PathBuf> = HashMap::new();
        for entry in walkdir::WalkDir::new(lower)
            .min_depth(1)
            .sort_by_file_name()
        {
            let entry = entry.map_err(io::Error::from)?;
            let rel = entry.path().strip_prefix(lower).expect("under the layer");
            let dest = target.join(rel);
            let meta = entry.path().symlink_metadata()?;
            let kind = meta.file_type();
            if kind.is_char_device() && meta.rdev() == 0 {
                remove_any(&dest)?;
                continue;
            }
            if kind.is_dir() {
                match dest.symlink_metadata() {
                    Ok(m) if m.is_dir() => {
                        if is_opaque(entry.path()) {
                            for child in fs::read_dir(&dest)? {
                                remove_any(&child?.path())?;
                            }
                        }
                    }
                    Ok(_) => {
                        remove_any(&dest)?;
                        fs::create_dir(&dest)?;
                    }
                    Err(_) => fs::create_dir(&dest)?,
                }
                dirs.insert(dest, entry.path().to_path_buf());
                continue;
            }
            remove_any(&dest)?;
            let id = (meta.dev(), meta.ino());
            if link {
                fs::hard_link(entry.path(), &dest)?;
            } else if let Some(first) = linked.get(&id).filter(|_| meta.nlink() > 1) {
                fs::hard_link(first, &dest)?;
            } else {
                copy_entry(entry.path(), &meta, &dest)?;
                linked.insert(id, dest);
            }
        }
    }
    // Directories last, deepest first: adding entries changes a directory's times.
    let mut dirs: Vec<(PathBuf, PathBuf)> = dirs.into_iter().collect();
    dirs.sort_by_key(|(d, _)| std::cmp::Reverse(d.components().count()));
    for (dest, source) in dirs {
        if dest.is_dir() {
            set_attrs(&source, &source.symlink_metadata()?, &dest)?;
        }
    }
    Ok(())
}

/// A file, symlink, device or fifo copied with its owner, mode, attributes and times.
fn copy_entry(source: &Path, meta: &fs::Metadata, dest: &Path) -> io::Result<()> {
    let kind = meta.file_type();
    if kind.is_file() {
        fs::copy(source, dest)?;
    } else if kind.is_symlink() {
        symlink(fs::read_link(source)?, dest)?;
    } else {
        let flag = if kind.is_char_device() {
            SFlag::S_IFCHR
        } else if kind.is_block_device() {
            SFlag::S_IFBLK
        } else if kind.is_fifo() {
            SFlag::S_IFIFO
        } else {
            // Sockets belong to a running process, not to a file system image.
            return Ok(());
        };
        let mode = Mode::from_bits_truncate(meta.mode() & 0o7777);
        mknod(dest, flag, mode, meta.rdev()).map_err(errno)?;
    }
    set_attrs(source, meta, dest)
}

/// Owner, then mode (chown clears set-id bits), extended attributes but overlayfs' own,
/// and times of `source` onto `dest`, never following a symlink.
fn set_attrs(source: &Path, meta: &fs::Metadata, dest: &Path) -> io::Result<()> {
    std::os::unix::fs::lchown(dest, Some(meta.uid()), Some(meta.gid()))?;
    if !meta.file_type().is_symlink() {
        fs::set_permissions(dest, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    if let Ok(names) = xattr::list(source) {
        for name in names {
            let text = name.to_string_lossy();
            if OVERLAY_XATTRS.iter().any(|p| text.starts_with(p)) {
                continue;
            }
            if let Ok(Some(value)) = xattr::get(source, &name) {
                let _ = xattr::set(dest, &name, &value);
            }
        }
    }
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        dest,
        &atime,
        &mtime,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(errno)
}

fn remove_any(path: &Path) -> io::Result<()> {
    let removed = match path.symlink_metadata() {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match removed {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn is_opaque(dir: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|n| xattr::get(dir, n).ok().flatten().is_some_and(|v| v == b"y"))
}

/// What each path of a root was before the process: any change to an entry changes its
/// ctime, and a path made anew is another file (another inode, or the same inode number
/// reused with a new birth time).
pub(crate) struct Baseline {
    entries: HashMap<PathBuf, Stamp>,
}

#[derive(PartialEq, Eq)]
struct Stamp {
    file: FileId,
    ctime: (i64, i64),
    is_dir: bool,
}

#[derive(PartialEq, Eq, Clone, Copy)]
struct FileId {
    ino: u64,
    born: Option<std::time::SystemTime>,
}

fn file_id(meta: &fs::Metadata) -> FileId {
    FileId {
        ino: meta.ino(),
        born: meta.created().ok(),
    }
}

fn stamp(meta: &fs::Metadata) -> Stamp {
    Stamp {
        file: file_id(meta),
        ctime: (meta.ctime(), meta.ctime_nsec()),
        is_dir: meta.is_dir(),
    }
}

pub(crate) fn baseline(root: &Path) -> io::Result<Baseline> {
    let mut entries = HashMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.map_err(io::Error::from)?;
        let rel = entry.path().strip_prefix(root).expect("under the root");
        entries.insert(rel.to_path_buf(), stamp(&entry.path().symlink_metadata()?));
    }
    Ok(Baseline { entries })
}

/// Writes what changed in `root` since `base` to the empty `upper`, as overlayfs would
/// have: changed and new entries (hard links to them, `root` being thrown away after),
/// their parent directories, whiteouts for what is gone.
pub(crate) fn write_upper(root: &Path, base: &Baseline, upper: &Path) -> io::Result<()> {
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut made_dirs: Vec<PathBuf> = Vec::new();
    let mut new_tree: Option<PathBuf> = None;
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(io::Error::from)?;
        let rel = entry
            .path()
            .strip_prefix(root)
            .expect("under the root")
            .to_path_buf();
        let meta = entry.path().symlink_metadata()?;
        seen.insert(rel.clone());
        let inside_new = new_tree.as_ref().is_some_and(|t| rel.starts_with(t));
        let before = base.entries.get(&rel);
        let opaque = match before {
            _ if inside_new => false,
            Some(b) if *b == stamp(&meta) => continue,
            Some(b) if b.file == file_id(&meta) => false,
            // Made anew: a directory hides whatever the old one held.
            Some(b) => b.is_dir && meta.is_dir(),
            None => false,
        };
        if meta.is_dir() && !inside_new && before.is_none_or(|b| b.file != file_id(&meta)) {
            new_tree = Some(rel.clone());
        }
        add_parents(upper, &rel, &mut made_dirs)?;
        let dest = upper.join(&rel);
        if meta.is_dir() {
            if !dest.is_dir() {
                fs::create_dir(&dest)?;
                made_dirs.push(rel.clone());
            }
            if opaque {
                xattr::set(&dest, OPAQUE, b"y")?;
            }
        } else {
            fs::hard_link(entry.path(), &dest)?;
        }
    }
    // A deletion needs a whiteout only where its directory is still the one it was in:
    // a directory made anew hides the old contents, a file in its place replaces it all.
    let same_dir = |dir: &Path| {
        dir.as_os_str().is_empty()
            || fs::symlink_metadata(root.join(dir)).is_ok_and(|m| {
                m.is_dir() && base.entries.get(dir).is_some_and(|b| b.file == file_id(&m))
            })
    };
    for rel in base.entries.keys().filter(|p| !seen.contains(*p)) {
        if same_dir(rel.parent().unwrap_or(Path::new(""))) {
            add_parents(upper, rel, &mut made_dirs)?;
            mknod(&upper.join(rel), SFlag::S_IFCHR, Mode::empty(), 0).map_err(|e| {
                io::Error::other(format!(
                    "recording the deletion of /{} as a whiteout device: {e} (the store must be on a filesystem that takes 0/0 character devices, not overlayfs: give KILN_ROOT a volume)",
                    rel.display()
                ))
            })?;
        }
    }
    made_dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for rel in made_dirs {
        let source = root.join(&rel);
        set_attrs(&source, &source.symlink_metadata()?, &upper.join(&rel))?;
    }
    Ok(())
}

/// The directories above `rel` in `upper` (their attributes are set at the end).
fn add_parents(upper: &Path, rel: &Path, made: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut partial = PathBuf::new();
    let parts: Vec<_> = rel.components().collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        partial.push(part);
        let dest = upper.join(&partial);
        if !dest.is_dir() {
            fs::create_dir(&dest)?;
            made.push(partial.clone());
        }
    }
    Ok(())
}
