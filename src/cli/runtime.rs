//! `kiln runtime`: kiln's sandbox on runc's command line, over OCI bundles — what
//! `podman --runtime`, containerd's runc shim and the OCI runtime validation suite call.
//! The flags are runc's; those that change nothing here (`--systemd-cgroup` aside, which
//! is refused) are accepted so callers need no special case.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use kiln_runtime::bundles::{Bundles, Status, Streams};

#[derive(clap::Args)]
pub struct Args {
    /// Where the containers' state lives (runc's --root).
    #[arg(long, default_value = "/run/kiln/runtime")]
    root: PathBuf,
    /// Append errors to this file too (conmon reads it).
    #[arg(long)]
    log: Option<PathBuf>,
    /// text or json, for --log.
    #[arg(long, default_value = "text")]
    log_format: String,
    #[arg(long)]
    debug: bool,
    /// Refused: kiln's runtime manages cgroups as files (podman's cgroupfs manager).
    #[arg(long)]
    systemd_cgroup: bool,
    #[arg(long, hide = true)]
    rootless: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Make a container from a bundle; its program waits for `start`.
    Create(CreateArgs),
    /// Run the program of a created container.
    Start { id: String },
    /// Create, start and wait for a container, then delete it (foreground).
    Run(RunArgs),
    /// Print a container's state (the runtime spec's JSON).
    State { id: String },
    /// Send a signal (default SIGTERM) to a container.
    Kill {
        /// To every process of the container's cgroup.
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Remove a stopped container (--force: kill it first).
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Run a process in a running container.
    Exec(ExecArgs),
    /// List containers.
    #[command(alias = "ls")]
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// What this runtime supports (runc's `features` JSON).
    Features,
}

#[derive(clap::Args)]
struct CreateArgs {
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// A Unix socket to send the terminal's master to (for process.terminal).
    #[arg(long)]
    console_socket: Option<PathBuf>,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    #[arg(long, hide = true)]
    no_pivot: bool,
    #[arg(long, hide = true)]
    no_new_keyring: bool,
    #[arg(long, hide = true, default_value_t = 0)]
    preserve_fds: u32,
    id: String,
}

#[derive(clap::Args)]
struct RunArgs {
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    id: String,
}

#[derive(clap::Args)]
struct ExecArgs {
    /// The process as the runtime spec's JSON (else COMMAND with the container's).
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Return once it runs; its PID goes to --pid-file.
    #[arg(short, long)]
    detach: bool,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// A Unix socket to send the terminal's master to (with a terminal).
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// A terminal for COMMAND (needs --console-socket).
    #[arg(short, long)]
    tty: bool,
    #[arg(long)]
    cwd: Option<PathBuf>,
    #[arg(short, long)]
    env: Vec<String>,
    id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (log, json) = (args.log.clone(), args.log_format == "json");
    let result = dispatch(args);
    if let (Err(e), Some(path)) = (&result, log) {
        // runc's log: conmon shows its last error when a call fails.
        let msg = crate::message(e);
        let line = if json {
            serde_json::json!({"level": "error", "msg": msg, "time": now()}).to_string()
        } else {
            format!("time=\"{}\" level=error msg={msg:?}", now())
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
    result
}

fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

fn dispatch(args: Args) -> anyhow::Result<ExitCode> {
    if args.systemd_cgroup {
        bail!("--systemd-cgroup: kiln's runtime manages cgroups as files; use podman's --cgroup-manager cgroupfs");
    }
    let bundles = Bundles::new(&args.root);
    match args.command {
        Command::Create(c) => {
            let streams = match c.console_socket {
                Some(socket) => Streams::ConsoleSocket(socket),
                None => Streams::Inherit,
            };
            bundles.create(&c.id, &c.bundle, c.pid_file.as_deref(), streams)?;
        }
        Command::Start { id } => bundles.start(&id)?,
        Command::Run(r) => return run_foreground(&bundles, r),
        Command::State { id } => {
            println!("{}", serde_json::to_string_pretty(&bundles.state(&id)?)?);
        }
        Command::Kill { all, id, signal } => {
            bundles.kill(&id, super::container::parse_signal(&signal)?, all)?
        }
        Command::Delete { force, id } => bundles.delete(&id, force)?,
        Command::Exec(e) => return exec(&bundles, e),
        Command::List { format, quiet } => list(&bundles, &format, quiet)?,
        Command::Features => println!("{}", serde_json::to_string_pretty(&features())?),
    }
    Ok(ExitCode::SUCCESS)
}

/// `runc run`: this process becomes the container's reaper (its middle process leaves),
/// so it can wait for PID 1 and exit as it does.
fn run_foreground(bundles: &Bundles, r: RunArgs) -> anyhow::Result<ExitCode> {
    nix::sys::prctl::set_child_subreaper(true).context("becoming the container's reaper")?;
    let record = bundles.create(&r.id, &r.bundle, r.pid_file.as_deref(), Streams::Inherit)?;
    let waited = bundles
        .start(&r.id)
        .map_err(anyhow::Error::from)
        .and_then(|()| loop {
            match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(record.pid as i32), None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => return Ok(code),
                Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e).context("waiting for the container"),
            }
        });
    bundles.delete(&r.id, true)?;
    Ok(ExitCode::from(waited? as u8))
}

fn exec(bundles: &Bundles, e: ExecArgs) -> anyhow::Result<ExitCode> {
    let process: oci_spec::runtime::Process = match &e.process {
        Some(path) => {
            let text =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => {
            if e.command.is_empty() {
                bail!("name the command to run (or give --process)");
            }
            let record = bundles.load(&e.id)?;
            let config = record.bundle.join("config.json");
            let spec = kiln_runtime::Spec::load(&config)
                .with_context(|| format!("reading {}", config.display()))?;
            let mut process = spec.process().clone().unwrap_or_default();
            process.set_args(Some(e.command.clone()));
            process.set_terminal(Some(e.tty));
            let mut env = process.env().clone().unwrap_or_default();
            env.extend(e.env.iter().cloned());
            process.set_env(Some(env));
            if let Some(cwd) = &e.cwd {
                process.set_cwd(cwd.clone());
            }
            process
        }
    };
    let streams = match e.console_socket {
        Some(socket) => Streams::ConsoleSocket(socket),
        None => Streams::Inherit,
    };
    let code = bundles.exec(&e.id, process, e.pid_file.as_deref(), e.detach, streams)?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

fn list(bundles: &Bundles, format: &str, quiet: bool) -> anyhow::Result<()> {
    let mut states = Vec::new();
    for record in bundles.list()? {
        states.push(bundles.state(&record.id)?);
    }
    states.sort_by(|a, b| a.created.cmp(&b.created));
    if quiet {
        for s in &states {
            println!("{}", s.id);
        }
    } else if format == "json" {
        println!("{}", serde_json::to_string(&states)?);
    } else {
        println!("ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER");
        for s in &states {
            let pid = if s.status == Status::Stopped {
                0
            } else {
                s.pid
            };
            println!(
                "{}\t{pid}\t{}\t{}\t{}\troot",
                s.id,
                s.status,
                s.bundle.display(),
                s.created
            );
        }
    }
    Ok(())
}

/// runc's `features` document: what a caller may ask of this runtime.
fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.1.0",
        "hooks": [],
        "mountOptions": ["bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec",
            "strictatime", "relatime", "noatime", "sync", "private", "rprivate",
            "slave", "rslave", "shared", "rshared"],
        "linux": {
            "namespaces": ["mount", "pid", "network", "uts", "ipc"],
            "capabilities": kiln_runtime::known_capabilities(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {"enabled": true},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        },
        "annotations": {"io.kiln.init": "true: PID 1 reaps and forwards signals (kiln run --init)"}
    })
}
