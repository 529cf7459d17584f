//! User namespaces (`kiln run --userns=auto`): the container's root is a range of host
//! IDs of its own, not the host's root. The namespace is made by a short-lived child whose
//! maps this process writes (as root of the parent namespace), and kept as a descriptor.
//! The layers and the container's own directory are then seen through idmapped mounts of
//! that namespace, so the files on disk keep the image's owners (0 stays 0, for `commit`,
//! `cp` and builds) while, inside, the container's root owns what the image's root owns.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use nix::libc;

use crate::error::Error;
use crate::rootfs::apply::{mount_setattr, MountAttr};

/// `MOUNT_ATTR_IDMAP` (linux/mount.h).
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
/// `OPEN_TREE_CLONE` (linux/mount.h).
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `MOVE_MOUNT_F_EMPTY_PATH` (linux/mount.h).
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x0000_0004;

/// A user namespace in which IDs `0..size` are host IDs `host..host + size` (users and
/// groups alike).
pub(crate) fn make(host: u32, size: u32) -> Result<OwnedFd, Error> {
    let failed = |op: &'static str, source: io::Error| Error::Io {
        op,
        path: PathBuf::from("a user namespace"),
        source,
    };
    let (ready_r, ready_w) = std::io::pipe().map_err(|e| failed("make a pipe for", e))?;
    let (done_r, done_w) = std::io::pipe().map_err(|e| failed("make a pipe for", e))?;
    // SAFETY: the child makes system calls only (unshare, write, read, _exit): no
    // allocation after fork in a threaded process.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(failed("fork for", io::Error::last_os_error()));
    }
    if child == 0 {
        // SAFETY: as above.
        unsafe {
            // Our copies of the parent's ends closed: the read below ends when the
            // parent closes its own.
            libc::close(done_w.as_raw_fd());
            libc::close(ready_r.as_raw_fd());
            let ok: u8 = u8::from(libc::unshare(libc::CLONE_NEWUSER) == 0);
            libc::write(ready_w.as_raw_fd(), (&ok as *const u8).cast(), 1);
            let mut byte = 0u8;
            libc::read(done_r.as_raw_fd(), (&mut byte as *mut u8).cast(), 1);
            libc::_exit(0);
        }
    }
    drop(ready_w);
    drop(done_r);
    let made = (|| {
        let mut ok = [0u8];
        std::io::Read::read_exact(&mut &ready_r, &mut ok).map_err(|e| failed("make", e))?;
        if ok[0] != 1 {
            return Err(failed("unshare", io::Error::from_raw_os_error(libc::EPERM)));
        }
        let map = format!("0 {host} {size}\n");
        for file in ["uid_map", "gid_map"] {
            let path = PathBuf::from(format!("/proc/{child}/{file}"));
            std::fs::write(&path, &map).map_err(|source| Error::Io {
                op: "write",
                path,
                source,
            })?;
        }
        let ns = PathBuf::from(format!("/proc/{child}/ns/user"));
        std::fs::File::open(&ns)
            .map(OwnedFd::from)
            .map_err(|source| Error::Io {
                op: "open",
                path: ns,
                source,
            })
    })();
    drop(done_w);
    // SAFETY: waitpid(2) for our own child, which ends once `done_w` is closed.
    unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };
    made
}

/// In the sandbox's middle process, in a mount namespace of its own: `source` seen
/// through `userns`'s idmapping, mounted on `target`. No allocation.
pub(crate) fn bind_idmapped(userns: libc::c_int, source: &CStr, target: &CStr) -> io::Result<()> {
    // SAFETY: open_tree(2) and move_mount(2) with C strings prepared
    // before fork and a struct on this stack; the tree's descriptor is closed here.
    unsafe {
        let tree = libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            source.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        );
        if tree < 0 {
            return Err(io::Error::last_os_error());
        }
        let tree = OwnedFd::from_raw_fd(tree as libc::c_int);
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_IDMAP,
            attr_clr: 0,
            propagation: 0,
            userns_fd: userns as u64,
        };
        mount_setattr(tree.as_raw_fd(), 0, &attr)?;
        if libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
