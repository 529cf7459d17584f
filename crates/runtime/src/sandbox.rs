//! Starting a process in the sandbox.
//!
//! `Command::spawn` forks; in the child, `pre_exec` unshares the namespaces and forks
//! once more, because a new PID namespace takes effect for children only. The middle
//! process waits for its child (the sandbox's PID 1) and exits with its status, so the
//! caller sees one process with the program's exit code; the grandchild builds the root,
//! drops to the configured user and execs the program.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};

use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Gid, Uid};

use crate::copy_root::{self, Baseline};
use crate::error::Error;
use crate::mounts;
use crate::spec::{Network, SandboxConfig, Snapshotter};

/// A running sandboxed process.
pub struct Sandboxed {
    pub child: Child,
    upper: PathBuf,
    stubs: Vec<PathBuf>,
    /// The copying snapshotter's root and what it held before the process.
    copied: Option<(PathBuf, Baseline)>,
}

impl Sandboxed {
    /// Waits for the program, then removes the mount-point stubs from the upper
    /// directory, so the upper directory holds only what the program changed.
    pub fn wait(mut self) -> Result<ExitStatus, Error> {
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
        mounts::remove_stubs(&self.upper, &self.stubs);
        Ok(status)
    }
}

/// Starts `config.process` in the sandbox, with the given standard streams.
pub fn spawn(
    config: &SandboxConfig,
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
) -> Result<Sandboxed, Error> {
    let program = config
        .process
        .args
        .first()
        .ok_or_else(|| Error::Config("no program to run".into()))?
        .clone();
    for dir in [&config.root.upper, &config.root.work, &config.root.merged] {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io {
            op: "create directory",
            path: dir.clone(),
            source: e,
        })?;
    }
    let stubs = mounts::stubs(config);
    let copied = match config.root.snapshotter {
        Snapshotter::Overlay => None,
        Snapshotter::Copy => {
            let merged = &config.root.merged;
            let baseline = copy_root::merge_layers(&config.root.lower, merged, false)
                .and_then(|()| copy_root::baseline(merged))
                .map_err(|e| Error::Io {
                    op: "copy the layers into",
                    path: merged.clone(),
                    source: e,
                })?;
            Some((merged.clone(), baseline))
        }
    };
    let mut cmd = Command::new(&program);
    cmd.args(&config.process.args[1..])
        .env_clear()
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr);
    for kv in &config.process.env {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        cmd.env(k, v);
    }
    let config_for_child = config.clone();
    // SAFETY: the closure runs in the forked child before exec. It only makes system
    // calls and, in the grandchild, allocates; glibc's fork(2) makes malloc usable in a
    // child. The middle process never returns from it: it exits with `_exit`.
    unsafe {
        cmd.pre_exec(move || enter(&config_for_child));
    }
    let child = cmd
        .spawn()
        .map_err(|source| Error::Spawn { program, source })?;
    Ok(Sandboxed {
        child,
        upper: config.root.upper.clone(),
        stubs,
        copied,
    })
}

fn enter(config: &SandboxConfig) -> std::io::Result<()> {
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if config.network == Network::Loopback {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    nix::sched::unshare(flags).map_err(std::io::Error::from)?;
    // SAFETY: see `spawn`; the parent branch only waits and exits.
    match unsafe { nix::unistd::fork() }.map_err(std::io::Error::from)? {
        ForkResult::Parent { child } => {
            // Drop every inherited descriptor but the standard streams: holding the
            // spawn error pipe would keep the caller's `spawn` waiting until we exit.
            // SAFETY: close_range(2) on descriptors this process no longer uses.
            unsafe { nix::libc::syscall(nix::libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
            let code = loop {
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, code)) => break code,
                    Ok(WaitStatus::Signaled(_, signal, _)) => break 128 + signal as i32,
                    Ok(_) => continue,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => break 255,
                }
            };
            // SAFETY: _exit(2) ends the middle process without running the parent's
            // atexit handlers or destructors, which belong to the caller.
            unsafe { nix::libc::_exit(code) }
        }
        ForkResult::Child => {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)?;
            mounts::enter_root(config)?;
            nix::unistd::sethostname(&config.hostname).map_err(std::io::Error::from)?;
            if config.network == Network::Loopback {
                crate::network::loopback_up()?;
            }
            std::fs::create_dir_all(&config.process.cwd)?;
            std::env::set_current_dir(&config.process.cwd)?;
            let user = config.process.user;
            nix::unistd::setgroups(&[Gid::from_raw(user.gid)]).map_err(std::io::Error::from)?;
            nix::unistd::setgid(Gid::from_raw(user.gid)).map_err(std::io::Error::from)?;
            nix::unistd::setuid(Uid::from_raw(user.uid)).map_err(std::io::Error::from)?;
            Ok(())
        }
    }
}
