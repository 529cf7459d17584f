//! COPY and ADD of local files: choosing the sources (wildcards, `.dockerignore`, never
//! outside the source root), hashing them for the cache, and copying them into a step's
//! upper directory with Docker's destination rules.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use regex::Regex;
use sha2::{Digest as _, Sha256};

use kiln_image::layer::Placeholders;

use crate::context::Dockerignore;
use crate::Error;

/// One chosen source: its path under the source root and the name it is copied as.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
}

/// A relative path with `.` removed; `..` that would leave the root is refused.
fn clean_relative(p: &str) -> Result<PathBuf, Error> {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(x) => out.push(x),
            Component::ParentDir if !out.pop() => {
                return Err(Error::OutsideContext {
                    path: p.to_string(),
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The sources `patterns` name under `root`. `ignore` applies to the build context only.
pub fn select(
    root: &Path,
    patterns: &[String],
    ignore: Option<&Dockerignore>,
) -> Result<Vec<Source>, Error> {
    let mut out = Vec::new();
    for pattern in patterns {
        let rel = clean_relative(pattern)?;
        let rel_str = rel.to_string_lossy().replace('\\', "/");
        if pattern.contains(['*', '?', '[']) {
            let re =
                Regex::new(&crate::context::dockerignore::to_regex(&rel_str)).map_err(|e| {
                    Error::BadPattern {
                        pattern: pattern.clone(),
                        reason: e.to_string(),
                    }
                })?;
            let mut found = false;
            for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
                let entry = entry.map_err(|e| Error::Io {
                    op: "read",
                    path: root.to_path_buf(),
                    source: e.into(),
                })?;
                let r = entry
                    .path()
                    .strip_prefix(root)
                    .expect("under root")
                    .to_string_lossy()
                    .into_owned();
                if re.is_match(&r) && !ignore.is_some_and(|i| i.excludes(&r)) {
                    out.push(Source {
                        path: PathBuf::from(r),
                    });
                    found = true;
                }
            }
            if !found {
                return Err(Error::NoSources {
                    pattern: pattern.clone(),
                });
            }
            continue;
        }
        let full = resolve_in(root, &rel)?;
        if fs::symlink_metadata(&full).is_err()
            || (!rel_str.is_empty() && ignore.is_some_and(|i| i.excludes(&rel_str)))
        {
            return Err(Error::NotInContext {
                pattern: pattern.clone(),
            });
        }
        out.push(Source {
            path: full
                .strip_prefix(root)
                .expect("resolved inside")
                .to_path_buf(),
        });
    }
    Ok(out)
}

/// `rel` under `root`, following symlinks inside `root`; one that leads out is refused.
pub fn resolve_in(root: &Path, rel: &Path) -> Result<PathBuf, Error> {
    let mut current = PathBuf::new();
    let mut todo: Vec<PathBuf> = rel
        .components()
        .rev()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        if part == Path::new("..") {
            if !current.pop() {
                return Err(Error::SymlinkOut {
                    path: rel.display().to_string(),
                });
            }
            continue;
        }
        let candidate = current.join(&part);
        match fs::read_link(root.join(&candidate)) {
            Ok(target) => {
                hops += 1;
                if hops > 40 || target.is_absolute() {
                    return Err(Error::SymlinkOut {
                        path: rel.display().to_string(),
                    });
                }
                todo.extend(
                    target
                        .components()
                        .rev()
                        .map(|c| PathBuf::from(c.as_os_str())),
                );
            }
            Err(_) => current = candidate,
        }
    }
    Ok(root.join(current))
}

/// A digest of the sources' content, modes and names (not their times): the cache key
/// part of COPY; and each entry's own digest, by path, to tell which file changed.
/// `hashes` remembers file digests by (path, size, mtime, ctime, device, inode), so an
/// unchanged file is not read again. ctime is the kernel's and cannot be set back, so a
/// file rewritten in place with its size and mtime restored is read again; a file
/// changed in the last second is not remembered (a second write in the same clock tick
/// would keep the ctime).
pub fn content_key(
    root: &Path,
    sources: &[Source],
    ignore: Option<&Dockerignore>,
    exclude: Option<&Dockerignore>,
    hashes: &mut BTreeMap<String, String>,
) -> Result<(String, BTreeMap<String, String>), Error> {
    // The walk, in order: the entries the sources hold (readdir alone, no stat yet).
    let mut found: Vec<Found> = Vec::new();
    for (index, source) in sources.iter().enumerate() {
        let top = root.join(&source.path);
        let walker = walkdir::WalkDir::new(&top)
            .follow_root_links(true)
            .sort_by_file_name();
        for entry in walker {
            let entry = entry.map_err(|e| Error::Io {
                op: "read",
                path: top.to_path_buf(),
                source: e.into(),
            })?;
            let rel = entry
                .path()
                .strip_prefix(root)
                .unwrap_or(entry.path())
                .to_string_lossy()
                .into_owned();
            if ignore.is_some_and(|i| i.excludes(&rel)) && entry.depth() > 0 {
                continue;
            }
            let within = entry
                .path()
                .strip_prefix(&top)
                .unwrap_or(Path::new(""))
                .to_string_lossy()
                .into_owned();
            if excluded(exclude, &rel, &within) && (entry.depth() > 0 || !rel.is_empty()) {
                continue;
            }
            found.push(Found {
                source: index,
                path: entry.into_path(),
                rel,
                within,
            });
        }
    }
    // Each entry's stat (and an unknown file's digest), on every core: for a large
    // context fully cached, the stats are the whole cost.
    let known: &BTreeMap<String, String> = hashes;
    let threads = if found.len() < PARALLEL_FROM {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    let chunk = found.len().div_ceil(threads).max(1);
    let keyed: Vec<Result<Keyed, Error>> = std::thread::scope(|s| {
        let jobs: Vec<_> = found
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || part.iter().map(|f| entry_key(f, known)).collect::<Vec<_>>())
            })
            .collect();
        jobs.into_iter()
            .flat_map(|j| j.join().expect("a stat thread does not panic"))
            .collect()
    });
    let mut h = Sha256::new();
    let mut entries = BTreeMap::new();
    for (f, keyed) in found.into_iter().zip(keyed) {
        let keyed = keyed?;
        if let Some((meta_key, digest)) = keyed.learned {
            hashes.insert(meta_key, digest);
        }
        h.update(
            format!(
                "{}\0{}\0{}\n",
                sources[f.source].path.display(),
                f.within,
                keyed.key
            )
            .as_bytes(),
        );
        entries.insert(f.rel, keyed.key);
    }
    Ok((hex::encode(h.finalize()), entries))
}

/// From this many entries on, [`content_key`] stats them on every core.
const PARALLEL_FROM: usize = 256;

/// An entry the walk found: which source, where, its path in the context and in the
/// source.
struct Found {
    source: usize,
    path: PathBuf,
    rel: String,
    within: String,
}

/// An entry's key (`MODE:file:DIGEST`, `MODE:link:TARGET`, `MODE:dir`), and a digest
/// read now that is worth remembering by its stat.
struct Keyed {
    key: String,
    learned: Option<(String, String)>,
}

fn entry_key(f: &Found, known: &BTreeMap<String, String>) -> Result<Keyed, Error> {
    let m = f.path.symlink_metadata().map_err(|e| Error::Io {
        op: "read",
        path: f.path.clone(),
        source: e,
    })?;
    let mut learned = None;
    let what = if m.file_type().is_symlink() {
        format!(
            "link:{}",
            fs::read_link(&f.path).unwrap_or_default().display()
        )
    } else if m.is_file() {
        let ctime_ns = m.ctime_nsec() + m.ctime() * 1_000_000_000;
        let meta_key = format!(
            "{}|{}|{}|{}|{}|{}",
            f.path.display(),
            m.len(),
            m.mtime_nsec() + m.mtime() * 1_000_000_000,
            ctime_ns,
            m.dev(),
            m.ino()
        );
        let digest = match known.get(&meta_key) {
            Some(d) => d.clone(),
            None => {
                let read_err = |e| Error::Io {
                    op: "read",
                    path: f.path.clone(),
                    source: e,
                };
                let mut file = fs::File::open(&f.path).map_err(read_err)?;
                let d = file_digest(&mut file).map_err(read_err)?;
                if !changed_lately(ctime_ns) {
                    learned = Some((meta_key, d.clone()));
                }
                d
            }
        };
        format!("file:{digest}")
    } else {
        "dir".to_string()
    };
    Ok(Keyed {
        key: format!("{:o}:{what}", m.mode()),
        learned,
    })
}

/// The prefix of a file digest in a content key: the algorithm, so a digest remembered
/// by an earlier kiln with another algorithm is never taken for one of this.
pub(crate) const FILE_DIGEST_PREFIX: &str = "blake3:";

/// A context file's digest for content keys: BLAKE3, not SHA-256. It is never an OCI
/// digest (the layer's own digest is SHA-256, made as the layer is written), only the
/// test of whether a file changed, and a cold COPY of a large file waits for it before
/// anything else can start: BLAKE3 reads a 1 GiB file in 0.19 s here, SHA-256 (with the
/// CPU's SHA extensions) in 0.65 s.
fn file_digest(file: &mut fs::File) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    kiln_image::digest::read_in_pieces(file, |piece| {
        hasher.update(piece);
    })?;
    Ok(format!(
        "{FILE_DIGEST_PREFIX}{}",
        hasher.finalize().to_hex()
    ))
}

/// Whether a file's ctime is too recent to trust its stat: a write after we read it could
/// still get the same ctime. Linux stamps files with its coarse clock, at most one tick
/// (10 ms at the lowest HZ) behind: 50 ms is safe. A ctime of whole seconds is taken for a
/// filesystem that stamps whole seconds (or FAT's two): then two seconds.
fn changed_lately(ctime_ns: i64) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    let window = if ctime_ns % 1_000_000_000 == 0 {
        2_000_000_000
    } else {
        50_000_000
    };
    now - ctime_ns < window
}

/// Ownership and mode for copied files (`--chown`, `--chmod`).
#[derive(Debug, Clone, Copy)]
pub struct Attrs {
    pub uid: u32,
    pub gid: u32,
    pub chmod: Option<u32>,
}

/// One COPY or ADD: what to copy from where, and how.
#[derive(Clone, Copy)]
pub struct CopyJob<'a> {
    pub root: &'a Path,
    pub sources: &'a [Source],
    /// Absolute in the image.
    pub dest: &'a str,
    /// The context's `.dockerignore` (None when copying from a stage or image).
    pub ignore: Option<&'a Dockerignore>,
    pub attrs: Attrs,
    /// Sources (by path in the context) already in `upper`, hard-linked from the previous
    /// result of the same step by [`link_tree`]: they are left as they are.
    pub linked: &'a HashSet<String>,
    /// ADD: unpack local tar archives into the destination.
    pub extract_archives: bool,
    /// `--exclude` patterns (matched against paths in the context and within the source).
    pub exclude: Option<&'a Dockerignore>,
    /// `--parents`: keep each source's path under the destination.
    pub parents: bool,
    /// Leave large regular files as placeholders (see [`Placeholders`]): the sources
    /// outlive the writing of the layer, and nothing else writes into `upper`.
    pub placeholders: bool,
}

/// From this size on (above any account file a later step reads through the layer's
/// outline), a copied file is a placeholder when the job allows it: its data is read
/// once, into the layer, instead of into the step's directory and from there again.
const PLACEHOLDER_ABOVE: u64 = kiln_image::tree::MAX_ACCOUNT_FILE;

/// Where a copy writes regular files: whole, or as placeholders for the large ones.
struct Files<'a> {
    upper: &'a Path,
    allow_placeholders: bool,
    placeholders: Placeholders,
}

/// Whether `--exclude` leaves an entry out.
pub fn excluded(exclude: Option<&Dockerignore>, in_context: &str, in_source: &str) -> bool {
    exclude
        .is_some_and(|x| x.excludes(in_context) || (!in_source.is_empty() && x.excludes(in_source)))
}

/// Copies `sources` from `root` into `upper` at `dest` (absolute in the image), as Docker
/// does: a directory's contents go into the destination; a file goes to `dest/NAME` when
/// the destination is a directory (it ends with `/`, or there are several sources).
/// Returns the files left as placeholders, whose data the layer reads from the sources.
pub fn copy(job: &CopyJob, upper: &Path) -> Result<Placeholders, Error> {
    let CopyJob {
        root,
        sources,
        dest,
        ignore,
        attrs,
        linked,
        extract_archives,
        exclude,
        parents,
        placeholders,
    } = *job;
    let mut files = Files {
        upper,
        allow_placeholders: placeholders,
        placeholders: Placeholders::new(),
    };
    let dest_is_dir = dest.ends_with('/') || sources.len() > 1;
    let dest_rel = clean_relative(dest)?;
    for source in sources {
        let from = root.join(&source.path);
        let meta = fs::metadata(&from).map_err(|e| Error::Io {
            op: "read",
            path: from.clone(),
            source: e,
        })?;
        let source_rel = source.path.to_string_lossy().into_owned();
        if excluded(exclude, &source_rel, "") && !source_rel.is_empty() {
            continue;
        }
        let target = if parents {
            upper.join(&dest_rel).join(&source.path)
        } else if meta.is_dir() || !dest_is_dir {
            upper.join(&dest_rel)
        } else {
            upper
                .join(&dest_rel)
                .join(source.path.file_name().unwrap_or_default())
        };
        make_parents(upper, &target)?;
        if meta.is_dir() {
            for entry in walkdir::WalkDir::new(&from)
                .follow_root_links(true)
                .sort_by_file_name()
            {
                let entry = entry.map_err(|e| Error::Io {
                    op: "read",
                    path: from.to_path_buf(),
                    source: e.into(),
                })?;
                let rel_ctx = entry
                    .path()
                    .strip_prefix(root)
                    .unwrap_or(entry.path())
                    .to_string_lossy()
                    .into_owned();
                if entry.depth() > 0 && ignore.is_some_and(|i| i.excludes(&rel_ctx)) {
                    continue;
                }
                if !entry.file_type().is_dir() && linked.contains(&rel_ctx) {
                    continue;
                }
                let within = entry.path().strip_prefix(&from).unwrap_or(Path::new(""));
                if entry.depth() > 0 && excluded(exclude, &rel_ctx, &within.to_string_lossy()) {
                    continue;
                }
                copy_one(
                    entry.path(),
                    &target.join(within),
                    attrs,
                    entry.depth() == 0,
                    &mut files,
                )?;
            }
        } else if linked.contains(&source.path.to_string_lossy().into_owned()) {
            // Already there from the previous result.
        } else if extract_archives && is_tar_archive(&from) {
            // ADD unpacks a local tar (plain, gzip or zstd) into the destination directory,
            // with the layer applier's refusal of anything that would land outside it.
            let dir = upper.join(&dest_rel);
            real_dirs(upper, &dir)?;
            let file = fs::File::open(&from).map_err(|e| Error::Io {
                op: "read",
                path: from.clone(),
                source: e,
            })?;
            kiln_image::layer::apply(file, &dir)?;
        } else {
            copy_one(&from, &target, attrs, true, &mut files)?;
        }
    }
    Ok(files.placeholders)
}

/// Whether `path` holds a tar archive, plain or compressed (gzip, zstd, bzip2, xz).
fn is_tar_archive(path: &Path) -> bool {
    let Ok(file) = fs::File::open(path) else {
        return false;
    };
    let Ok(mut data) = kiln_image::layer::Decompressor::new(file) else {
        return false;
    };
    let mut head = [0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match std::io::Read::read(&mut data, &mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n == 512 && &head[257..262] == b"ustar"
}

/// Recreates the tree `from` (a snapshot) in the empty `to`: directories and symlinks
/// afresh with the same owner, mode and time, regular files as hard links. Snapshots are
/// never changed in place (a changed file is removed and written anew), so sharing their
/// files is safe; it makes an unchanged file cost a link instead of a copy.
pub fn link_tree(from: &Path, to: &Path) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e: std::io::Error| Error::Io {
            op: "link",
            path,
            source: e,
        }
    };
    for entry in walkdir::WalkDir::new(from).min_depth(1) {
        let entry = entry.map_err(|e| Error::Io {
            op: "read",
            path: from.to_path_buf(),
            source: e.into(),
        })?;
        let target = to.join(entry.path().strip_prefix(from).expect("under from"));
        let meta = entry.path().symlink_metadata().map_err(io(entry.path()))?;
        let ft = meta.file_type();
        if ft.is_file() {
            fs::hard_link(entry.path(), &target).map_err(io(&target))?;
            continue;
        }
        if ft.is_dir() {
            fs::create_dir(&target).map_err(io(&target))?;
            fs::set_permissions(&target, fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(io(&target))?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(
                fs::read_link(entry.path()).map_err(io(entry.path()))?,
                &target,
            )
            .map_err(io(&target))?;
        } else {
            continue;
        }
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            &target,
            Some(meta.uid().into()),
            Some(meta.gid().into()),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| Error::Io {
            op: "change the owner of",
            path: target.clone(),
            source: e.into(),
        })?;
    }
    // Directory times last: linking into them changed them.
    for entry in walkdir::WalkDir::new(from).contents_first(true) {
        let entry = entry.map_err(|e| Error::Io {
            op: "read",
            path: from.to_path_buf(),
            source: e.into(),
        })?;
        if entry.file_type().is_file() {
            continue;
        }
        let meta = entry.path().symlink_metadata().map_err(io(entry.path()))?;
        let target = to.join(entry.path().strip_prefix(from).expect("under from"));
        let t = nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec());
        let _ = nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &target,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        );
    }
    Ok(())
}

/// Parent directories of a destination are made as root with mode 755.
fn make_parents(upper: &Path, target: &Path) -> Result<(), Error> {
    match target.parent() {
        Some(parent) => real_dirs(upper, parent),
        None => Ok(()),
    }
}

/// Makes `path` (under `upper`) and every directory between real directories (new ones
/// as root with mode 755). A symlink or file in the way — left by an earlier source of
/// the same COPY, or by the previous result an incremental COPY starts from — is
/// replaced, never followed: a link to `/etc` must not take the writes to the host.
fn real_dirs(upper: &Path, path: &Path) -> Result<(), Error> {
    let rel = path.strip_prefix(upper).unwrap_or(Path::new(""));
    let mut at = upper.to_path_buf();
    for part in rel.components() {
        at.push(part);
        replace_with_dir(&at, 0o755)?;
    }
    Ok(())
}

/// `path` as a real directory: kept if it is one, else made (replacing a symlink or
/// file), with `mode` when made.
fn replace_with_dir(path: &Path, mode: u32) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Io {
        op: "create directory",
        path: path.to_path_buf(),
        source: e,
    };
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => fs::remove_file(path).map_err(io)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    fs::create_dir(path).map_err(io)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io)
}

fn copy_one(
    from: &Path,
    to: &Path,
    attrs: Attrs,
    follow: bool,
    files: &mut Files,
) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Io {
        op: "copy",
        path: from.to_path_buf(),
        source: e,
    };
    let meta = if follow {
        fs::metadata(from)
    } else {
        fs::symlink_metadata(from)
    }
    .map_err(io)?;
    let ft = meta.file_type();
    if ft.is_dir() {
        // Its parent is a real directory (made by `make_parents`, or by this walk).
        replace_with_dir(to, 0o755)?;
    } else if ft.is_symlink() {
        let _ = fs::remove_file(to);
        std::os::unix::fs::symlink(fs::read_link(from).map_err(io)?, to).map_err(io)?;
    } else if ft.is_file() {
        let _ = fs::remove_file(to);
        let rel = to.strip_prefix(files.upper).expect("under upper");
        if files.allow_placeholders && meta.len() > PLACEHOLDER_ABOVE {
            fs::File::create(to)
                .and_then(|f| f.set_len(meta.len()))
                .map_err(io)?;
            files
                .placeholders
                .insert(rel.to_path_buf(), from.to_path_buf());
        } else {
            fs::copy(from, to).map_err(io)?;
            // An earlier source's placeholder here is gone.
            files.placeholders.remove(rel);
        }
    } else {
        // Sockets, devices and fifos in a build context are not copied, as in Docker.
        return Ok(());
    }
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        to,
        Some(attrs.uid.into()),
        Some(attrs.gid.into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::Io {
        op: "change the owner of",
        path: to.to_path_buf(),
        source: e.into(),
    })?;
    if !ft.is_symlink() {
        let mode = attrs.chmod.unwrap_or(meta.mode() & 0o7777);
        fs::set_permissions(to, fs::Permissions::from_mode(mode)).map_err(io)?;
        let t = nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec());
        let _ = nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            to,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::changed_lately;

    #[test]
    fn a_stat_is_trusted_after_a_clock_tick_or_two_seconds_on_whole_second_stamps() {
        const S: i64 = 1_000_000_000;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        let whole = now - now % S;
        assert!(changed_lately((now - 10_000_000) | 1), "10 ms ago");
        assert!(
            !changed_lately((now - S / 2) | 1),
            "half a second ago, in ns"
        );
        assert!(
            changed_lately(whole - S),
            "a whole-second stamp a second ago"
        );
        assert!(!changed_lately(whole - 3 * S), "three seconds ago");
    }
}
