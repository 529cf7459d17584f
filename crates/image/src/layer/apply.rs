//! Layer tar → directory, honouring OCI whiteouts and refusing anything that could land
//! outside the target: absolute paths, `..`, writes through symlinks that lead above the
//! root, hard links to outside. Symlinks are followed as inside a container: an absolute
//! target is taken from the target directory, never from the host's `/`.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;

use super::Decompressor;
use crate::digest::{Digest, Hasher, HashingReader};
use crate::error::{Error, Result};

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
/// Symlink hops allowed while resolving one path, as the kernel's own limit.
const MAX_LINKS: usize = 40;

/// What applying a layer did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ApplyStats {
    /// Entries written (files, directories, links, devices).
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Whiteouts applied (removals and opaque directories).
    pub whiteouts: u64,
}

/// What whiteouts become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// Remove what they hide: `target` is a flattened root filesystem.
    Remove,
    /// Keep them as overlayfs does (a 0/0 character device; an opaque directory's
    /// `trusted.overlay.opaque` attribute): `target` is one layer of an overlay stack.
    Overlay,
}

/// Applies the layer in `reader` (plain, gzip or zstd) on top of `target`.
pub fn apply(reader: impl Read, target: &Path) -> Result<ApplyStats> {
    apply_with(reader, target, Whiteouts::Remove)
}

/// Unpacks the layer in `reader` into an empty `target` as an overlayfs lower directory,
/// checking, when `diff_id` is given, that the uncompressed layer is it (as the image's
/// config names it): one with other content is an error, and the caller drops what was
/// unpacked.
pub fn apply_snapshot(
    reader: impl Read,
    target: &Path,
    diff_id: Option<&Digest>,
) -> Result<ApplyStats> {
    let Some(diff_id) = diff_id else {
        return apply_with(reader, target, Whiteouts::Overlay);
    };
    let plain = Decompressor::new(reader).map_err(Error::io("read layer for", target))?;
    let mut hashing = HashingReader::new(plain, Hasher::for_digest(diff_id));
    let stats = apply_with(&mut hashing, target, Whiteouts::Overlay)?;
    let actual = hashing
        .finish()
        .map_err(Error::io("read layer for", target))?;
    if actual != *diff_id {
        return Err(Error::DigestMismatch {
            what: format!("layer unpacked into {}", target.display()),
            expected: diff_id.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(stats)
}

fn apply_with(reader: impl Read, target: &Path, whiteouts: Whiteouts) -> Result<ApplyStats> {
    let data = Decompressor::new(reader).map_err(Error::io("read layer for", target))?;
    let mut archive = tar::Archive::new(data);
    let is_root = nix::unistd::geteuid().is_root();
    let mut stats = ApplyStats::default();
    // Paths this layer created: whiteouts only hide what lower layers had.
    let mut created: HashSet<PathBuf> = HashSet::new();
    let mut dirs: Vec<(PathBuf, u64)> = Vec::new();
    let entries = archive
        .entries()
        .map_err(Error::io("read layer for", target))?;
    for entry in entries {
        let mut entry = entry.map_err(Error::io("read layer entry for", target))?;
        let raw = entry.path_bytes().into_owned();
        let rel = clean_path(&raw)?;
        let Some(rel) = rel else { continue };
        let name = rel.file_name().unwrap_or_default().as_bytes().to_vec();
        let parent_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let parent = resolve(target, &parent_rel, &raw)?;
        stats.entries += 1;
        if name == OPAQUE.as_bytes() {
            stats.whiteouts += 1;
            match whiteouts {
                Whiteouts::Remove => make_opaque(&parent, &parent_rel, &created)?,
                Whiteouts::Overlay => {
                    fs::create_dir_all(&parent).map_err(Error::io("create directory", &parent))?;
                    xattr::set(&parent, "trusted.overlay.opaque", b"y")
                        .map_err(Error::io("mark opaque", &parent))?;
                }
            }
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT.as_bytes()) {
            // `.wh.`, `.wh..` and `.wh...` would hide the directory itself or its parent:
            // `..` resolved above the entry's own directory, out of the target.
            if matches!(hidden, b"" | b"." | b"..") {
                return Err(unsafe_entry(
                    &raw,
                    "a whiteout that names no file of its directory",
                ));
            }
            stats.whiteouts += 1;
            let victim = parent.join(OsStr::from_bytes(hidden));
            match whiteouts {
                Whiteouts::Remove
                    if !created.contains(&parent_rel.join(OsStr::from_bytes(hidden))) =>
                {
                    remove_any(&victim)?
                }
                Whiteouts::Remove => {}
                Whiteouts::Overlay => {
                    fs::create_dir_all(&parent).map_err(Error::io("create directory", &parent))?;
                    remove_any(&victim)?;
                    nix::sys::stat::mknod(&victim, SFlag::S_IFCHR, Mode::empty(), 0).map_err(
                        |e| Error::Io {
                            op: "create whiteout",
                            path: victim.clone(),
                            source: e.into(),
                        },
                    )?;
                }
            }
            continue;
        }
        fs::create_dir_all(&parent).map_err(Error::io("create directory", &parent))?;
        let path = parent.join(OsStr::from_bytes(&name));
        let header = entry.header().clone();
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        match kind {
            tar::EntryType::Directory => {
                if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                    remove_any(&path)?;
                    fs::create_dir(&path).map_err(Error::io("create directory", &path))?;
                }
                dirs.push((path.clone(), header.mtime().unwrap_or(0)));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                remove_any(&path)?;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .mode(0o600)
                    .open(&path)
                    .map_err(Error::io("create", &path))?;
                stats.bytes +=
                    io::copy(&mut entry, &mut file).map_err(Error::io("write", &path))?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                remove_any(&path)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&link), &path)
                    .map_err(Error::io("create symlink", &path))?;
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                let Some(link_rel) = clean_path(&link)? else {
                    return Err(unsafe_entry(&raw, "a hard link to the root directory"));
                };
                let source = resolve(target, link_rel.parent().unwrap_or(Path::new("")), &raw)?
                    .join(link_rel.file_name().unwrap_or_default());
                if !fs::symlink_metadata(&source).is_ok_and(|m| !m.is_dir()) {
                    return Err(unsafe_entry(
                        &raw,
                        "a hard link to a file that is not in the layer's tree",
                    ));
                }
                remove_any(&path)?;
                fs::hard_link(&source, &path).map_err(Error::io("create hard link", &path))?;
                created.insert(rel);
                continue;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                remove_any(&path)?;
                let kind_flag = match kind {
                    tar::EntryType::Char => SFlag::S_IFCHR,
                    tar::EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let dev = nix::sys::stat::makedev(
                    header.device_major().ok().flatten().unwrap_or(0) as u64,
                    header.device_minor().ok().flatten().unwrap_or(0) as u64,
                );
                nix::sys::stat::mknod(&path, kind_flag, Mode::from_bits_truncate(mode), dev)
                    .map_err(|e| Error::Io {
                        op: "create device node",
                        path: path.clone(),
                        source: e.into(),
                    })?;
            }
            // PAX and GNU extension headers are consumed by the tar reader; anything
            // else (sockets do not exist in tars) is skipped as docker does.
            _ => continue,
        }
        finish_entry(&mut entry, &path, kind, mode, is_root)?;
        created.insert(rel);
    }
    // Directory times last: creating their children changed them.
    for (dir, mtime) in dirs.iter().rev() {
        set_mtime(dir, *mtime)?;
    }
    Ok(stats)
}

/// Owner, xattrs, mode (after chown, which clears set-id bits) and mtime.
fn finish_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    path: &Path,
    kind: tar::EntryType,
    mode: u32,
    is_root: bool,
) -> Result<()> {
    let header = entry.header();
    if is_root {
        let uid = header.uid().unwrap_or(0) as u32;
        let gid = header.gid().unwrap_or(0) as u32;
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            path,
            Some(uid.into()),
            Some(gid.into()),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| Error::Io {
            op: "chown",
            path: path.to_path_buf(),
            source: e.into(),
        })?;
    }
    let mtime = header.mtime().unwrap_or(0);
    if let Ok(Some(exts)) = entry.pax_extensions() {
        for ext in exts.flatten() {
            let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
                continue;
            };
            let name = OsStr::from_bytes(name);
            if let Err(e) = xattr::set(path, name, ext.value_bytes()) {
                // Not every filesystem or user may set every namespace (trusted.*).
                if !matches!(
                    e.raw_os_error(),
                    Some(nix::libc::ENOTSUP) | Some(nix::libc::EPERM)
                ) {
                    return Err(Error::Io {
                        op: "set xattr",
                        path: path.to_path_buf(),
                        source: e,
                    });
                }
            }
        }
    }
    if kind != tar::EntryType::Symlink {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(Error::io("chmod", path))?;
    }
    if kind != tar::EntryType::Directory {
        set_mtime(path, mtime)?;
    }
    Ok(())
}

fn set_mtime(path: &Path, mtime: u64) -> Result<()> {
    let t = TimeSpec::new(mtime as i64, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| Error::Io {
        op: "set mtime",
        path: path.to_path_buf(),
        source: e.into(),
    })
}

fn unsafe_entry(raw: &[u8], reason: &str) -> Error {
    Error::UnsafeLayerEntry {
        path: String::from_utf8_lossy(raw).into_owned(),
        reason: reason.to_string(),
    }
}

/// The entry's path relative to the root, `./` and trailing `/` removed; None for the root
/// itself. Absolute paths and `..` are refused.
fn clean_path(raw: &[u8]) -> Result<Option<PathBuf>> {
    let path = Path::new(OsStr::from_bytes(raw));
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_entry(raw, "an absolute path"))
            }
            Component::ParentDir => return Err(unsafe_entry(raw, "a `..` path component")),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// The real path of directory `rel` inside `root`, following symlinks as the container
/// would (absolute targets from `root`). A symlink that climbs above the root is refused.
fn resolve(root: &Path, rel: &Path, raw: &[u8]) -> Result<PathBuf> {
    let mut stack: Vec<std::ffi::OsString> = Vec::new();
    let mut todo: Vec<std::ffi::OsString> = rel
        .components()
        .rev()
        .map(|c| c.as_os_str().to_owned())
        .collect();
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            if stack.pop().is_none() {
                return Err(unsafe_entry(
                    raw,
                    "a symlink in its path leads outside the root",
                ));
            }
            continue;
        }
        if part == "." || part.is_empty() {
            continue;
        }
        let mut candidate: PathBuf = root.to_path_buf();
        candidate.extend(&stack);
        candidate.push(&part);
        match fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_LINKS {
                    return Err(unsafe_entry(raw, "too many levels of symlinks in its path"));
                }
                let target =
                    fs::read_link(&candidate).map_err(Error::io("read link", &candidate))?;
                if target.is_absolute() {
                    stack.clear();
                }
                todo.extend(target.components().rev().filter_map(|c| match c {
                    Component::Normal(p) => Some(p.to_owned()),
                    Component::ParentDir => Some("..".into()),
                    _ => None,
                }));
            }
            _ => stack.push(part),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&stack);
    Ok(out)
}

/// Removes whatever is at `path` (file, link or tree); nothing there is fine.
fn remove_any(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(Error::io("remove", path)),
        Ok(_) => fs::remove_file(path).map_err(Error::io("remove", path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io {
            op: "stat",
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// Hides everything lower layers put in `dir`.
fn make_opaque(dir: &Path, dir_rel: &Path, created: &HashSet<PathBuf>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::Io {
                op: "read directory",
                path: dir.to_path_buf(),
                source: e,
            })
        }
    };
    for entry in entries {
        let entry = entry.map_err(Error::io("read directory", dir))?;
        if !created.contains(&dir_rel.join(entry.file_name())) {
            remove_any(&entry.path())?;
        }
    }
    Ok(())
}
