//! A build's use of the store's layer snapshots ([`Store::snapshot`]), and each build's
//! scratch space, `KILN_ROOT/tmp/build-<id>/`, held by a lock on
//! `build-<id>.lock` for as long as the build runs, so that the next build can tell (and
//! remove) the scratch of a build that was killed.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use kiln_image::digest::{DiffId, Digest};
use kiln_image::store::Store;

use crate::Error;

pub struct Snapshots {
    /// This build's scratch directory.
    tmp: PathBuf,
    lock: PathBuf,
    _held: Flock<File>,
}

impl Drop for Snapshots {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.tmp);
        let _ = std::fs::remove_file(&self.lock);
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        op: "remove",
        path: path.to_path_buf(),
        source,
    }
}

impl Snapshots {
    pub fn new(root: &Path) -> Result<Snapshots, Error> {
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(io_error(&tmp))?;
        sweep(&tmp);
        // Locked before its name is visible, so no other build ever takes it for a
        // dead one's.
        let unnamed = tempfile::NamedTempFile::new_in(&tmp).map_err(io_error(&tmp))?;
        let held = Flock::lock(
            unnamed.as_file().try_clone().map_err(io_error(&tmp))?,
            FlockArg::LockExclusiveNonblock,
        )
        .map_err(|(_, e)| io_error(&tmp)(e.into()))?;
        let id = format!("build-{}-{:x}", std::process::id(), rand_suffix());
        let lock = tmp.join(format!("{id}.lock"));
        unnamed
            .persist(&lock)
            .map_err(|e| io_error(&lock)(e.error))?;
        let scratch = tmp.join(id);
        std::fs::create_dir(&scratch).map_err(io_error(&scratch))?;
        make_mount_points(&scratch.join(MOUNT_POINTS))?;
        let root_mount_point = scratch.join(ROOT_MOUNT_POINT);
        std::fs::create_dir(&root_mount_point).map_err(io_error(&root_mount_point))?;
        Ok(Snapshots {
            tmp: scratch,
            lock,
            _held: held,
        })
    }

    /// This build's scratch directory (removed with the value).
    pub fn build_dir(&self) -> &Path {
        &self.tmp
    }

    /// A layer of the mount points every RUN step has (`/proc`, `/dev`, `/sys`,
    /// `/etc/hosts`, ...), made once per build, for the bottom of each step's stack: an
    /// image that lacks them still has them, and no step makes (then removes) them in its
    /// own upper directory. Whatever the image has shadows it.
    pub fn mount_points(&self) -> PathBuf {
        self.tmp.join(MOUNT_POINTS)
    }

    /// The directory every RUN step's root is mounted on, in the step's own mount
    /// namespace (so steps running at once share it), made once per build: a step
    /// makes and removes no directory of its own for it.
    pub fn root_mount_point(&self) -> PathBuf {
        self.tmp.join(ROOT_MOUNT_POINT)
    }

    /// A fresh scratch directory for one step (removed with the value).
    pub fn scratch(&self) -> Result<tempfile::TempDir, Error> {
        tempfile::Builder::new()
            .prefix("step-")
            .tempdir_in(&self.tmp)
            .map_err(io_error(&self.tmp))
    }

    /// The snapshot of a layer from the store ([`Store::snapshot`]), unpacked in this
    /// build's scratch on first use.
    pub fn ensure(&self, store: &Store, diff_id: &DiffId, blob: &Digest) -> Result<PathBuf, Error> {
        Ok(store.snapshot(diff_id, blob, &self.tmp)?)
    }

    /// Makes `dir` (a step's upper directory) the snapshot of `diff_id`.
    pub fn adopt(&self, store: &Store, dir: &Path, diff_id: &DiffId) -> Result<PathBuf, Error> {
        Ok(store.adopt_snapshot(dir, diff_id)?)
    }
}

const MOUNT_POINTS: &str = "mount-points";
const ROOT_MOUNT_POINT: &str = "root";

/// The directories and empty files of [`Snapshots::mount_points`].
fn make_mount_points(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    for d in ["proc", "dev", "sys", "etc"] {
        let path = dir.join(d);
        std::fs::create_dir_all(&path).map_err(io_error(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(io_error(&path))?;
    }
    for f in ["etc/hosts", "etc/resolv.conf"] {
        let path = dir.join(f);
        std::fs::write(&path, b"").map_err(io_error(&path))?;
    }
    Ok(())
}

/// Distinguishes two builds of one process.
fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    (nanos << 16) | NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Removes the scratch of builds that are no longer running: their lock file is not
/// held. (A killed build's mounts went with its mount namespace; only files are left.)
fn sweep(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name
            .strip_suffix(".lock")
            .filter(|n| n.starts_with("build-"))
        else {
            continue;
        };
        let Ok(file) = File::open(entry.path()) else {
            continue;
        };
        // Held by a running build: leave it.
        let Ok(_dead) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
            continue;
        };
        let _ = std::fs::remove_dir_all(tmp.join(id));
        let _ = std::fs::remove_file(entry.path());
    }
}
