//! A network namespace of the test process's own, entered before `main`.

/// Moves the process into a new network namespace with `lo` up. [`private_network!`](crate::private_network!)
/// runs it before `main`, while the process has one thread, so every thread, server,
/// peer and kiln the test starts is in it too: kiln's bridges, veths, NAT rules and DNS
/// live and die there, never on the machine's own network. Without root there is none to
/// make, and it does nothing: the tests that need root skip then (and fail on CI).
pub extern "C" fn enter_private_network() {
    use nix::libc;
    // SAFETY: unshare(2), socket(2), ioctl(2) on a zeroed ifreq naming "lo", close(2):
    // before main, one thread, no memory shared.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNET) != 0 {
            return;
        }
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return;
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
        }
        libc::close(fd);
    }
}

/// Runs [`enter_private_network`] before the test binary's `main`. The static must live
/// in the test binary itself: one in this library would be dropped by the linker, as
/// nothing refers to it.
#[macro_export]
macro_rules! private_network {
    () => {
        #[used]
        #[link_section = ".init_array"]
        static PRIVATE_NETWORK: extern "C" fn() = $crate::enter_private_network;
    };
}
