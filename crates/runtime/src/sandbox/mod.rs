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
use std::sync::{Arc, Mutex};

use nix::libc;
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::capabilities::CapSets;
use crate::copy_root::{self, Baseline};
use crate::error::Error;
use crate::in_root::InRoot;
use crate::rootfs::plan;
use crate::seccomp::{self, Program};
use crate::spec::{Rootfs, Snapshotter};

mod forked;

use forked::supervise;

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
    /// The process's exit status.
    pub status: ExitStatus,
    /// The kernel's OOM killer killed a process of its cgroup.
    pub oom_killed: bool,
}

/// A running sandboxed process.
pub struct Sandboxed {
    /// The sandbox's first process; its standard streams are the caller's to read and
    /// write.
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

fn forget_pid(id: u32) {
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|p| *p != id);
}

impl Sandboxed {
    /// The mount points the sandbox made in the upper directory (absolute paths in the
    /// root), which it removes when the program ends if they are still empty.
    pub fn mount_stubs(&self) -> &[PathBuf] {
        &self.stubs
    }

    fn forget(&self) {
        forget_pid(self.child.id());
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
    umask: Option<libc::mode_t>,
    /// The caller's PID: the supervisor checks it still has that parent.
    parent: libc::pid_t,
    /// Set for a detached start ([`create`], [`exec_detached`]): the middle process
    /// writes PID 1's PID here and leaves at once, so that the caller's subreaper (conmon,
    /// for podman) becomes PID 1's parent and reaps it; nothing kills PID 1 with it.
    report: Option<libc::c_int>,
    /// PID 1 waits for a byte on it before exec ([`create`]; `kiln runtime start`).
    gate: Option<libc::c_int>,
    /// Where the program may be (its name, or each `$PATH` directory with it): a
    /// created sandbox checks before it waits, so that a missing program fails `create`
    /// as runc's does, and not the exec after `start`, which nobody would hear of.
    lookup: Vec<CString>,
    /// With `terminal`: the socket the terminal's master goes to; the terminal is made
    /// inside the sandbox ([`crate::terminal`]).
    console: Option<libc::c_int>,
    /// `process.consoleSize`: rows and columns, set before the program runs.
    console_size: Option<(u16, u16)>,
    /// A user namespace of its own ([`Userns`]).
    userns: Option<Userns>,
}

/// How the middle process enters a user namespace of the sandbox's own: in a mount
/// namespace of its own it mounts each `(source, target)` idmapped through `fd` (the
/// layers and the container's directory, which the root is then made of), enters the
/// namespace, and becomes its root; the other namespaces it makes belong to it.
struct Userns {
    fd: libc::c_int,
    idmapped: Vec<(CString, CString)>,
}

/// The namespaces `spec` asks for: those to make (always a mount and a PID namespace),
/// whether its network namespace is new (its loopback is then brought up), and those to
/// join (`path`), with their types.
type Namespaces = (CloneFlags, bool, Vec<(PathBuf, libc::c_int)>);

fn namespaces(spec: &Spec) -> Result<Namespaces, Error> {
    let mut flags = CloneFlags::empty();
    let mut join = Vec::new();
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
        let flag = match ns.typ() {
            LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
            LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
            LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
            // Entered by the middle process before the others are made ([`Userns`]).
            LinuxNamespaceType::User if ns.path().is_none() => continue,
            _ => return Err(unsupported()),
        };
        match ns.path() {
            // The root is built by mounting, and the sandbox dies whole with its PID 1:
            // those two are always its own.
            Some(_)
                if matches!(
                    ns.typ(),
                    LinuxNamespaceType::Pid | LinuxNamespaceType::Mount
                ) =>
            {
                return Err(unsupported())
            }
            Some(path) => join.push((path.clone(), flag.bits())),
            None => flags |= flag,
        }
    }
    let loopback = flags.contains(CloneFlags::CLONE_NEWNET);
    Ok((
        flags | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID,
        loopback,
        join,
    ))
}

/// Opens the namespaces to join; the descriptors must stay open until the sandbox has
/// joined them (they close at its exec).
fn open_namespaces(
    prepared: &mut Prepared,
    paths: &[(PathBuf, libc::c_int)],
) -> Result<Vec<std::fs::File>, Error> {
    let mut held = Vec::new();
    for (path, nstype) in paths {
        let fd = std::fs::File::open(path).map_err(|source| Error::Io {
            op: "open the namespace",
            path: path.clone(),
            source,
        })?;
        prepared
            .join
            .push((std::os::fd::AsRawFd::as_raw_fd(&fd), *nstype));
        held.push(fd);
    }
    Ok(held)
}

/// What the sandbox does for `spec`: on a root made from `rootfs`, in namespaces of its
/// own; or (`rootfs` None) in the namespaces of a running sandbox, joined by [`exec`].
fn prepare(spec: &Spec, rootfs: Option<&Rootfs>) -> Result<Prepared, Error> {
    let process = spec.process().as_ref().ok_or(Error::NoProgram)?;
    let (namespaces, loopback) = match rootfs {
        Some(_) => {
            let (flags, loopback, _) = namespaces(spec)?;
            (flags, loopback)
        }
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
        umask: user.umask().map(|m| m as libc::mode_t),
        parent: std::process::id() as libc::pid_t,
        report: None,
        gate: None,
        lookup: Vec::new(),
        console: None,
        userns: None,
        console_size: process.console_size().map(|b| {
            (
                b.height().min(u16::MAX as u64) as u16,
                b.width().min(u16::MAX as u64) as u16,
            )
        }),
    })
}

/// The paths `execvp` would try for `process`'s program.
fn lookup(process: &oci_spec::runtime::Process) -> Result<Vec<CString>, Error> {
    let Some(program) = process.args().as_ref().and_then(|a| a.first()) else {
        return Ok(Vec::new());
    };
    if program.contains('/') {
        return Ok(vec![plan::cstring(std::path::Path::new(program))?]);
    }
    let path = process
        .env()
        .iter()
        .flatten()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| plan::cstring(&std::path::Path::new(d).join(program)))
        .collect()
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
    spawn_on(spec, rootfs, [stdin, stdout, stderr], None)
}

/// [`spawn`] with a terminal (`process.terminal`) made in the sandbox: its master comes
/// on the caller's end of `console` ([`crate::terminal::receive`]).
pub fn spawn_terminal(
    spec: &Spec,
    rootfs: &Rootfs,
    console: &std::os::unix::net::UnixStream,
) -> Result<Sandboxed, Error> {
    let console = std::os::fd::AsRawFd::as_raw_fd(console);
    spawn_on(
        spec,
        rootfs,
        [Stdio::null(), Stdio::null(), Stdio::null()],
        Some(console),
    )
}

fn spawn_on(
    spec: &Spec,
    rootfs: &Rootfs,
    [stdin, stdout, stderr]: [Stdio; 3],
    console: Option<libc::c_int>,
) -> Result<Sandboxed, Error> {
    let process = spec.process().as_ref().ok_or(Error::NoProgram)?;
    let (mut prepared, held) = prepare_root(spec, rootfs)?;
    prepared.console = console;
    let stubs = plan::stubs(spec, rootfs);
    let copied = match rootfs.snapshotter {
        Snapshotter::Overlay | Snapshotter::Made => None,
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
    let cgroup = make_cgroup(spec, &mut prepared)?;
    let child = match start(process, prepared, stdin, stdout, stderr) {
        Ok(child) => child,
        Err(e) => {
            if let Some(c) = &cgroup {
                c.remove();
            }
            return Err(e);
        }
    };
    drop(held);
    Ok(Sandboxed {
        child,
        cgroup,
        upper: rootfs.upper.clone(),
        stubs,
        copied,
    })
}

/// What [`spawn`] and [`create`] share: the plan, and the namespaces to join (held
/// open).
fn prepare_root(spec: &Spec, rootfs: &Rootfs) -> Result<(Prepared, Vec<std::fs::File>), Error> {
    if rootfs.snapshotter != Snapshotter::Made {
        for dir in [&rootfs.upper, &rootfs.work, &rootfs.merged] {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io {
                op: "create directory",
                path: dir.clone(),
                source: e,
            })?;
        }
    }
    let mapping = spec
        .linux()
        .as_ref()
        .filter(|l| {
            l.namespaces().iter().flatten().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::User && n.path().is_none()
            })
        })
        .and_then(|l| l.uid_mappings().as_ref()?.first().copied());
    let Some(mapping) = mapping else {
        let mut prepared = prepare(spec, Some(rootfs))?;
        let (_, _, join) = namespaces(spec)?;
        let held = open_namespaces(&mut prepared, &join)?;
        return Ok((prepared, held));
    };
    // The root is made of idmapped views of the layers and of the directory holding the
    // upper and work directories (overlayfs wants both on one mount).
    let (Some(dir), Some(upper), Some(work)) = (
        rootfs.upper.parent(),
        rootfs.upper.file_name(),
        rootfs.work.file_name(),
    ) else {
        return Err(Error::Spec {
            reason: "a user namespace needs the upper and work directories side by side".into(),
        });
    };
    if rootfs.snapshotter != Snapshotter::Overlay || rootfs.work.parent() != Some(dir) {
        return Err(Error::Spec {
            reason: "a user namespace needs an overlay root with its upper and work directories side by side".into(),
        });
    }
    let views = dir.join("idmapped");
    let mut idmapped = Vec::new();
    let mut lower = Vec::new();
    for (i, l) in rootfs.lower.iter().enumerate() {
        let target = views.join(format!("lower{i}"));
        idmapped.push((l.clone(), target.clone()));
        lower.push(target);
    }
    let own = views.join("own");
    idmapped.push((dir.to_path_buf(), own.clone()));
    for (_, target) in &idmapped {
        std::fs::create_dir_all(target).map_err(|e| Error::Io {
            op: "create directory",
            path: target.clone(),
            source: e,
        })?;
    }
    let view = Rootfs {
        lower,
        upper: own.join(upper),
        work: own.join(work),
        merged: rootfs.merged.clone(),
        snapshotter: rootfs.snapshotter,
    };
    let mut prepared = prepare(spec, Some(&view))?;
    let fd = crate::userns::make(mapping.host_id(), mapping.size())?;
    prepared.userns = Some(Userns {
        fd: std::os::fd::AsRawFd::as_raw_fd(&fd),
        idmapped: idmapped
            .iter()
            .map(|(s, t)| Ok((plan::cstring(s)?, plan::cstring(t)?)))
            .collect::<Result<_, Error>>()?,
    });
    let (_, _, join) = namespaces(spec)?;
    let mut held = open_namespaces(&mut prepared, &join)?;
    held.push(std::fs::File::from(fd));
    Ok((prepared, held))
}

/// The cgroup `spec` asks for, made, with the middle process to join it.
fn make_cgroup(
    spec: &Spec,
    prepared: &mut Prepared,
) -> Result<Option<crate::cgroups::Cgroup>, Error> {
    let cgroup = crate::cgroups::Cgroup::create(spec)?;
    if let Some(c) = &cgroup {
        prepared.cgroup_procs = c.procs().to_vec();
        prepared.cgroup_leave = c.parent_procs();
    }
    Ok(cgroup)
}

/// Makes the sandbox of `spec` on `rootfs` as `runc create` does: PID 1 is set up and
/// waits, before it execs the program, for a byte on `gate` (`kiln runtime start`
/// writes it); no process of ours stays its parent. Returns PID 1's PID. Its cgroup
/// stays until the caller removes it ([`crate::cgroups::remove_path`]).
/// With `console`, the terminal is made in the sandbox and its master sent there; the
/// standard streams are then the terminal's.
pub fn create(
    spec: &Spec,
    rootfs: &Rootfs,
    gate: &std::fs::File,
    console: Option<&std::os::unix::net::UnixStream>,
) -> Result<u32, Error> {
    let process = spec.process().as_ref().ok_or(Error::NoProgram)?;
    let (mut prepared, held) = prepare_root(spec, rootfs)?;
    prepared.lookup = lookup(process)?;
    prepared.console = console.map(std::os::fd::AsRawFd::as_raw_fd);
    let cgroup = make_cgroup(spec, &mut prepared)?;
    prepared.gate = Some(std::os::fd::AsRawFd::as_raw_fd(gate));
    let (stdin, stdout, stderr) = match console {
        Some(_) => (Stdio::null(), Stdio::null(), Stdio::null()),
        None => (Stdio::inherit(), Stdio::inherit(), Stdio::inherit()),
    };
    let pid = start_detached(process, prepared, stdin, stdout, stderr);
    drop(held);
    if pid.is_err() {
        if let Some(c) = &cgroup {
            c.remove();
        }
    }
    pid
}

/// [`exec`] as `runc exec --detach` does it: returns the process's PID at once, and no
/// process of ours stays its parent.
/// With `console`, a terminal made in the sandbox is its standard streams (its master
/// sent there); else ours are.
pub fn exec_detached(
    spec: &Spec,
    pid: u32,
    console: Option<&std::os::unix::net::UnixStream>,
) -> Result<u32, Error> {
    let process = spec.process().as_ref().ok_or(Error::NoProgram)?;
    let (mut prepared, held) = prepare_exec(spec, pid)?;
    prepared.console = console.map(std::os::fd::AsRawFd::as_raw_fd);
    let (stdin, stdout, stderr) = match console {
        Some(_) => (Stdio::null(), Stdio::null(), Stdio::null()),
        None => (Stdio::inherit(), Stdio::inherit(), Stdio::inherit()),
    };
    let pid = start_detached(process, prepared, stdin, stdout, stderr);
    drop(held);
    pid
}

/// Starts `prepared` detached: the middle process reports PID 1's PID on a pipe and
/// leaves.
fn start_detached(
    process: &oci_spec::runtime::Process,
    mut prepared: Prepared,
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
) -> Result<u32, Error> {
    let io = |op, source| Error::Io {
        op,
        path: PathBuf::from("/proc/self"),
        source,
    };
    let (read, write) = std::io::pipe().map_err(|e| io("make a pipe", e))?;
    prepared.report = Some(std::os::fd::AsRawFd::as_raw_fd(&write));
    let mut child = start(process, prepared, stdin, stdout, stderr)?;
    forget_pid(child.id());
    drop(write);
    child.wait().map_err(|e| io("wait for the sandbox", e))?;
    let mut pid = [0u8; 4];
    std::io::Read::read_exact(&mut &read, &mut pid).map_err(|e| io("read PID 1 of", e))?;
    Ok(u32::from_ne_bytes(pid))
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
    exec_on(spec, pid, [stdin, stdout, stderr], None)
}

/// [`exec`] with a terminal made in the sandbox, as [`spawn_terminal`] makes it.
pub fn exec_terminal(
    spec: &Spec,
    pid: u32,
    console: &std::os::unix::net::UnixStream,
) -> Result<Sandboxed, Error> {
    let console = std::os::fd::AsRawFd::as_raw_fd(console);
    exec_on(
        spec,
        pid,
        [Stdio::null(), Stdio::null(), Stdio::null()],
        Some(console),
    )
}

fn exec_on(
    spec: &Spec,
    pid: u32,
    [stdin, stdout, stderr]: [Stdio; 3],
    console: Option<libc::c_int>,
) -> Result<Sandboxed, Error> {
    let process = spec.process().as_ref().ok_or(Error::NoProgram)?;
    let (mut prepared, held) = prepare_exec(spec, pid)?;
    prepared.console = console;
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

/// The plan of a process joining the running sandbox whose PID 1 is `pid`, and the
/// namespace descriptors to hold open until it has joined them.
fn prepare_exec(spec: &Spec, pid: u32) -> Result<(Prepared, Vec<std::fs::File>), Error> {
    let mut prepared = prepare(spec, None)?;
    prepared.cgroup_procs = crate::cgroups::Cgroup::procs_of(spec);
    // A sandbox with a user namespace of its own is entered through it (the process is
    // then its root, and the user the spec names in it, never the host's) — but for its
    // network namespace, joined first, as the sandbox joined it: the host may have made
    // it (a wired network), and the container's user namespace has no rights over that.
    let ns_of = |p: &str| std::fs::read_link(p).ok();
    let own_userns = ns_of(&format!("/proc/{pid}/ns/user")) != ns_of("/proc/self/ns/user");
    let user = own_userns.then_some(("user", libc::CLONE_NEWUSER));
    let paths: Vec<(PathBuf, libc::c_int)> = [("net", libc::CLONE_NEWNET)]
        .into_iter()
        .chain(user)
        .chain([
            ("ipc", libc::CLONE_NEWIPC),
            ("uts", libc::CLONE_NEWUTS),
            ("pid", libc::CLONE_NEWPID),
            ("mnt", libc::CLONE_NEWNS),
        ])
        .map(|(name, nstype)| (PathBuf::from(format!("/proc/{pid}/ns/{name}")), nstype))
        .collect();
    let held = open_namespaces(&mut prepared, &paths)?;
    Ok((prepared, held))
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

/// Set to `"true"` in a spec's annotations (`kiln run --init`): PID 1 forks the program
/// and stays, confined as it is, to reap orphaned processes and pass signals on, as
/// docker's `--init` (tini) does — no binary to put in the container: it is this code.
pub const INIT_ANNOTATION: &str = "io.kiln.init";
