//! `-t`: the container's terminal (made in the container, its master received here),
//! the caller's terminal in raw mode meanwhile, its size followed (SIGWINCH); and, for
//! `exec -t`, its output copied as it comes (a prompt has no newline).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::sys::termios;

/// The socket pair a container's terminal comes on: the sandbox makes the terminal in
/// the container's own devpts (so `tty` there names a device that exists there) and
/// sends its master on the second; [`receive`] takes it from the first.
pub fn console() -> anyhow::Result<(UnixStream, UnixStream)> {
    Ok(UnixStream::pair()?)
}

/// The terminal's master.
pub fn receive(ours: &UnixStream) -> anyhow::Result<OwnedFd> {
    Ok(kiln_runtime::terminal::receive(ours)?)
}

/// `process.terminal` on, sized `(rows, cols)` from the start.
pub fn with_terminal(process: &mut oci_spec::runtime::Process, (rows, cols): (u16, u16)) {
    process.set_terminal(Some(true));
    let size = oci_spec::runtime::BoxBuilder::default()
        .height(u64::from(rows))
        .width(u64::from(cols))
        .build()
        .ok();
    process.set_console_size(size);
}

/// The size of the terminal on our standard input: rows and columns, 24×80 when there
/// is none (or one of no size: script(1)'s, with no terminal behind it).
pub fn caller_size() -> (u16, u16) {
    kiln_runtime::terminal::size(0)
        .filter(|(rows, _)| *rows > 0)
        .unwrap_or((24, 80))
}

/// On a thread of its own, for as long as the process lives: each SIGWINCH sizes the
/// terminal whose master is `fd` as the caller's.
pub fn follow_caller_size(fd: i32) -> anyhow::Result<()> {
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::Signal::SIGWINCH);
    set.thread_block()?;
    std::thread::spawn(move || {
        while set.wait().is_ok() {
            let (rows, cols) = caller_size();
            kiln_runtime::terminal::set_size(fd, rows, cols);
        }
    });
    Ok(())
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

/// Copies the terminal's output to ours as it comes; ends when the container's side
/// closes.
pub fn copy_out(mut master: File) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            let n = match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&buf[..n]);
            let _ = out.flush();
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
