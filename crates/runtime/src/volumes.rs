//! Named volumes, kept as docker keeps them: `KILN_ROOT/volumes/<name>/_data` holds the
//! files, `KILN_ROOT/volumes/<name>/volume.json` when and with which labels it was made.
//! A volume is made on first use, and filled from the image's content at the mount
//! point the first time it is mounted while still empty.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::os::fd::AsRawFd;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A named volume: a directory of the store's that containers mount (`docker volume`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Volume {
    /// Its name.
    pub name: String,
    /// RFC 3339.
    pub created: String,
    /// `--label`s.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Made for one container (an image's `VOLUME`, or `-v /path`): removed with it by
    /// `rm -v`.
    #[serde(default)]
    pub anonymous: bool,
    /// Its data directory (`KILN_ROOT/volumes/NAME/_data`).
    #[serde(skip)]
    pub mountpoint: PathBuf,
}

/// The store's volumes.
pub struct Volumes {
    dir: PathBuf,
}

fn io<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> Error + 'p {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    name.len() >= 2
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl Volumes {
    /// The volumes of the store `root`.
    pub fn open(root: &Path) -> Result<Volumes, Error> {
        let dir = root.join("volumes");
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        Ok(Volumes { dir })
    }

    fn read(&self, name: &str) -> Option<Volume> {
        let dir = self.dir.join(name);
        let mut v: Volume =
            serde_json::from_slice(&std::fs::read(dir.join("volume.json")).ok()?).ok()?;
        v.mountpoint = dir.join("_data");
        Some(v)
    }

    /// The volume `name`.
    pub fn get(&self, name: &str) -> Result<Volume, Error> {
        self.read(name).ok_or_else(|| Error::NoSuchVolume {
            name: name.to_string(),
        })
    }

    /// The volume `name`, made (empty) if there is none; the bool says whether it was made
    /// now. Made under a temporary name and renamed: two containers that make the same
    /// volume at once both get the one that won.
    pub fn create(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<(Volume, bool), Error> {
        if !valid_name(name) {
            return Err(Error::VolumeName {
                name: name.to_string(),
            });
        }
        if let Some(v) = self.read(name) {
            return Ok((v, false));
        }
        let tmp = tempfile::Builder::new()
            .prefix(".new-")
            .tempdir_in(&self.dir)
            .map_err(io("create a directory in", &self.dir))?;
        let volume = Volume {
            name: name.to_string(),
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            labels,
            anonymous,
            mountpoint: PathBuf::new(),
        };
        let data = tmp.path().join("_data");
        std::fs::create_dir(&data).map_err(io("create", &data))?;
        let meta = tmp.path().join("volume.json");
        std::fs::write(
            &meta,
            serde_json::to_vec_pretty(&volume).expect("a volume serializes"),
        )
        .map_err(io("write", &meta))?;
        let dir = self.dir.join(name);
        let made = std::fs::rename(tmp.keep(), &dir).is_ok();
        Ok((self.get(name)?, made))
    }

    /// Every volume.
    pub fn list(&self) -> Result<Vec<Volume>, Error> {
        let mut out: Vec<Volume> = std::fs::read_dir(&self.dir)
            .map_err(io("read", &self.dir))?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    return None;
                }
                self.read(&name)
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes a volume; the caller has checked that no container uses it.
    pub fn remove(&self, name: &str) -> Result<(), Error> {
        let dir = self.dir.join(name);
        if self.read(name).is_none() {
            return Err(Error::NoSuchVolume {
                name: name.to_string(),
            });
        }
        let gone = self.dir.join(format!(".gone-{name}"));
        std::fs::rename(&dir, &gone).map_err(io("remove", &dir))?;
        std::fs::remove_dir_all(&gone).map_err(io("remove", &gone))
    }
}

/// Runs `f` on a read-only overlay of `lowers` (topmost first) mounted on a scratch
/// directory under `scratch`, in the mount namespace of a thread of its own: nothing of
/// the view is seen outside, or outlives `f`. Child processes `f` starts see it too.
pub fn with_view<T: Send + 'static>(
    lowers: &[PathBuf],
    scratch: &Path,
    f: impl FnOnce(&Path) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    with_overlay(lowers, None, scratch, f)
}

/// [`with_view`], writable: changes go to `upper` (with overlayfs' `work` beside it),
/// as a stopped container's would.
pub fn with_writable_view<T: Send + 'static>(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    scratch: &Path,
    f: impl FnOnce(&Path) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    with_overlay(
        lowers,
        Some((upper.to_path_buf(), work.to_path_buf())),
        scratch,
        f,
    )
}

fn with_overlay<T: Send + 'static>(
    lowers: &[PathBuf],
    upper: Option<(PathBuf, PathBuf)>,
    scratch: &Path,
    f: impl FnOnce(&Path) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let lowers = lowers.to_vec();
    let scratch = scratch.to_path_buf();
    std::thread::spawn(move || -> Result<T, Error> {
        use nix::mount::MsFlags;
        let failed = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |e: nix::Error| Error::Io {
                op,
                path,
                source: e.into(),
            }
        };
        // This thread alone (unshare affects the calling thread's mount namespace).
        crate::isolate_mounts().map_err(|e| Error::Io {
            op: "make a mount namespace under",
            path: scratch.clone(),
            source: e,
        })?;
        let view = tempfile::Builder::new()
            .prefix("view-")
            .tempdir_in(&scratch)
            .map_err(io("create a directory in", &scratch))?;
        let lowerdir: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
        let (options, flags) = match &upper {
            Some((upper, work)) => (
                format!(
                    "lowerdir={},upperdir={},workdir={}",
                    lowerdir.join(":"),
                    upper.display(),
                    work.display()
                ),
                MsFlags::empty(),
            ),
            // overlayfs wants two lower directories at least when there is no upper one.
            None if lowerdir.len() == 1 => (
                format!("lowerdir={}:{}", lowerdir[0], lowerdir[0]),
                MsFlags::MS_RDONLY,
            ),
            None => (
                format!("lowerdir={}", lowerdir.join(":")),
                MsFlags::MS_RDONLY,
            ),
        };
        nix::mount::mount(
            Some("overlay"),
            view.path(),
            Some("overlay"),
            flags,
            Some(options.as_str()),
        )
        .map_err(failed("mount the layers on", view.path()))?;
        let result = f(view.path());
        let _ = nix::mount::umount2(view.path(), nix::mount::MntFlags::MNT_DETACH);
        result
    })
    .join()
    .unwrap_or_else(|_| {
        Err(Error::Io {
            op: "read the layers",
            path: PathBuf::new(),
            source: std::io::Error::other("the reader panicked"),
        })
    })
}

/// Runs `cmd`; an error naming `op` and `path` when it fails.
fn run(mut cmd: std::process::Command, op: &'static str, path: &Path) -> Result<(), Error> {
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(Error::Io {
            op,
            path: path.to_path_buf(),
            source: std::io::Error::other(format!("{:?} exited with {s}", cmd.get_program())),
        }),
        Err(e) => Err(Error::Io {
            op,
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// Copies what the image (its layer snapshots `lowers`, topmost first) has at `path` into
/// `target` (an empty volume), owners, modes and times kept, as docker fills a new
/// volume.
pub fn fill_volume(
    lowers: &[PathBuf],
    path: &Path,
    target: &Path,
    scratch: &Path,
) -> Result<(), Error> {
    let (path, target) = (path.to_path_buf(), target.to_path_buf());
    with_view(lowers, scratch, move |view| {
        // The path resolved inside the image (a symlink of the image never leads to the
        // host's files), then copied through its descriptor: cp copies links as links.
        let Some(dir) = open_in(view, &path) else {
            return Ok(());
        };
        let mut cp = std::process::Command::new("cp");
        cp.arg("-a")
            .arg(format!(
                "/proc/{}/fd/{}/.",
                std::process::id(),
                dir.as_raw_fd()
            ))
            .arg(&target);
        run(cp, "fill the volume", &target)
    })
}

/// Writes the tree of `lowers` (topmost first: a container's upper directory, then its
/// image's layers) as one tar to `out` (`-`: standard output), numeric owners, as
/// `docker export` does.
pub fn export(lowers: &[PathBuf], out: &Path, scratch: &Path) -> Result<(), Error> {
    let out = out.to_path_buf();
    with_view(lowers, scratch, move |view| {
        let mut tar = std::process::Command::new("tar");
        tar.arg("--numeric-owner")
            .arg("--xattrs")
            .arg("-C")
            .arg(view)
            .arg("-cf")
            .arg(&out)
            .arg(".");
        run(tar, "write", &out)
    })
}

/// The file or directory at `path` in the tree at `root`, resolved inside it (a symlink of
/// the tree never leads out of it, a final one is followed inside it), as an `O_PATH`
/// descriptor: `/proc/self/fd/N` names it for a program.
pub fn open_in_root(root: &Path, path: &Path) -> Result<std::os::fd::OwnedFd, Error> {
    use std::os::unix::ffi::OsStrExt;
    let fail = |e: std::io::Error| Error::Io {
        op: "open in the container",
        path: path.to_path_buf(),
        source: e,
    };
    let c_root = std::ffi::CString::new(root.as_os_str().as_bytes())
        .map_err(|_| fail(std::io::Error::other("a NUL byte in the path")))?;
    let root_fd = crate::in_root::open_dir(&c_root).map_err(fail)?;
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let c_rel = std::ffi::CString::new(rel.as_os_str().as_bytes())
        .map_err(|_| fail(std::io::Error::other("a NUL byte in the path")))?;
    crate::in_root::openat2(root_fd.as_raw_fd(), &c_rel, 0).map_err(fail)
}

/// The directory at `path` in the tree at `root`, resolved inside it; None when there is
/// no such directory.
fn open_in(root: &Path, path: &Path) -> Option<std::os::fd::OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let root = std::ffi::CString::new(root.as_os_str().as_bytes()).ok()?;
    let root = crate::in_root::open_dir(&root).ok()?;
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = std::ffi::CString::new(rel.as_os_str().as_bytes()).ok()?;
    crate::in_root::openat2(root.as_raw_fd(), &rel, nix::libc::O_DIRECTORY).ok()
}
