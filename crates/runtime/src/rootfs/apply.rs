//! The plan carried out in the sandbox's own mount namespace, as its PID 1, before the
//! program: system calls only. Every target is resolved in the root first (so a symlink
//! of the image never points a mount at the host) and mounted through its descriptor.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::ptr::null;

use nix::libc::{self, c_ulong};

use super::plan::{
    Kind, RootPlan, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY,
};
use crate::in_root::{open_dir, FdPath, InRoot, Leaf};

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    // SAFETY: mount(2) with NUL-terminated strings (or null) that outlive the call.
    check(unsafe {
        libc::mount(
            source.map_or(null(), CStr::as_ptr),
            target.as_ptr(),
            fstype.map_or(null(), CStr::as_ptr),
            flags,
            data.map_or(null(), |d| d.as_ptr().cast()),
        )
    })
}

/// `struct mount_attr` of linux/mount.h.
#[repr(C)]
pub(crate) struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

/// mount_setattr(2) on the mount at descriptor `fd` (`AT_EMPTY_PATH`, and `extra` flags).
pub(crate) fn mount_setattr(fd: RawFd, extra: libc::c_int, attr: &MountAttr) -> io::Result<()> {
    // SAFETY: mount_setattr(2) on a descriptor the caller holds, reading `attr`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | extra,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets `attrs` on the mount at `fd` (and, `recursive`, every mount under it).
fn set_attrs(fd: RawFd, attrs: u64, recursive: bool) -> io::Result<()> {
    if attrs == 0 {
        return Ok(());
    }
    let attr = MountAttr {
        attr_set: attrs,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    mount_setattr(fd, if recursive { libc::AT_RECURSIVE } else { 0 }, &attr)
}

/// Binds `source` on `target` (resolved in `root`), then sets `attrs` on the new mount.
fn bind(
    root: RawFd,
    source: &CStr,
    target: &InRoot,
    leaf: Leaf,
    recursive: bool,
    attrs: u64,
) -> io::Result<()> {
    let at = target.open(root, leaf)?;
    let flags = libc::MS_BIND | if recursive { libc::MS_REC } else { 0 };
    mount(
        Some(source),
        FdPath::new(at.as_raw_fd()).as_cstr(),
        None,
        flags,
        None,
    )?;
    // The descriptor names what is under the new mount: open it again to reach the mount.
    let mounted = target.open(root, Leaf::Existing)?;
    set_attrs(mounted.as_raw_fd(), attrs, recursive)
}

fn is_dir(fd: &OwnedFd) -> bool {
    // SAFETY: fstat(2) into a zeroed stat on this stack.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd.as_raw_fd(), &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFDIR
    }
}

/// Builds the root and moves into it.
pub(crate) fn enter(plan: &RootPlan) -> io::Result<()> {
    // Mount events of the sandbox stay in it.
    mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)?;
    // Writable while the mounts go in (their targets may need making); a read-only root
    // becomes so just before pivot_root, as runc does it.
    match &plan.overlay {
        Some(data) => mount(
            Some(c"overlay"),
            &plan.merged,
            Some(c"overlay"),
            libc::MS_NODEV,
            Some(data),
        )?,
        // pivot_root needs a mount point; nodev as the overlay is.
        None => {
            mount(Some(&plan.merged), &plan.merged, None, libc::MS_BIND, None)?;
            let fd = open_dir(&plan.merged)?;
            set_attrs(fd.as_raw_fd(), MOUNT_ATTR_NODEV, false)?;
        }
    }
    let root_fd = open_dir(&plan.merged)?;
    let root = root_fd.as_raw_fd();

    for m in &plan.mounts {
        match &m.kind {
            Kind::Bind {
                source,
                recursive,
                attrs,
            } => bind(root, source, &m.target, m.leaf, *recursive, *attrs)?,
            Kind::Fs {
                fstype,
                source,
                flags,
                data,
                host_fallback,
            } => {
                let at = m.target.open(root, Leaf::Dir)?;
                let target = FdPath::new(at.as_raw_fd());
                let made = mount(
                    Some(source),
                    target.as_cstr(),
                    Some(fstype),
                    *flags,
                    data.as_deref(),
                );
                match (made, host_fallback) {
                    (Ok(()), _) => {}
                    (Err(_), Some(host)) => {
                        let attrs = MOUNT_ATTR_RDONLY
                            | MOUNT_ATTR_NOSUID
                            | MOUNT_ATTR_NODEV
                            | MOUNT_ATTR_NOEXEC;
                        bind(root, host, &m.target, Leaf::Dir, true, attrs)?;
                    }
                    (Err(e), None) => return Err(e),
                }
            }
        }
    }

    let dev = plan.dev.open(root, Leaf::Dir)?;
    for (target, host) in &plan.devices {
        // A privileged step has the host's /dev, where the node is already there.
        bind(root, host, target, Leaf::File, false, 0).or_else(|e| {
            if e.raw_os_error() == Some(libc::EEXIST) {
                Ok(())
            } else {
                Err(e)
            }
        })?;
    }
    for (name, target) in &plan.dev_links {
        // SAFETY: symlinkat(2) with NUL-terminated strings, in the /dev we resolved.
        let rc = unsafe { libc::symlinkat(target.as_ptr(), dev.as_raw_fd(), name.as_ptr()) };
        if rc != 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
            return Err(io::Error::last_os_error());
        }
    }
    drop(dev);

    // runc's order: sysctls while /proc/sys is still writable, then the masks.
    for (file, value) in &plan.sysctls {
        // SAFETY: open(2), write(2) and close(2) with C strings prepared before fork.
        unsafe {
            let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let len = value.as_bytes().len();
            let written = libc::write(fd, value.as_ptr().cast(), len);
            libc::close(fd);
            if written != len as isize {
                return Err(io::Error::last_os_error());
            }
        }
    }

    // Docker's masked paths: a directory gets an empty read-only tmpfs, a file /dev/null.
    for path in &plan.masked {
        let Ok(at) = path.open(root, Leaf::Existing) else {
            continue;
        };
        let target = FdPath::new(at.as_raw_fd());
        if is_dir(&at) {
            mount(
                Some(c"tmpfs"),
                target.as_cstr(),
                Some(c"tmpfs"),
                libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                None,
            )?;
        } else {
            mount(
                Some(&plan.dev_null),
                target.as_cstr(),
                None,
                libc::MS_BIND,
                None,
            )?;
        }
    }
    // And its read-only ones: bound on themselves, then made read-only with all below.
    for path in &plan.readonly_paths {
        let Ok(at) = path.open(root, Leaf::Existing) else {
            continue;
        };
        let target = FdPath::new(at.as_raw_fd());
        mount(
            Some(target.as_cstr()),
            target.as_cstr(),
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )?;
        let mounted = path.open(root, Leaf::Existing)?;
        let attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
        set_attrs(mounted.as_raw_fd(), attrs, true)?;
    }

    if plan.readonly {
        // The root mount alone: volumes, binds and tmpfs mounts keep their own flags.
        set_attrs(root, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV, false)?;
    }

    // pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only
    // the new root, without a directory for the old one (which would land in the layer).
    // SAFETY: fchdir(2) on the root we hold; pivot_root(2), umount2(2) and chdir(2) with
    // static strings.
    unsafe {
        check(libc::fchdir(root))?;
        if libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        check(libc::umount2(c".".as_ptr(), libc::MNT_DETACH))?;
        check(libc::chdir(c"/".as_ptr()))
    }
}

/// Changes to `cwd` in the (new) root, creating it as Docker does.
pub(crate) fn enter_cwd(cwd: &InRoot) -> io::Result<()> {
    let root = open_dir(c"/")?;
    let dir = cwd.open(root.as_raw_fd(), Leaf::Dir)?;
    // SAFETY: fchdir(2) on a descriptor we hold.
    check(unsafe { libc::fchdir(dir.as_raw_fd()) })
}
