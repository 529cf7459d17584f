//! Bringing up loopback in a fresh network namespace, where it starts down.

use std::io;

/// Sets `lo` up. Called inside the new namespace, before the program runs.
pub(crate) fn loopback_up() -> io::Result<()> {
    // SAFETY: plain socket(2)/ioctl(2)/close(2) calls on a zeroed ifreq whose name we fill
    // with a NUL-terminated "lo"; no memory is shared with other threads.
    unsafe {
        let fd = nix::libc::socket(
            nix::libc::AF_INET,
            nix::libc::SOCK_DGRAM | nix::libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut req: nix::libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as nix::libc::c_char;
        }
        let mut result = nix::libc::ioctl(fd, nix::libc::SIOCGIFFLAGS, &mut req);
        if result == 0 {
            req.ifr_ifru.ifru_flags |= nix::libc::IFF_UP as nix::libc::c_short;
            result = nix::libc::ioctl(fd, nix::libc::SIOCSIFFLAGS, &req);
        }
        let err = io::Error::last_os_error();
        nix::libc::close(fd);
        if result != 0 {
            return Err(err);
        }
    }
    Ok(())
}
