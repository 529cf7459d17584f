//! The supervisor each container gets — the `kiln run` process in the foreground, or a
//! `kiln container-supervise ID` of its own session — and the commands that start one:
//! `run -d`, `start`, `restart` (through `spawn_supervisor`), `system restore`.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use kiln_image::store::Store;
use kiln_runtime::containers::{
    Config, Container, Containers, LogWriter, MountType, Status, Stream,
};
use kiln_runtime::volumes::Volumes;
use kiln_runtime::{Network, ProcessSpec, Rootfs, Snapshotter};

use super::run::KILN_FAILED;

/// The hidden `kiln container-supervise ID` a detached container runs under.
#[derive(clap::Args)]
pub struct SuperviseArgs {
    id: String,
}

/// Starts `kiln container-supervise ID` in a session of its own and waits until the
/// container runs; None, or docker's exit code and message when it could not start (a
/// `--rm` container is then removed).
pub(crate) fn spawn_supervisor(
    containers: &Containers,
    container: &mut Container,
) -> anyhow::Result<Option<(u8, String)>> {
    // From `created`, so the wait below sees this start and not an earlier one.
    container.state.status = Status::Created;
    container.state.error.clear();
    container.save_state()?;
    let _ = std::fs::remove_file(container.stop_marker());
    spawn_detached(&["container-supervise", &container.config.id])
        .context("starting the container's supervisor")?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        // Gone already: a --rm container that ran and was removed.
        if container.reload().is_err() {
            return Ok(None);
        }
        match container.state.status {
            Status::Created if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(2))
            }
            Status::Created => bail!("the container did not start within 30 s"),
            _ => break,
        }
    }
    if container.state.error.is_empty() {
        return Ok(None);
    }
    if container.config.auto_remove {
        let _ = containers.remove(container);
    }
    Ok(Some((
        container.state.exit_code as u8,
        container.state.error.clone(),
    )))
}

/// Starts `kiln ARGS` in a session of its own, without our streams: it outlives this
/// process, apart from its terminal and its process group.
pub(crate) fn spawn_detached(args: &[&str]) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let mut cmd =
        std::process::Command::new(std::env::current_exe().context("finding the kiln binary")?);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid(2) in the child before exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    cmd.spawn()?;
    Ok(())
}

/// `run -d`: the container started, its ID printed as docker prints it.
pub(crate) fn start_detached(
    containers: &Containers,
    mut container: Container,
) -> anyhow::Result<ExitCode> {
    match spawn_supervisor(containers, &mut container)? {
        None => {
            println!("{}", container.config.id);
            Ok(ExitCode::SUCCESS)
        }
        Some((code, message)) => {
            eprintln!("kiln: {message}");
            Ok(ExitCode::from(code))
        }
    }
}

#[derive(clap::Args)]
pub struct StartArgs {
    /// Attach to its output and wait for it, with its exit code as ours (one container).
    #[arg(short, long)]
    attach: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `kiln start [-a] CONTAINER...`: created or stopped containers run again (their
/// layer kept).
pub fn start(args: StartArgs) -> anyhow::Result<ExitCode> {
    let containers = Containers::open(&Store::default_root())?;
    if args.attach {
        let [name] = args.containers.as_slice() else {
            bail!("start -a takes one container");
        };
        let container = containers.find(name)?;
        if container.state.status == Status::Running {
            bail!("container {name} is running already");
        }
        return Ok(ExitCode::from(supervise(&containers, container, true)?));
    }
    super::container::for_each(&args.containers, |store, c| {
        if matches!(c.state.status, Status::Running | Status::Restarting) {
            return Ok(());
        }
        match spawn_supervisor(store, c)? {
            None => Ok(()),
            Some((_, message)) => bail!("{message}"),
        }
    })
}

/// `kiln system restore`: after a reboot (or anything that killed the supervisors),
/// starts again the containers whose restart policy says so — `always` ones, and
/// `unless-stopped` ones a user did not stop. Running ones are left alone, so running it
/// twice starts nothing twice.
pub fn restore() -> anyhow::Result<ExitCode> {
    let containers = Containers::open(&Store::default_root())?;
    for mut c in containers.list()? {
        let wanted = match c.config.restart.as_str() {
            "always" => true,
            "unless-stopped" => !c.stop_marker().exists(),
            _ => false,
        };
        if !wanted || matches!(c.state.status, Status::Running | Status::Restarting) {
            continue;
        }
        match spawn_supervisor(&containers, &mut c)? {
            None => println!("{}", c.config.name),
            Some((_, message)) => eprintln!("kiln: {}: {message}", c.config.name),
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn supervise_command(args: SuperviseArgs) -> anyhow::Result<ExitCode> {
    let root = Store::default_root();
    let containers = Containers::open(&root)?;
    let container = containers.find(&args.id)?;
    let mut record = container.clone();
    match supervise(&containers, container, false) {
        Ok(code) => Ok(ExitCode::from(code)),
        // Said where `kiln run -d` waits for it: the state.
        Err(e) => {
            record.state.status = Status::Exited;
            record.state.exit_code = KILN_FAILED as i32;
            record.state.error = crate::message(&e);
            record.state.finished_at = now();
            let _ = record.save_state();
            Ok(ExitCode::from(KILN_FAILED))
        }
    }
}

/// The container's spec and root: its mounts (volumes filled on first use), its process,
/// its layers under its own upper directory.
fn container_spec(container: &Container) -> anyhow::Result<(kiln_runtime::Spec, Rootfs)> {
    let c = &container.config;
    let mut mounts: Vec<_> = ["hostname", "hosts", "resolv.conf"]
        .iter()
        .map(|f| {
            kiln_runtime::bind_mount(&Path::new("/etc").join(f), &container.dir.join(f), false)
        })
        .collect();
    let root = Store::default_root();
    let volumes = Volumes::open(&root)?;
    for m in &c.mounts {
        let destination = Path::new(&m.destination);
        mounts.push(match m.kind {
            MountType::Bind => {
                // -v makes a missing host directory, as docker does.
                std::fs::create_dir_all(&m.source)
                    .with_context(|| format!("creating {} for -v", m.source))?;
                kiln_runtime::bind_mount(destination, Path::new(&m.source), m.readonly)
            }
            MountType::Volume => {
                let volume = volumes.get(&m.source)?;
                let empty = std::fs::read_dir(&volume.mountpoint)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false);
                if empty {
                    kiln_runtime::volumes::fill_volume(
                        &c.lowers,
                        destination,
                        &volume.mountpoint,
                        &root.join("tmp"),
                    )?;
                }
                kiln_runtime::bind_mount(destination, &volume.mountpoint, m.readonly)
            }
            MountType::Tmpfs => kiln_runtime::tmpfs_mount(destination, None),
        });
    }
    let spec = kiln_runtime::default_spec(&ProcessSpec {
        args: c.args.clone(),
        env: c.env.clone(),
        cwd: c.working_dir.clone().into(),
        uid: c.uid,
        gid: c.gid,
        groups: c.groups.clone(),
        hostname: c.hostname.clone(),
        network: if c.network == "host" {
            Network::Host
        } else {
            Network::Loopback
        },
        privileged: c.security.privileged,
        mounts,
        rlimits: c.security.ulimits.clone(),
        shm_size: None,
        cap_add: c.security.cap_add.clone(),
        cap_drop: c.security.cap_drop.clone(),
        readonly_root: c.security.read_only,
        no_new_privileges: c.security.no_new_privileges,
        cgroup: Some((
            container.cgroup_path(),
            kiln_runtime::cgroups::resources(
                c.limits.memory,
                c.limits.memory_swap,
                c.limits.cpus,
                c.limits.cpu_shares,
                c.limits.pids,
            ),
        )),
    })?;
    let rootfs = Rootfs {
        lower: c.lowers.clone(),
        upper: container.upper(),
        work: container.work(),
        merged: container.rootfs(),
        snapshotter: Snapshotter::Overlay,
    };
    Ok((spec, rootfs))
}

/// Why a container's command could not start: docker's exit code and message.
fn start_failure(c: &Config, e: &kiln_runtime::Error) -> (u8, String) {
    match e {
        kiln_runtime::Error::Spawn { source, .. }
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            (
                127,
                format!("exec: {:?}: executable file not found in $PATH", c.args[0]),
            )
        }
        kiln_runtime::Error::Spawn { source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            (126, format!("exec: {:?}: permission denied", c.args[0]))
        }
        other => (KILN_FAILED, other.to_string()),
    }
}

/// Runs the container's command once: output to the log (and, with `echo`, to this
/// process's streams), state `running` while it runs. Its exit code, or docker's code
/// and message when it could not start.
fn run_once(
    container: &mut Container,
    signals: &Mutex<Option<u32>>,
    echo: bool,
) -> anyhow::Result<Result<i32, (u8, String)>> {
    let (mut spec, rootfs) = container_spec(container)?;
    if container.config.init {
        let mut annotations = spec.annotations().clone().unwrap_or_default();
        annotations.insert(
            kiln_runtime::INIT_ANNOTATION.to_string(),
            "true".to_string(),
        );
        spec.set_annotations(Some(annotations));
    }
    let log = Arc::new(Mutex::new(LogWriter::open(
        &container.log_path(),
        container.config.log_max_size,
        container.config.log_max_file,
    )?));
    // -t: a terminal made in the container for all three streams; else pipes, read line
    // by line.
    let mut console = None;
    let mut pipes = None;
    let spawned = if container.config.tty {
        let mut process = spec.process().clone().unwrap_or_default();
        process.set_terminal(Some(true));
        spec.set_process(Some(process));
        let (ours, theirs) = super::tty::console()?;
        console = Some(ours);
        kiln_runtime::spawn_terminal(&spec, &rootfs, &theirs)
    } else {
        let (out_r, out_w) = std::io::pipe()?;
        let (err_r, err_w) = std::io::pipe()?;
        pipes = Some((out_r, err_r));
        let stdin = if echo && container.config.open_stdin {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        kiln_runtime::spawn(&spec, &rootfs, stdin, out_w.into(), err_w.into())
    };
    let sandboxed = match spawned {
        Ok(s) => s,
        Err(e) => return Ok(Err(start_failure(&container.config, &e))),
    };
    let terminal = console.map(|ours| super::tty::receive(&ours)).transpose()?;
    let middle = sandboxed.child.id();
    container.state.status = Status::Running;
    container.state.supervisor = std::process::id();
    // 0 when it has ended already: nothing to signal (never the middle process, which a
    // signal meant for the container would kill instead).
    container.state.pid = init_pid(middle).unwrap_or(0);
    container.state.started_at = now();
    container.state.error.clear();
    container.save_state()?;
    signals
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .replace(container.state.pid);
    let pump = |reader: std::io::PipeReader, stream: Stream| {
        let log = log.clone();
        std::thread::spawn(move || {
            let mut reader = std::io::BufReader::new(reader);
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let _ = log
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .write(stream, &line);
                        if echo {
                            let _ = match stream {
                                Stream::Stdout => std::io::stdout().write_all(line.as_bytes()),
                                Stream::Stderr => std::io::stderr().write_all(line.as_bytes()),
                            };
                        }
                    }
                }
            }
        })
    };
    let _raw = (terminal.is_some() && echo).then(super::tty::RawMode::enter);
    let copiers: Vec<std::thread::JoinHandle<()>> = match (terminal, pipes) {
        (Some(master), _) => {
            super::tty::MASTER.store(
                super::tty::raw(&master),
                std::sync::atomic::Ordering::SeqCst,
            );
            super::tty::follow_window_size();
            if echo && container.config.open_stdin {
                super::tty::copy_in(std::fs::File::from(master.try_clone()?));
            }
            vec![super::tty::copy_out(
                std::fs::File::from(master),
                echo,
                Some(log.clone()),
            )]
        }
        (None, Some((out_r, err_r))) => {
            vec![pump(out_r, Stream::Stdout), pump(err_r, Stream::Stderr)]
        }
        (None, None) => Vec::new(),
    };
    let stop_health = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let health = container.config.healthcheck.clone().map(|check| {
        let (c, stop) = (container.clone(), stop_health.clone());
        std::thread::spawn(move || super::health::monitor(c, check, stop))
    });
    let exit = sandboxed.wait_exit()?;
    stop_health.store(true, std::sync::atomic::Ordering::SeqCst);
    if let Some(h) = health {
        let _ = h.join();
    }
    for c in copiers {
        let _ = c.join();
    }
    super::tty::MASTER.store(-1, std::sync::atomic::Ordering::SeqCst);
    signals.lock().unwrap_or_else(|e| e.into_inner()).take();
    container.state.oom_killed = exit.oom_killed;
    Ok(Ok(exit.status.code().unwrap_or(255)))
}

/// Whether the restart policy restarts a container that exited with `code` after
/// `count` restarts (`stopped`: a user stopped it; docker then leaves it stopped).
fn restarts(policy: &str, code: i32, count: u32, stopped: bool) -> bool {
    if stopped {
        return false;
    }
    match policy.split_once(':').unwrap_or((policy, "")) {
        ("always" | "unless-stopped", _) => true,
        ("on-failure", max) => code != 0 && max.parse::<u32>().map_or(true, |m| count < m),
        _ => false,
    }
}

/// Runs the container and waits for it, restarting it as its policy says (docker's
/// back-off: 100 ms doubling to a minute, back to 100 ms after 10 s of running); its
/// state is kept in its directory. Returns its last exit code (or docker's 126/127 when
/// its command cannot run).
pub(crate) fn supervise(
    containers: &Containers,
    mut container: Container,
    echo: bool,
) -> anyhow::Result<u8> {
    let signals = forward_signals()?;
    container.state.restart_count = 0;
    let _ = std::fs::remove_file(container.stop_marker());
    let mut delay = std::time::Duration::from_millis(100);
    let code = loop {
        let started = std::time::Instant::now();
        let code = match run_once(&mut container, &signals, echo)? {
            Ok(code) => code,
            Err((code, message)) => {
                container.state.status = Status::Exited;
                container.state.exit_code = code as i32;
                container.state.error = message.clone();
                container.state.finished_at = now();
                container.save_state()?;
                if !echo {
                    // `run -d` reads why in the state, then removes a --rm container.
                    return Ok(code);
                }
                eprintln!("kiln: {message}");
                break code as i32;
            }
        };
        container.state.exit_code = code;
        container.state.pid = 0;
        container.state.finished_at = now();
        let stopped = container.stop_marker().exists();
        if !restarts(
            &container.config.restart,
            code,
            container.state.restart_count,
            stopped,
        ) {
            container.state.status = Status::Exited;
            container.save_state()?;
            break code;
        }
        if started.elapsed() >= std::time::Duration::from_secs(10) {
            delay = std::time::Duration::from_millis(100);
        }
        container.state.status = Status::Restarting;
        container.state.restart_count += 1;
        container.save_state()?;
        std::thread::sleep(delay);
        delay = (delay * 2).min(std::time::Duration::from_secs(60));
        if container.stop_marker().exists() {
            container.state.status = Status::Exited;
            container.save_state()?;
            break code;
        }
    };
    if container.config.auto_remove {
        containers.remove(&container)?;
    }
    Ok(code.clamp(0, 255) as u8)
}

fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

/// The container's PID 1: the one child of the sandbox's middle process (it forks it
/// at once; a few milliseconds at most).
fn init_pid(middle: u32) -> Option<u32> {
    for _ in 0..500 {
        if let Ok(children) =
            std::fs::read_to_string(format!("/proc/{middle}/task/{middle}/children"))
        {
            if let Some(pid) = children
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
            {
                return Some(pid);
            }
        }
        // A command that ends at once (`true`) is reaped before we look: the middle
        // process is then gone, and there is no PID 1 to wait for.
        if !kiln_runtime::containers::alive(middle) {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    None
}

/// SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to the supervisor go to
/// the container's PID 1 (docker's sig-proxy); the slot holds its PID while it runs.
fn forward_signals() -> anyhow::Result<Arc<Mutex<Option<u32>>>> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        set.add(s);
    }
    set.thread_block()
        .context("blocking the signals to forward")?;
    let slot: Arc<Mutex<Option<u32>>> = Arc::new(Mutex::new(None));
    let target = slot.clone();
    std::thread::spawn(move || {
        while let Ok(sig) = set.wait() {
            // The terminal's size follows the caller's; the kernel tells the container.
            if sig == Signal::SIGWINCH {
                super::tty::follow_window_size();
                continue;
            }
            if let Some(pid) = *target.lock().unwrap_or_else(|e| e.into_inner()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
            }
        }
    });
    Ok(slot)
}
