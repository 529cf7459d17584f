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
