//! Network namespaces kept as files (a bind mount of the namespace, as `ip netns add`
//! keeps them): made before the container, so its interfaces are set up before its
//! program runs; gone — with every interface in it — when the file is unmounted and the
//! last process in it has left.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// Makes a network namespace with `lo` up and binds it on `path` (made empty). Any
/// user may bind a low port in it, as in docker's containers
/// (`net.ipv4.ip_unprivileged_port_start=0`; set from here, as the host's root: a
/// container in a user namespace of its own could not).
pub(crate) fn create(path: &Path) -> io::Result<()> {
    File::create(path)?;
    // In a thread of its own: unshare(2) moves only the calling thread, which ends with
    // the namespace kept by the mount.
    let made = std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            unshare(CloneFlags::CLONE_NEWNET)?;
            mount(
                Some("/proc/thread-self/ns/net"),
                path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )?;
            crate::network::loopback_up()?;
            // The thread's namespace: /proc/sys/net is the opener's.
            std::fs::write("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0")
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the thread making the namespace panicked")))
    });
    if made.is_err() {
        let _ = remove(path);
    }
    made
}

/// Runs `f` in the namespace kept at `path` (in a thread of its own, which alone enters
/// it): a socket made there stays that namespace's.
pub(crate) fn within<T: Send>(
    path: &Path,
    f: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    let namespace = File::open(path)?;
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(namespace.as_fd(), CloneFlags::CLONE_NEWNET)?;
            f()
        })
        .join()
        .unwrap_or_else(|_| {
            Err(io::Error::other(
                "a thread in the network namespace panicked",
            ))
        })
    })
}

/// Unmounts and removes the file; missing already is fine (teardown runs again after a
/// crash).
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
