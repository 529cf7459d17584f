//! A container's terminal, made as runc makes it: inside the sandbox, from its own
//! devpts instance (so `tty` in the container names `/dev/pts/0`, which exists there),
//! its master sent to the caller over a Unix socket — runc's `--console-socket`
//! protocol, which conmon speaks, and what `kiln run -t` receives.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::libc;

use crate::error::Error;

/// Sizes the terminal `fd` (a master: the kernel then signals the foreground processes
/// of its slave). A descriptor that is no terminal is left as it is.
pub fn set_size(fd: RawFd, rows: u16, cols: u16) {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from `size`, on this stack; a bad descriptor
    // only fails.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &size) };
}

/// The size of the terminal `fd`, rows and columns; None when it is no terminal.
pub fn size(fd: RawFd) -> Option<(u16, u16)> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into `size`, on this stack.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) };
    (rc == 0).then_some((size.ws_row, size.ws_col))
}

/// In the sandbox's PID 1, its root entered: opens a terminal of the sandbox's devpts,
/// sends its master on `console`, and makes its slave the standard streams and the
/// controlling terminal of a new session. No allocation: it runs between fork and exec.
pub(crate) fn make_inside(
    console: libc::c_int,
    uid: libc::uid_t,
    size: Option<(u16, u16)>,
) -> io::Result<()> {
    // SAFETY: open(2), ioctl(2), fchown(2), sendmsg(2), dup2(2), close(2), setsid(2) on
    // descriptors this process holds and buffers on this stack.
    unsafe {
        let master = libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if master < 0 {
            return Err(io::Error::last_os_error());
        }
        let unlock: libc::c_int = 0;
        check(libc::ioctl(master, libc::TIOCSPTLCK, &unlock))?;
        let slave = libc::ioctl(master, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY);
        if slave < 0 {
            return Err(io::Error::last_os_error());
        }
        // The program's user owns its terminal (the tty group is devpts' gid=).
        check(libc::fchown(slave, uid, u32::MAX))?;
        // Sized before the program can ask (the caller's size, as `docker run -t` does).
        if let Some((rows, cols)) = size {
            let size = libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            check(libc::ioctl(master, libc::TIOCSWINSZ, &size))?;
        }
        send_fd(console, master)?;
        libc::close(master);
        for fd in 0..3 {
            if libc::dup2(slave, fd) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if slave > 2 {
            libc::close(slave);
        }
        if libc::setsid() < 0 {
            return Err(io::Error::last_os_error());
        }
        check(libc::ioctl(0, libc::TIOCSCTTY, 0))
    }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Control-message space for one descriptor (CMSG_SPACE(sizeof(int)) on 64-bit Linux).
const CMSG_ONE_FD: usize = 24;

#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_ONE_FD]);

/// Sends `fd` over the Unix socket `socket` (SCM_RIGHTS), with runc's payload (the
/// terminal's name, which conmon ignores).
unsafe fn send_fd(socket: libc::c_int, fd: libc::c_int) -> io::Result<()> {
    let mut name = *b"/dev/ptmx";
    let mut iov = libc::iovec {
        iov_base: name.as_mut_ptr().cast(),
        iov_len: name.len(),
    };
    let mut buf = CmsgBuf([0; CMSG_ONE_FD]);
    let mut msg: libc::msghdr = std::mem::zeroed();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = buf.0.as_mut_ptr().cast();
    msg.msg_controllen = libc::CMSG_SPACE(4) as usize;
    let cmsg = libc::CMSG_FIRSTHDR(&msg);
    (*cmsg).cmsg_level = libc::SOL_SOCKET;
    (*cmsg).cmsg_type = libc::SCM_RIGHTS;
    (*cmsg).cmsg_len = libc::CMSG_LEN(4) as usize;
    std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd);
    if libc::sendmsg(socket, &msg, 0) < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The terminal master a sandbox sent on `socket` (the caller's end of the pair it gave
/// as the console).
pub fn receive(socket: &UnixStream) -> Result<OwnedFd, Error> {
    let failed = |source: io::Error| Error::Io {
        op: "receive the container's terminal on",
        path: std::path::PathBuf::from("the console socket"),
        source,
    };
    let mut name = [0u8; 64];
    let mut buf = CmsgBuf([0; CMSG_ONE_FD]);
    // SAFETY: recvmsg(2) into buffers on this stack; the descriptor taken once.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: name.as_mut_ptr().cast(),
            iov_len: name.len(),
        };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = buf.0.as_mut_ptr().cast();
        msg.msg_controllen = CMSG_ONE_FD;
        if libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) < 0 {
            return Err(failed(io::Error::last_os_error()));
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null()
            || (*cmsg).cmsg_level != libc::SOL_SOCKET
            || (*cmsg).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(failed(io::Error::new(
                io::ErrorKind::InvalidData,
                "no terminal came (the sandbox failed first?)",
            )));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
        Ok(OwnedFd::from_raw_fd(fd))
    }
}
