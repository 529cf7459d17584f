//! Paths inside a root, resolved as if the root were `/`: `openat2(RESOLVE_IN_ROOT)`, so
//! a symlink in the image (absolute, or `..` past the top) stays in the root, and
//! `RESOLVE_NO_MAGICLINKS`, so `/proc/self/fd/N` cannot lead to a host directory.
//!
//! A path is split into C strings before fork ([`InRoot::new`]); [`InRoot::open`] runs in
//! the sandbox and only makes system calls.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Component, Path};

use crate::error::Error;

/// What to make of a missing last component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leaf {
    /// It must exist.
    Existing,
    /// Create a directory (and any missing parent).
    Dir,
    /// Create an empty file (parents as directories): a mount point for a file.
    File,
}

/// A path under a root, lexically cleaned (`.` dropped, `..` taken back), as each prefix
/// and each component name.
#[derive(Debug, Clone)]
pub(crate) struct InRoot {
    prefixes: Vec<CString>,
    names: Vec<CString>,
}

impl InRoot {
    pub(crate) fn new(path: &Path) -> Result<Self, Error> {
        let mut names: Vec<CString> = Vec::new();
        for c in path.components() {
            match c {
                Component::Normal(n) => {
                    names.push(CString::new(n.as_encoded_bytes()).map_err(|_| Error::Path {
                        path: path.to_path_buf(),
                    })?)
                }
                Component::ParentDir => {
                    names.pop();
                }
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        let mut prefixes = Vec::with_capacity(names.len());
        let mut joined: Vec<u8> = Vec::new();
        for n in &names {
            if !joined.is_empty() {
                joined.push(b'/');
            }
            joined.extend_from_slice(n.as_bytes());
            prefixes.push(CString::new(joined.clone()).expect("names hold no NUL"));
        }
        Ok(Self { prefixes, names })
    }

    /// Opens the path under `root` (an `O_PATH` descriptor), creating what is missing as
    /// `leaf` says.
    pub(crate) fn open(&self, root: RawFd, leaf: Leaf) -> io::Result<OwnedFd> {
        if self.prefixes.is_empty() {
            return openat2(root, c".", 0);
        }
        let last = self.prefixes.len() - 1;
        let mut parent: Option<OwnedFd> = None;
        for (i, prefix) in self.prefixes.iter().enumerate() {
            match openat2(root, prefix, 0) {
                Ok(fd) => parent = Some(fd),
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) && leaf != Leaf::Existing => {
                    let dir = parent.as_ref().map_or(root, AsRawFd::as_raw_fd);
                    let name = &self.names[i];
                    // SAFETY: mkdirat(2)/openat(2)/close(2) on descriptors we hold and a
                    // NUL-terminated name; O_NOFOLLOW and O_EXCL create a new file only.
                    let made = unsafe {
                        if i == last && leaf == Leaf::File {
                            let fd = nix::libc::openat(
                                dir,
                                name.as_ptr(),
                                nix::libc::O_CREAT
                                    | nix::libc::O_EXCL
                                    | nix::libc::O_WRONLY
                                    | nix::libc::O_NOFOLLOW
                                    | nix::libc::O_CLOEXEC,
                                0o644,
                            );
                            fd >= 0 && nix::libc::close(fd) == 0
                        } else {
                            nix::libc::mkdirat(dir, name.as_ptr(), 0o755) == 0
                        }
                    };
                    if !made {
                        return Err(io::Error::last_os_error());
                    }
                    parent = Some(openat2(root, prefix, 0)?);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(parent.expect("at least one component"))
    }
}

/// `struct open_how` of linux/openat2.h (libc's is non-exhaustive).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `openat2(dir, path, O_PATH | extra, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`.
pub(crate) fn openat2(dir: RawFd, path: &CStr, extra: i32) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags: (nix::libc::O_PATH | nix::libc::O_CLOEXEC | extra) as u64,
        mode: 0,
        resolve: nix::libc::RESOLVE_IN_ROOT | nix::libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: openat2(2) reads `how` and the NUL-terminated `path`; the descriptor it
    // returns is ours to own.
    let fd = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_openat2,
            dir,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor from openat2.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `open(path, O_PATH | O_DIRECTORY)`: a directory named by a path of the caller's own
/// (the root's mount point), resolved as usual.
pub(crate) fn open_dir(path: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: open(2) with a NUL-terminated path; the descriptor is ours to own.
    let fd = unsafe {
        nix::libc::open(
            path.as_ptr(),
            nix::libc::O_PATH | nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor from open.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `/proc/self/fd/N` as a C string on the stack: how a mount names a target that was
/// resolved in the root (the kernel follows this one magic link to exactly that file).
pub(crate) struct FdPath {
    buf: [u8; 32],
}

impl FdPath {
    pub(crate) fn new(fd: RawFd) -> Self {
        let mut buf = [0u8; 32];
        let prefix = b"/proc/self/fd/";
        buf[..prefix.len()].copy_from_slice(prefix);
        let mut digits = [0u8; 12];
        let mut n = fd.max(0) as u32;
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for i in 0..len {
            buf[prefix.len() + i] = digits[len - 1 - i];
        }
        Self { buf }
    }

    pub(crate) fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.buf).expect("the buffer ends in NUL")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_paths_name_the_descriptor() {
        assert_eq!(FdPath::new(0).as_cstr(), c"/proc/self/fd/0");
        assert_eq!(FdPath::new(1234).as_cstr(), c"/proc/self/fd/1234");
    }

    #[test]
    fn paths_are_cleaned_lexically() {
        let p = InRoot::new(Path::new("/a/./b/../../../c/d")).unwrap();
        assert_eq!(p.prefixes, [c"c".to_owned(), c"c/d".to_owned()]);
        assert_eq!(p.names, [c"c".to_owned(), c"d".to_owned()]);
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
        // The root's own directory of that name: where the link leads in the root.
        let own = root.path().join(outside.path().strip_prefix("/").unwrap());
        std::fs::create_dir_all(&own).unwrap();
        std::os::unix::fs::symlink("../../..", root.path().join("up")).unwrap();
        let dir = std::fs::File::open(root.path()).unwrap();
        InRoot::new(Path::new("/link/made"))
            .unwrap()
            .open(dir.as_raw_fd(), Leaf::Dir)
            .unwrap();
        InRoot::new(Path::new("/up/file"))
            .unwrap()
            .open(dir.as_raw_fd(), Leaf::File)
            .unwrap();
        // The absolute link led to the root's own copy of the host path, `..` stopped at
        // the root: nothing was made outside.
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
        assert!(own.join("made").is_dir());
        assert!(root.path().join("file").is_file());
    }
}
