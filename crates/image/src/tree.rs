//! An image's tree as its layers' snapshots give it (bottom first, each a directory in
//! overlayfs' form): entries read as overlayfs reads them, whiteouts and opaque
//! directories honoured, without following a symlink of any layer on the host's side;
//! and the image's users and groups — `USER`, `--chown`, `kiln run --user` names looked
//! up in its `/etc/passwd` and `/etc/group` as the container would see them: through the
//! layers, following the image's symlinks inside the image (never the host's), regular
//! files only and at most `MAX_ACCOUNT_FILE` bytes (a link to `/dev/zero` or to the
//! host's own `/etc/passwd` reads nothing).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::Metadata;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    xattr::get(dir, "trusted.overlay.opaque").is_ok_and(|v| v.as_deref() == Some(b"y"))
}

/// The topmost entry at `rel` (no symlink among its parents) in the layers (topmost
/// last), honouring whiteouts and opaque directories; none when it is not there.
pub fn entry<L: AsRef<Path>>(layers: &[L], rel: &Path) -> Option<(PathBuf, Metadata)> {
    let parts: Vec<Component> = rel.components().collect();
    for layer in layers.iter().rev() {
        let mut at = layer.as_ref().to_path_buf();
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

/// The largest `/etc/passwd` or `/etc/group` read (distribution's limit for a manifest;
/// far above any real passwd file). A layer's outline keeps every file up to this size
/// whole, so the accounts read through it are the image's.
pub const MAX_ACCOUNT_FILE: u64 = 4 << 20;
/// As the kernel's limit on symlinks in one lookup.
const MAX_LINKS: usize = 40;

/// The entry at absolute image path `path`, its symlinks followed inside the image.
fn resolve<L: AsRef<Path>>(layers: &[L], path: &Path) -> Option<(PathBuf, Metadata)> {
    let mut queue: VecDeque<OsString> = normal_parts(path).collect();
    let mut resolved = PathBuf::new();
    let mut links = 0;
    let mut last = None;
    while let Some(part) = queue.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let (host, meta) = entry(layers, &candidate)?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return None;
            }
            let target = std::fs::read_link(&host).ok()?;
            if target.is_absolute() {
                resolved = PathBuf::new();
            }
            for p in normal_parts(&target).collect::<Vec<_>>().into_iter().rev() {
                queue.push_front(p);
            }
            continue;
        }
        if !queue.is_empty() && !meta.is_dir() {
            return None;
        }
        resolved = candidate;
        last = Some((host, meta));
    }
    last
}

fn normal_parts(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(p) => Some(p.to_os_string()),
        Component::ParentDir => Some("..".into()),
        _ => None,
    })
}

/// The text of the image's file `path` (e.g. `etc/passwd`); empty when the image has no
/// such regular file.
fn image_file<L: AsRef<Path>>(layers: &[L], path: &str) -> Result<String, String> {
    let Some((host, meta)) = resolve(layers, Path::new(path)) else {
        return Ok(String::new());
    };
    if !meta.is_file() {
        return Ok(String::new());
    }
    let too_large = || format!("the image's /{path} is larger than {MAX_ACCOUNT_FILE} bytes");
    if meta.len() > MAX_ACCOUNT_FILE {
        return Err(too_large());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(&host)
        .map_err(|e| format!("reading the image's /{path}: {e}"))?;
    let mut text = String::new();
    file.take(MAX_ACCOUNT_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("reading the image's /{path}: {e}"))?;
    if text.len() as u64 > MAX_ACCOUNT_FILE {
        return Err(too_large());
    }
    Ok(text)
}

/// A number, or the id of `name` in a passwd- or group-format file of the image.
pub fn id_of<L: AsRef<Path>>(layers: &[L], file: &str, name: &str) -> Result<Option<u32>, String> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(Some(n));
    }
    Ok(image_file(layers, file)?
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
        .and_then(|f| f.get(2)?.parse().ok()))
}

/// Who a process of the image runs as (a RUN step, a container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The numeric user id.
    pub uid: u32,
    /// The numeric primary group id.
    pub gid: u32,
    /// Supplementary groups: those of `/etc/group` that list the user, when USER names
    /// no group (as runc and BuildKit take them).
    pub groups: Vec<u32>,
    /// The user's home from `/etc/passwd`: `HOME` unless the image sets it (`/root` for
    /// root, `/` for a user passwd does not know, as runc does).
    pub home: String,
}

/// The fields of `file`'s lines (`name:x:id:...`).
fn entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines().map(|l| l.split(':').collect())
}

/// `USER` (or `--user`) as uid, gid, supplementary groups and home: numbers, or names from the image's
/// `/etc/passwd` and `/etc/group`.
pub fn resolve_user<L: AsRef<Path>>(user: &str, layers: &[L]) -> Result<User, String> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None if user.is_empty() => ("0", None),
        None => (user, None),
    };
    let uid = id_of(layers, "etc/passwd", u)?.ok_or(format!(
        "unable to find user {u}: no matching entries in passwd file"
    ))?;
    let passwd = image_file(layers, "etc/passwd")?;
    let entry =
        entries(&passwd).find(|f| f.get(2).and_then(|s| s.parse::<u32>().ok()) == Some(uid));
    let home = entry
        .as_ref()
        .and_then(|f| f.get(5))
        .filter(|h| !h.is_empty())
        .map(|h| h.to_string())
        .unwrap_or_else(|| if uid == 0 { "/root".into() } else { "/".into() });
    let (gid, groups) = match g {
        Some(g) => (
            id_of(layers, "etc/group", g)?.ok_or(format!(
                "unable to find group {g}: no matching entries in group file"
            ))?,
            Vec::new(),
        ),
        None => {
            // The user's primary group from passwd, or 0.
            let gid = entry
                .as_ref()
                .and_then(|f| f.get(3)?.parse().ok())
                .unwrap_or(0);
            let name = entry.as_ref().and_then(|f| f.first().copied());
            let group = image_file(layers, "etc/group")?;
            let mut groups: Vec<u32> = entries(&group)
                .filter(|f| {
                    name.is_some_and(|n| {
                        f.get(3)
                            .is_some_and(|members| members.split(',').any(|m| m.trim() == n))
                    })
                })
                .filter_map(|f| f.get(2)?.parse().ok())
                .filter(|g| *g != gid)
                .collect();
            groups.sort_unstable();
            groups.dedup();
            (gid, groups)
        }
    };
    Ok(User {
        uid,
        gid,
        groups,
        home,
    })
}
