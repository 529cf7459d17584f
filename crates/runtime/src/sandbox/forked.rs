//! What runs in the processes the sandbox forks, between fork and exec: the supervisor
//! (which waits for PID 1 and kills it when its caller goes) and the sandbox's PID 1
//! (which builds the root, joins the cgroups and the user namespace, drops to the spec's
//! user, capabilities and seccomp filter, and execs). The caller runs threads, so nothing
//! here allocates: it reads what [`super::Prepared`] worked out and makes system calls.

use std::ffi::CString;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::libc;

use super::{Prepared, Userns};
use crate::rootfs::apply;

/// The supervisor's PID 1, for its signal handler.
static SANDBOX_INIT: AtomicI32 = AtomicI32::new(0);

extern "C" fn kill_init(_: libc::c_int) {
    let pid = SANDBOX_INIT.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

fn set_handlers(handler: libc::sighandler_t) -> std::io::Result<()> {
    for sig in STOP_SIGNALS {
        // SAFETY: sigaction(2) with a zeroed struct on this stack and a handler that
        // only calls kill(2).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler;
            if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

fn check(rc: libc::c_int) -> std::io::Result<()> {
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Moves the calling process into each cgroup whose `cgroup.procs` file is given.
fn join_cgroups(procs: &[CString]) -> std::io::Result<()> {
    for file in procs {
        // SAFETY: open(2), write(2) and close(2) on a NUL-terminated path prepared
        // before fork: "0" moves the writer.
        unsafe {
            let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let written = libc::write(fd, c"0".as_ptr().cast(), 1);
            libc::close(fd);
            if written != 1 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// The middle process's part of [`Userns`]. No allocation.
fn enter_userns(u: &Userns) -> std::io::Result<()> {
    // SAFETY: unshare(2), mount(2), setns(2), setresgid(2) and setresuid(2) with integer
    // arguments or C strings prepared before fork.
    unsafe {
        check(libc::unshare(libc::CLONE_NEWNS))?;
        check(libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        for (source, target) in &u.idmapped {
            crate::userns::bind_idmapped(u.fd, source, target)?;
        }
        check(libc::setns(u.fd, libc::CLONE_NEWUSER))?;
        check(libc::setresgid(0, 0, 0))?;
        check(libc::setresuid(0, 0, 0))
    }
}

/// The middle process: unshares, forks PID 1, and waits for it.
pub(super) fn supervise(p: &Prepared) -> std::io::Result<()> {
    // The caller may block signals it waits for on a thread of its own; the sandbox
    // must not inherit that (exec keeps the mask).
    // SAFETY: sigprocmask(2) with an empty set on this stack.
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        check(libc::sigprocmask(
            libc::SIG_SETMASK,
            &none,
            std::ptr::null_mut(),
        ))?;
    }
    // Into the cgroup before PID 1 is forked: nothing of the container escapes it.
    join_cgroups(&p.cgroup_procs)?;
    // The way out, opened while we may: the kernel checks a move's rights against the
    // opener (Linux 5.16+), and the namespace's root could not open host root's files.
    let mut leave = [-1; 16];
    for (slot, file) in leave.iter_mut().zip(&p.cgroup_leave) {
        // SAFETY: open(2) of a C string prepared before fork.
        *slot = unsafe { libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    }
    // Joined while still the host's root: a namespace the host made (a container's
    // wired network) is owned by the host's user namespace, which the container's own
    // user namespace has no rights over.
    for (fd, nstype) in &p.join {
        // SAFETY: setns(2) with a descriptor the caller holds open across the fork.
        check(unsafe { libc::setns(*fd, *nstype) })?;
    }
    if let Some(u) = &p.userns {
        enter_userns(u)?;
    }
    nix::sched::unshare(p.namespaces).map_err(std::io::Error::from)?;
    if p.report.is_none() {
        // When the caller dies, SIGTERM: the handler kills PID 1 and so the namespace.
        set_handlers(kill_init as extern "C" fn(libc::c_int) as libc::sighandler_t)?;
        // SAFETY: prctl(2) and getppid(2) with integer arguments.
        unsafe {
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0))?;
            // The caller may have died before the line above: then nothing would signal
            // us.
            if libc::getppid() != p.parent {
                libc::_exit(137);
            }
        }
    }
    // SAFETY: see `spawn`; the parent branch only waits and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        return init(p);
    }
    if let Some(report) = p.report {
        // SAFETY: write(2) of a local and _exit(2): the caller reads the PID, PID 1 goes
        // to the caller's subreaper.
        unsafe {
            let written = libc::write(report, (&pid as *const libc::pid_t).cast(), 4);
            libc::_exit(if written == 4 { 0 } else { 1 })
        }
    }
    SANDBOX_INIT.store(pid, Ordering::SeqCst);
    // Out again: the cgroup counts (and limits) the container's processes alone. PID 1
    // is in; where we go does not matter to it.
    for fd in leave.into_iter().filter(|fd| *fd >= 0) {
        // SAFETY: write(2) and close(2) on descriptors opened above: "0" moves the writer.
        unsafe {
            libc::write(fd, c"0".as_ptr().cast(), 1);
            libc::close(fd);
        }
    }
    // Drop every inherited descriptor but the standard streams: holding the spawn error
    // pipe would keep the caller's `spawn` waiting until we exit.
    // SAFETY: close_range(2) on descriptors this process no longer uses.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    let code = loop {
        let mut status = 0;
        // SAFETY: waitpid(2) into a local.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            if libc::WIFEXITED(status) {
                break libc::WEXITSTATUS(status);
            }
            if libc::WIFSIGNALED(status) {
                break 128 + libc::WTERMSIG(status);
            }
        } else if rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break 255;
        }
    };
    // SAFETY: _exit(2) ends the supervisor without running the caller's atexit handlers
    // or destructors, which belong to the caller.
    unsafe { libc::_exit(code) }
}

/// The sandbox's PID 1, before it execs the program.
fn init(p: &Prepared) -> std::io::Result<()> {
    // Detached, the parent (the middle process) leaves at once: no death signal then.
    let death_signal = if p.report.is_some() { 0 } else { libc::SIGKILL };
    // SAFETY: signal(2), prctl(2) and close_range(2) with integer arguments.
    unsafe {
        check(libc::prctl(libc::PR_SET_PDEATHSIG, death_signal, 0, 0, 0))?;
        // Descriptors the caller left open (a host directory is a way out of the root)
        // close at exec; the spawn error pipe is already close-on-exec.
        if libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    set_handlers(libc::SIG_DFL)?;
    if p.terminal && p.console.is_none() {
        // A session of its own, led by the program, with the terminal it was given on
        // its standard streams as its controlling terminal: job control and ^C work.
        // SAFETY: setsid(2) and ioctl(2) on descriptor 0 with an integer argument.
        unsafe {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            check(libc::ioctl(0, libc::TIOCSCTTY, 0))?;
        }
    }
    if let Some(root) = &p.root {
        apply::enter(root)?;
    }
    if let (true, Some(console)) = (p.terminal, p.console) {
        crate::terminal::make_inside(console, p.uid, p.console_size)?;
    }
    if let Some(h) = &p.hostname {
        // SAFETY: sethostname(2) reads the bytes of `h`.
        check(unsafe { libc::sethostname(h.as_ptr(), h.as_bytes().len()) })?;
    }
    if p.loopback {
        crate::network::loopback_up()?;
    }
    apply::enter_cwd(&p.cwd)?;
    for (resource, limit) in &p.rlimits {
        // SAFETY: setrlimit(2) reads `limit`.
        check(unsafe { libc::setrlimit(*resource, limit) })?;
    }
    // SAFETY: prctl(2), setgroups(2), setgid(2), setuid(2) with integer arguments or
    // slices that outlive the calls.
    unsafe {
        if p.no_new_privileges {
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
        }
        p.caps.drop_bounding()?;
        // Loaded while still root with every capability (CAP_SYS_ADMIN, which loading
        // needs without no_new_privs); the filter allows the calls that follow.
        if let Some(program) = &p.seccomp {
            program.load()?;
        }
        // Keep the permitted set across the switch of user, then set each set exactly.
        check(libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0))?;
        check(libc::setgroups(p.groups.len(), p.groups.as_ptr()))?;
        check(libc::setgid(p.gid))?;
        check(libc::setuid(p.uid))?;
        p.caps.apply()?;
        // A change of user clears the parent-death signal: set it again.
        check(libc::prctl(libc::PR_SET_PDEATHSIG, death_signal, 0, 0, 0))?;
        if let Some(mask) = p.umask {
            libc::umask(mask);
        }
    }
    if p.init {
        reap_as_init()?;
    }
    if !p.lookup.is_empty()
        // SAFETY: access(2) with C strings prepared before fork.
        && !p.lookup.iter().any(|c| unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0)
    {
        return Err(std::io::Error::from_raw_os_error(libc::ENOENT));
    }
    if let Some(gate) = p.gate {
        wait_at_gate(gate);
    }
    Ok(())
}

/// PID 1 of a created sandbox, ready: closes every descriptor but the gate — the
/// caller's spawn, waiting on its error pipe, returns — and blocks until a byte comes.
fn wait_at_gate(gate: libc::c_int) {
    // SAFETY: close_range(2), close(2) and read(2) into a local; nothing allocated.
    unsafe {
        let mut closed =
            gate <= 3 || libc::syscall(libc::SYS_close_range, 3u32, gate as u32 - 1, 0u32) == 0;
        closed &= libc::syscall(libc::SYS_close_range, gate as u32 + 1, u32::MAX, 0u32) == 0;
        if !closed {
            // A seccomp profile without close_range(2): one by one.
            for fd in 3..4096 {
                if fd != gate {
                    libc::close(fd);
                }
            }
        }
        let mut byte = 0u8;
        while libc::read(gate, (&mut byte as *mut u8).cast(), 1) < 0
            && *libc::__errno_location() == libc::EINTR
        {}
    }
}

/// The program's process, for the forwarding handler.
static INIT_CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let child = INIT_CHILD.load(Ordering::SeqCst);
    if child > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(child, sig) };
    }
}

/// In the sandbox's PID 1, just before exec: forks; the child returns (and execs the
/// program); PID 1 passes signals on to it, reaps every process that ends, and exits as
/// the program does.
fn reap_as_init() -> std::io::Result<()> {
    // SAFETY: fork(2) from the single-threaded PID 1; prctl, sigaction, waitpid and
    // _exit are async-signal-safe and allocate nothing.
    unsafe {
        let child = libc::fork();
        if child < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if child == 0 {
            return Ok(());
        }
        INIT_CHILD.store(child, Ordering::SeqCst);
        // Nothing of the caller's: above all not the pipe on which the caller's spawn
        // waits for the program's exec (it would wait for this process instead).
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        libc::prctl(libc::PR_SET_NAME, c"kiln-init".as_ptr(), 0, 0, 0);
        for sig in [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGWINCH,
        ] {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = forward as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
        let code = loop {
            let mut status = 0;
            let rc = libc::waitpid(-1, &mut status, 0);
            if rc == child {
                if libc::WIFEXITED(status) {
                    break libc::WEXITSTATUS(status);
                }
                if libc::WIFSIGNALED(status) {
                    break 128 + libc::WTERMSIG(status);
                }
            } else if rc < 0 && *libc::__errno_location() != libc::EINTR {
                break 255;
            }
        };
        libc::_exit(code)
    }
}
