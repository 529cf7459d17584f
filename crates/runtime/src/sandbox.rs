//! Starting a process in the sandbox.
//!
//! Everything the sandbox needs is worked out first ([`Prepared`]: C strings, masks, a
//! compiled seccomp program), because the caller runs threads and a forked child of a
//! threaded process must not allocate. `Command::spawn` forks; in the child, `pre_exec`
//! unshares the namespaces and forks once more, because a new PID namespace takes effect
//! for children only. The middle process is the sandbox's supervisor: it waits for its
//! child (the sandbox's PID 1) and exits with its status, so the caller sees one process
//! with the program's exit code; when the caller dies (SIGKILL included) or asks it to
//! stop, it kills PID 1, and the kernel kills every other process of the PID namespace
//! with it. The grandchild builds the root, drops to the spec's user, capabilities and
//! seccomp filter, and execs the program.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use nix::libc;
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::capabilities::CapSets;
use crate::copy_root::{self, Baseline};
use crate::error::Error;
use crate::in_root::InRoot;
use crate::rootfs::{apply, plan};
use crate::seccomp::{self, Program};
use crate::spec::{Rootfs, Snapshotter};

/// The supervisors (middle processes) of the sandboxes this process started and has
/// not waited for: what [`stop_all`] signals.
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Asks every running sandbox of this process to stop: each supervisor kills its PID 1
/// (and so the whole PID namespace) and exits with 128 + 9. For SIGINT/SIGTERM handlers.
pub fn stop_all() {
    for pid in LIVE.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

/// How a sandboxed process ended.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub status: ExitStatus,
    /// The kernel's OOM killer killed a process of its cgroup.
    pub oom_killed: bool,
}

/// A running sandboxed process.
pub struct Sandboxed {
    pub child: Child,
    /// Its cgroup, when its spec asks for one (removed when it ends).
    cgroup: Option<crate::cgroups::Cgroup>,
    upper: PathBuf,
    stubs: Vec<PathBuf>,
    /// The copying snapshotter's root and what it held before the process.
    copied: Option<(PathBuf, Baseline)>,
}

impl Drop for Sandboxed {
    fn drop(&mut self) {
        self.forget();
    }
}

impl Sandboxed {
    fn forget(&self) {
        let id = self.child.id();
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p| *p != id);
    }

    /// Waits for the program, then removes the mount-point stubs from the upper
    /// directory, so the upper directory holds only what the program changed.
    pub fn wait(self) -> Result<ExitStatus, Error> {
        Ok(self.wait_exit()?.status)
    }

    /// [`Sandboxed::wait`], saying whether the OOM killer struck; its cgroup removed.
    pub fn wait_exit(mut self) -> Result<Exit, Error> {
        // Wait without reaping, so that [`stop_all`] never signals a reaped (and perhaps
        // reused) PID: out of the list first, then reaped.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let flags = nix::sys::wait::WaitPidFlag::WEXITED | nix::sys::wait::WaitPidFlag::WNOWAIT;
        while let Err(nix::errno::Errno::EINTR) =
            nix::sys::wait::waitid(nix::sys::wait::Id::Pid(pid), flags)
        {}
        self.forget();
        let status = self.child.wait().map_err(|e| Error::Io {
            op: "wait for",
            path: self.upper.clone(),
            source: e,
        })?;
        if let Some((root, baseline)) = &self.copied {
            copy_root::write_upper(root, baseline, &self.upper).map_err(|e| Error::Io {
                op: "record the changes in",
                path: root.clone(),
                source: e,
            })?;
        }
        plan::remove_stubs(&self.upper, &self.stubs);
        let oom_killed = self.cgroup.as_ref().is_some_and(|c| c.oom_killed());
        if let Some(c) = &self.cgroup {
            c.remove();
        }
        Ok(Exit { status, oom_killed })
    }
}

/// Everything the sandbox does, decided before fork.
struct Prepared {
    namespaces: CloneFlags,
    loopback: bool,
    /// The root to build; None for a process that joins a running sandbox ([`exec`]).
    root: Option<plan::RootPlan>,
    /// Namespaces to join (descriptors of `/proc/PID/ns/*`, and their types), in order.
    join: Vec<(libc::c_int, libc::c_int)>,
    /// The `cgroup.procs` files the middle process joins before it forks PID 1, and
    /// those it goes back to after.
    cgroup_procs: Vec<CString>,
    cgroup_leave: Vec<CString>,
    hostname: Option<CString>,
    cwd: InRoot,
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: Vec<libc::gid_t>,
    caps: CapSets,
    seccomp: Option<Arc<Program>>,
    no_new_privileges: bool,
    /// `process.terminal`: its standard input is a terminal, made its controlling one.
    terminal: bool,
    /// The [`INIT_ANNOTATION`]: PID 1 stays a reaper and the program runs as its child.
    init: bool,
    rlimits: Vec<(u32, libc::rlimit)>,
    /// The caller's PID: the supervisor checks it still has that parent.
    parent: libc::pid_t,
}

fn namespaces(spec: &Spec) -> Result<(CloneFlags, bool), Error> {
    let mut flags = CloneFlags::empty();
    for ns in spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        let unsupported = || Error::Namespace {
            namespace: ns.typ().to_string(),
        };
        if ns.path().is_some() {
            return Err(unsupported());
        }
        flags |= match ns.typ() {
            LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
            LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
            LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
            _ => return Err(unsupported()),
        };
    }
    // The root is built by mounting: the sandbox always has a mount namespace, and a PID
    // namespace so that it dies whole with its PID 1.
    let loopback = flags.contains(CloneFlags::CLONE_NEWNET);
    Ok((
        flags | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID,
        loopback,
    ))
}

/// What the sandbox does for `spec`: on a root made from `rootfs`, in namespaces of its
/// own; or (`rootfs` None) in the namespaces of a running sandbox, joined by [`exec`].
fn prepare(spec: &Spec, rootfs: Option<&Rootfs>) -> Result<Prepared, Error> {
    let process = spec.process().as_ref().ok_or(Error::NoProgram)?;
    let (namespaces, loopback) = match rootfs {
        Some(_) => namespaces(spec)?,
        None => (CloneFlags::empty(), false),
    };
    let user = process.user();
    let mut groups: Vec<libc::gid_t> = vec![user.gid()];
    groups.extend(user.additional_gids().iter().flatten());
    let rlimits = process
        .rlimits()
        .iter()
        .flatten()
        .map(|r| {
            let resource = serde_json::to_value(r.typ())
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .and_then(|name| rlimit_resource(&name))
                .ok_or_else(|| Error::Spec {
                    reason: format!("unknown rlimit {:?}", r.typ()),
                })?;
            Ok((
                resource,
                libc::rlimit {
                    rlim_cur: r.soft(),
                    rlim_max: r.hard(),
                },
            ))
        })
        .collect::<Result<_, Error>>()?;
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(seccomp::compile(s)?),
        None => None,
    };
    Ok(Prepared {
        namespaces,
        loopback,
        root: rootfs.map(|r| plan::RootPlan::new(spec, r)).transpose()?,
        join: Vec::new(),
        cgroup_procs: Vec::new(),
        cgroup_leave: Vec::new(),
        hostname: spec
            .hostname()
            .as_deref()
            .filter(|_| namespaces.contains(CloneFlags::CLONE_NEWUTS))
            .map(|h| plan::cstring(std::path::Path::new(h)))
            .transpose()?,
        cwd: InRoot::new(process.cwd())?,
        uid: user.uid(),
        gid: user.gid(),
        groups,
        caps: CapSets::from_spec(process.capabilities().as_ref())?,
        seccomp,
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        terminal: process.terminal().unwrap_or(false),
        init: spec
            .annotations()
            .as_ref()
            .is_some_and(|a| a.get(INIT_ANNOTATION).is_some_and(|v| v == "true")),
        rlimits,
        parent: std::process::id() as libc::pid_t,
    })
}

fn rlimit_resource(name: &str) -> Option<u32> {
    Some(match name {
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        _ => return None,
    })
}

/// Starts the process of `spec` on a root made from `rootfs`, with the given standard
/// streams.
pub fn spawn(
    spec: &Spec,
    rootfs: &Rootfs,
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
) -> Result<Sandboxed, Error> {
    let process = spec.process().as_ref().ok_or(Error::NoProgram)?;
    for dir in [&rootfs.upper, &rootfs.work, &rootfs.merged] {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io {
            op: "create directory",
            path: dir.clone(),
            source: e,
        })?;
    }
    let stubs = plan::stubs(spec, rootfs);
    let copied = match rootfs.snapshotter {
        Snapshotter::Overlay => None,
        Snapshotter::Copy => {
            let merged = &rootfs.merged;
            let baseline = copy_root::merge_layers(&rootfs.lower, merged, false)
                .and_then(|()| copy_root::baseline(merged))
                .map_err(|e| Error::Io {
                    op: "copy the layers into",
                    path: merged.clone(),
                    source: e,
                })?;
            Some((merged.clone(), baseline))
        }
    };
    let mut prepared = prepare(spec, Some(rootfs))?;
    let cgroup = crate::cgroups::Cgroup::create(spec)?;
    if let Some(c) = &cgroup {
        prepared.cgroup_procs = c.procs().to_vec();
        prepared.cgroup_leave = c.parent_procs();
    }
    let child = match start(process, prepared, stdin, stdout, stderr) {
        Ok(child) => child,
        Err(e) => {
            if let Some(c) = &cgroup {
                c.remove();
            }
            return Err(e);
        }
    };
    Ok(Sandboxed {
        child,
        cgroup,
        upper: rootfs.upper.clone(),
        stubs,
        copied,
    })
}

/// Starts the process of `spec` in the namespaces of the running sandbox whose PID 1 is
/// `pid` (as `docker exec` does), confined as `spec` says; its root is that sandbox's.
pub fn exec(
    spec: &Spec,
    pid: u32,
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
) -> Result<Sandboxed, Error> {
    let process = spec.process().as_ref().ok_or(Error::NoProgram)?;
    let mut prepared = prepare(spec, None)?;
    prepared.cgroup_procs = crate::cgroups::Cgroup::procs_of(spec);
    // Held open until the process has joined them (the descriptors close at its exec).
    let mut held = Vec::new();
    for (name, nstype) in [
        ("ipc", libc::CLONE_NEWIPC),
        ("uts", libc::CLONE_NEWUTS),
        ("net", libc::CLONE_NEWNET),
        ("pid", libc::CLONE_NEWPID),
        ("mnt", libc::CLONE_NEWNS),
    ] {
        let path = std::path::PathBuf::from(format!("/proc/{pid}/ns/{name}"));
        let fd = std::fs::File::open(&path).map_err(|source| Error::Io {
            op: "open",
            path,
            source,
        })?;
        prepared
            .join
            .push((std::os::fd::AsRawFd::as_raw_fd(&fd), nstype));
        held.push(fd);
    }
    let child = start(process, prepared, stdin, stdout, stderr)?;
    drop(held);
    Ok(Sandboxed {
        child,
        cgroup: None,
        upper: std::path::PathBuf::new(),
        stubs: Vec::new(),
        copied: None,
    })
}

/// Forks the supervisor of `prepared` with `process`'s program, arguments and
/// environment and the given streams.
fn start(
    process: &oci_spec::runtime::Process,
    prepared: Prepared,
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
) -> Result<Child, Error> {
    let args = process.args().clone().unwrap_or_default();
    let program = args.first().ok_or(Error::NoProgram)?.clone();
    let mut cmd = Command::new(&program);
    cmd.args(&args[1..])
        .env_clear()
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr);
    for kv in process.env().iter().flatten() {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        cmd.env(k, v);
    }
    // SAFETY: the closure runs in the forked child before exec and allocates nothing:
    // it reads `prepared` and makes system calls. The supervisor never returns from it.
    unsafe {
        cmd.pre_exec(move || supervise(&prepared));
    }
    let child = cmd
        .spawn()
        .map_err(|source| Error::Spawn { program, source })?;
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(child.id());
    Ok(child)
}

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

/// The middle process: unshares, forks PID 1, and waits for it.
fn supervise(p: &Prepared) -> std::io::Result<()> {
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
    nix::sched::unshare(p.namespaces).map_err(std::io::Error::from)?;
    for (fd, nstype) in &p.join {
        // SAFETY: setns(2) with a descriptor the caller holds open across the fork.
        check(unsafe { libc::setns(*fd, *nstype) })?;
    }
    // When the caller dies, SIGTERM: the handler kills PID 1 and so the namespace.
    set_handlers(kill_init as extern "C" fn(libc::c_int) as libc::sighandler_t)?;
    // SAFETY: prctl(2) and getppid(2) with integer arguments.
    unsafe {
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0))?;
        // The caller may have died before the line above: then nothing would signal us.
        if libc::getppid() != p.parent {
            libc::_exit(137);
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
    SANDBOX_INIT.store(pid, Ordering::SeqCst);
    // Out again: the cgroup counts (and limits) the container's processes alone. PID 1
    // is in; where we go does not matter to it.
    let _ = join_cgroups(&p.cgroup_leave);
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
    // SAFETY: signal(2), prctl(2) and close_range(2) with integer arguments.
    unsafe {
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
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
    if p.terminal {
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
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
    }
    if p.init {
        reap_as_init()?;
    }
    Ok(())
}

/// Set to `"true"` in a spec's annotations (`kiln run --init`): PID 1 forks the program
/// and stays, confined as it is, to reap orphaned processes and pass signals on, as
/// docker's `--init` (tini) does — no binary to put in the container: it is this code.
pub const INIT_ANNOTATION: &str = "io.kiln.init";

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
