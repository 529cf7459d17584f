//! Starting a container's supervisor apart from its caller: in a session of its own,
//! without the caller's standard streams, so it outlives the command that started it
//! (`kiln run -d`, `kiln start`, compose) and no terminal or process group signal of the
//! caller's reaches it.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::libc;

/// The descriptor [`spawn`] passes a socket on.
const PASSED: RawFd = 3;

/// Spawns `cmd` in a session of its own with its standard streams on /dev/null and
/// `pass`, when given, as its descriptor 3 (how a supervisor started this way receives
/// its attached client: [`passed`]).
pub fn spawn(cmd: &mut Command, pass: Option<BorrowedFd<'_>>) -> io::Result<Child> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let pass = pass.map(|fd| fd.as_raw_fd());
    // SAFETY: setsid(2), dup2(2) and fcntl(2) in the child before exec; nothing
    // allocated.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if let Some(fd) = pass {
                // dup2 onto itself would keep close-on-exec: clear it then.
                let rc = if fd == PASSED {
                    libc::fcntl(PASSED, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, PASSED)
                };
                if rc < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// The socket a process [`spawn`] started with one to pass finds on its descriptor 3,
/// owned from now on. Taken once per process (a second call is an error, as is a
/// descriptor 3 that is not a socket), as `sd_listen_fds` takes systemd's sockets: call it
/// only in a process started so.
pub fn passed() -> io::Result<UnixStream> {
    static TAKEN: AtomicBool = AtomicBool::new(false);
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Err(io::Error::other("the passed socket was taken already"));
    }
    use std::os::unix::fs::FileTypeExt;
    let passed = std::fs::metadata(format!("/proc/self/fd/{PASSED}"));
    if !passed.is_ok_and(|p| p.file_type().is_socket()) {
        return Err(io::Error::other(format!(
            "descriptor {PASSED} is not the socket a supervisor is passed"
        )));
    }
    // SAFETY: descriptor 3 is open and a socket, put there by `spawn` for this process to
    // own, and taken once (TAKEN).
    Ok(unsafe { UnixStream::from_raw_fd(PASSED) })
}

/// Whether this process runs one thread: then a forked child may run anything, where a
/// threaded process may fork only to exec.
pub fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse::<u32>().ok())
        })
        == Some(1)
}

/// Forks this single-threaded process — no second start of the binary, a few
/// milliseconds less per container start. The child leaves the session, names itself
/// `name` (its command line stays the caller's), takes /dev/null as its standard
/// streams, closes `close` (the caller's end of a socket pair: the other end must see
/// end of file when the caller goes), runs `run` and exits with its code (`failed` when
/// the set-up itself fails). The caller returns `Ok(true)`; `Ok(false)` means nothing
/// was forked because the process runs other threads: start the binary with [`spawn`].
pub fn fork(
    name: &CStr,
    close: Option<BorrowedFd<'_>>,
    failed: u8,
    run: impl FnOnce() -> u8,
) -> io::Result<bool> {
    if !single_threaded() {
        return Ok(false);
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: fork(2) of a process that runs one thread (checked above): the child may
    // run anything.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { .. } => Ok(true),
        nix::unistd::ForkResult::Child => {
            let code = leave_caller(name, close).map_or(failed, |()| run());
            std::process::exit(code.into())
        }
    }
}

/// In a forked child: a session of its own, a name, /dev/null for its standard streams,
/// and `close` closed.
fn leave_caller(name: &CStr, close: Option<BorrowedFd<'_>>) -> io::Result<()> {
    nix::unistd::setsid()?;
    let _ = nix::sys::prctl::set_name(name);
    let null: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?
        .into();
    for fd in 0..3 {
        // SAFETY: dup2(2) of a descriptor we own onto the standard streams.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    if let Some(fd) = close {
        // SAFETY: close(2) of the child's copy of a descriptor the caller lent: the
        // child never uses it (the caller's copy stays open).
        unsafe { libc::close(fd.as_raw_fd()) };
    }
    Ok(())
}
