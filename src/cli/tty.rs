//! `-t`: a pseudo-terminal for the container, its output copied as it comes (a prompt
//! has no newline) to the caller's terminal, put in raw mode meanwhile, and to the log;
//! the caller's window size followed (SIGWINCH).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use kiln_runtime::containers::{LogWriter, Stream};
use nix::sys::termios;

/// The master side of the running container's terminal, for the SIGWINCH handler (-1:
/// none).
pub static MASTER: AtomicI32 = AtomicI32::new(-1);

/// The socket pair a container's terminal comes on: the sandbox makes the terminal in
/// the container's own devpts (so `tty` there names a device that exists there) and
/// sends its master on the second; [`receive`] takes it from the first.
pub fn console() -> anyhow::Result<(UnixStream, UnixStream)> {
    Ok(UnixStream::pair()?)
}

/// The terminal's master, sized as the caller's terminal (80×24 when there is none).
pub fn receive(ours: &UnixStream) -> anyhow::Result<OwnedFd> {
    let master = kiln_runtime::terminal::receive(ours)?;
    // A terminal of no size (script(1)'s, with no terminal behind it) counts as none.
    let size = window_size(0).filter(|s| s.ws_row > 0).unwrap_or(nix::pty::Winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    });
    // SAFETY: TIOCSWINSZ reads `size`.
    unsafe { nix::libc::ioctl(master.as_raw_fd(), nix::libc::TIOCSWINSZ, &size) };
    Ok(master)
}

fn window_size(fd: i32) -> Option<nix::pty::Winsize> {
    // SAFETY: a winsize is plain integers: all zeros is one; TIOCGWINSZ fills it.
    let mut size: nix::pty::Winsize = unsafe { std::mem::zeroed() };
    let rc = unsafe { nix::libc::ioctl(fd, nix::libc::TIOCGWINSZ, &mut size) };
    (rc == 0).then_some(size)
}

/// The caller's window size onto the container's terminal (the kernel then signals the
/// container's foreground processes).
pub fn follow_window_size() {
    let master = MASTER.load(Ordering::SeqCst);
    if master < 0 {
        return;
    }
    if let Some(size) = window_size(0) {
        // SAFETY: TIOCSWINSZ reads `size`.
        unsafe { nix::libc::ioctl(master, nix::libc::TIOCSWINSZ, &size) };
    }
}

/// The caller's terminal in raw mode while this lives (nothing when standard input is no
/// terminal).
pub struct RawMode(Option<termios::Termios>);

impl RawMode {
    pub fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return RawMode(None);
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw);
        RawMode(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), termios::SetArg::TCSANOW, saved);
        }
    }
}

/// Copies the terminal's output to the caller (with `echo`) as it comes, and to the log
/// (if any) line by line; ends when the container's side closes.
pub fn copy_out(
    master: File,
    echo: bool,
    log: Option<Arc<Mutex<LogWriter>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut master = master;
        let mut buf = [0u8; 8192];
        let mut pending = Vec::new();
        loop {
            let n = match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if echo {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&buf[..n]);
                let _ = out.flush();
            }
            let Some(log) = &log else {
                continue;
            };
            pending.extend_from_slice(&buf[..n]);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let _ = log
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .write(Stream::Stdout, &String::from_utf8_lossy(&line));
            }
        }
        if let (Some(log), false) = (&log, pending.is_empty()) {
            let _ = log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .write(Stream::Stdout, &String::from_utf8_lossy(&pending));
        }
    })
}

/// Copies the caller's standard input to the terminal until it ends (a detached thread:
/// a read of standard input cannot be interrupted, and the process ends soon after).
pub fn copy_in(master: File) {
    std::thread::spawn(move || {
        let mut master = master;
        let mut buf = [0u8; 4096];
        let mut stdin = std::io::stdin().lock();
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if master.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

/// The raw descriptor, for [`MASTER`].
pub fn raw(fd: &OwnedFd) -> i32 {
    fd.as_raw_fd()
}
