//! `kiln exec [-i] [-e K=V]... [-u USER] [-w DIR] CONTAINER COMMAND [ARG...]`: a process
//! in a running container's namespaces, root and cgroup, confined as the container is.

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};

use anyhow::bail;
use kiln_image::store::Store;
use kiln_runtime::containers::{Container, Containers, Status};
use kiln_runtime::{Network, ProcessSpec};

#[derive(clap::Args)]
pub struct ExecArgs {
    /// Run it in the background (its output goes nowhere, as docker's).
    #[arg(short, long)]
    detach: bool,
    /// Pass standard input to the command.
    #[arg(short, long)]
    interactive: bool,
    /// A pseudo-terminal for the command (`-it` for a shell).
    #[arg(short, long)]
    tty: bool,
    /// An environment variable: `K=V` (repeatable).
    #[arg(short, long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// USER[:GROUP], by name or number (default: the container's).
    #[arg(short, long)]
    user: Option<String>,
    /// The working directory (default: the container's).
    #[arg(short, long = "workdir", value_name = "DIR")]
    workdir: Option<String>,
    container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// `kiln exec [-i] [-e K=V]... [-u USER] [-w DIR] CONTAINER COMMAND [ARG...]`: a process
/// in a running container's namespaces and root, confined as the container is.
pub fn exec(args: ExecArgs) -> anyhow::Result<ExitCode> {
    match exec_in(args) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("kiln: {}", crate::message(&e));
            Ok(ExitCode::from(super::run::KILN_FAILED))
        }
    }
}

/// The spec of a process that joins container `c`: its environment (with `env` over
/// it), its user (or `user`), its working directory (or `workdir`), its confinement and
/// its cgroup.
pub(crate) fn exec_spec(
    c: &Container,
    command: &[String],
    env_extra: &[String],
    user: Option<&str>,
    workdir: Option<&str>,
) -> anyhow::Result<kiln_runtime::Spec> {
    let bottom_first: Vec<PathBuf> = c.config.lowers.iter().rev().cloned().collect();
    let (uid, gid, groups) = match user {
        Some(u) => {
            let account = kiln_image::tree::resolve_user(u, &bottom_first)
                .map_err(|e| anyhow::anyhow!("user {u}: {e}"))?;
            (account.uid, account.gid, account.groups)
        }
        None => (c.config.uid, c.config.gid, c.config.groups.clone()),
    };
    let mut env = c.config.env.clone();
    for e in env_extra {
        let key = e.split('=').next().unwrap_or(e);
        env.retain(|kv| kv.split('=').next() != Some(key));
        env.push(e.clone());
    }
    Ok(kiln_runtime::default_spec(&ProcessSpec {
        args: command.to_vec(),
        env,
        cwd: workdir.unwrap_or(&c.config.working_dir).into(),
        uid,
        gid,
        groups,
        hostname: c.config.hostname.clone(),
        // The container's namespaces are joined, never made: this says nothing.
        network: Network::Host,
        privileged: c.config.security.privileged,
        rlimits: c.config.security.ulimits.clone(),
        cgroup: Some((c.cgroup_path(), Default::default())),
        cap_add: c.config.security.cap_add.clone(),
        cap_drop: c.config.security.cap_drop.clone(),
        no_new_privileges: c.config.security.no_new_privileges,
        seccomp: super::run::seccomp_profile(&c.config.security)?,
        ..Default::default()
    })?)
}

fn exec_in(args: ExecArgs) -> anyhow::Result<ExitCode> {
    let containers = Containers::open(&Store::default_root())?;
    let c = containers.find(&args.container)?;
    if c.state.status != Status::Running || c.state.pid == 0 {
        bail!("container {} is not running: start it first", c.config.name);
    }
    if c.state.paused {
        bail!(
            "container {} is paused: unpause it first (kiln unpause {})",
            c.config.name,
            c.config.name
        );
    }
    let spec = exec_spec(
        &c,
        &args.command,
        &args.env,
        args.user.as_deref(),
        args.workdir.as_deref(),
    )?;
    if args.detach {
        return detach(&args);
    }
    let mut spec = spec;
    let console = if args.tty {
        let mut process = spec.process().clone().unwrap_or_default();
        super::tty::with_terminal(&mut process, super::tty::caller_size());
        spec.set_process(Some(process));
        Some(super::tty::console()?)
    } else {
        None
    };
    let started = match &console {
        Some((_, theirs)) => kiln_runtime::exec_terminal(&spec, c.state.pid, theirs),
        None => {
            let stdin = if args.interactive {
                Stdio::inherit()
            } else {
                Stdio::null()
            };
            kiln_runtime::exec(
                &spec,
                c.state.pid,
                stdin,
                Stdio::inherit(),
                Stdio::inherit(),
            )
        }
    };
    let process = match started {
        Ok(p) => p,
        Err(kiln_runtime::Error::Spawn { source, .. }) => {
            let program = &args.command[0];
            let (code, what) = match source.kind() {
                std::io::ErrorKind::NotFound => (127, super::supervisor::not_found(program)),
                std::io::ErrorKind::PermissionDenied => {
                    (126, format!("exec: {program:?}: permission denied"))
                }
                _ => return Err(source.into()),
            };
            eprintln!("kiln: {what}");
            return Ok(ExitCode::from(code));
        }
        Err(e) => return Err(e.into()),
    };
    let code = |status: std::process::ExitStatus| {
        ExitCode::from(status.code().unwrap_or(255).clamp(0, 255) as u8)
    };
    if let Some((ours, theirs)) = console {
        drop(theirs);
        let master = super::tty::receive(&ours)?;
        let _raw = super::tty::RawMode::enter();
        super::tty::follow_caller_size(std::os::fd::AsRawFd::as_raw_fd(&master))?;
        if args.interactive {
            super::tty::copy_in(std::fs::File::from(master.try_clone()?));
        }
        let copier = super::tty::copy_out(std::fs::File::from(master));
        let status = process.wait()?;
        let _ = copier.join();
        return Ok(code(status));
    }
    Ok(code(process.wait()?))
}

/// `exec -d`: the same exec, by a kiln process of its own session (the exec'd process
/// lives as long as the process that started it), this one returning at once.
fn detach(args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let mut argv: Vec<&str> = vec!["exec"];
    for e in &args.env {
        argv.extend(["-e", e]);
    }
    if let Some(u) = &args.user {
        argv.extend(["-u", u]);
    }
    if let Some(w) = &args.workdir {
        argv.extend(["-w", w]);
    }
    argv.push(&args.container);
    argv.extend(args.command.iter().map(String::as_str));
    super::supervisor::spawn_detached(&argv, None)?;
    Ok(ExitCode::SUCCESS)
}
