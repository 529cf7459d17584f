//! The supervisor each container gets — the `kiln run` process in the foreground, or a
//! `kiln container-supervise ID` of its own session — and the commands that start one:
//! `run -d`, `start`, `restart` (through `spawn_supervisor`), `system restore`.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use kiln_image::store::Store;
use kiln_runtime::containers::attach::Frame;
use kiln_runtime::containers::{Config, Container, Containers, MountType, Status, Stream};
use kiln_runtime::volumes::Volumes;
use kiln_runtime::{ProcessSpec, Rootfs, Snapshotter};

use super::run::KILN_FAILED;

/// The hidden `kiln container-supervise [--attached] ID` a container runs under.
#[derive(clap::Args)]
pub struct SuperviseArgs {
    /// A connected socket to attach from the start (`kiln run`, `start -a`) is passed on
    /// descriptor 3.
    #[arg(long)]
    attached: bool,
    id: String,
}

/// Starts `kiln container-supervise ID` in a session of its own and waits until the
/// container runs; None, or docker's exit code and message when it could not start (a
/// `--rm` container is then removed).
pub(crate) fn spawn_supervisor(
    containers: &Containers,
    container: &mut Container,
) -> anyhow::Result<Option<(u8, String)>> {
    prepare_start(container)?;
    launch(containers, container, None).context("starting the container's supervisor")?;
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

/// From `created`, so that a wait for the start sees this one and not an earlier one.
/// The container's previous supervisor (if it is still finishing: it says `exited`
/// before it releases the container's network) is waited for first: its release
/// would otherwise take away the namespace and endpoints the new one makes at the same
/// place (a `restart` right after a stop failed so, one run in many).
fn prepare_start(container: &mut Container) -> anyhow::Result<()> {
    let previous = container.state.supervisor;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while previous != std::process::id()
        && kiln_runtime::containers::alive(previous)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    container.state.status = Status::Created;
    container.state.error.clear();
    container.save_state()?;
    let _ = std::fs::remove_file(container.stop_marker());
    Ok(())
}

/// Starts the container's supervisor with a client attached from the first byte, and
/// is that client until the container's command ends (its exit code is ours) or the
/// detach keys are typed.
pub(crate) fn start_attached(
    containers: &Containers,
    container: &mut Container,
    options: &super::attach::Options,
) -> anyhow::Result<ExitCode> {
    prepare_start(container)?;
    let (ours, theirs) = UnixStream::pair()?;
    launch(containers, container, Some((&ours, &theirs)))
        .context("starting the container's supervisor")?;
    drop(theirs);
    super::attach::attach(ours, options)
}

/// Starts `kiln ARGS` in a session of its own, without our streams (but `pass`, as its
/// descriptor 3): it outlives this process, apart from its terminal and its process
/// group.
pub(crate) fn spawn_detached(args: &[&str], pass: Option<&UnixStream>) -> anyhow::Result<()> {
    let mut cmd =
        std::process::Command::new(std::env::current_exe().context("finding the kiln binary")?);
    cmd.args(args);
    kiln_runtime::containers::detach::spawn(&mut cmd, pass.map(AsFd::as_fd))
        .with_context(|| format!("starting kiln {}", args.join(" ")))?;
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
    /// With -a: pass standard input on (a container made with -i).
    #[arg(short, long)]
    interactive: bool,
    /// With -a: the keys that detach (docker's format).
    #[arg(long, default_value = "ctrl-p,ctrl-q")]
    detach_keys: String,
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
        let mut container = containers.find(name)?;
        if container.state.status == Status::Running {
            bail!("container {name} is running already");
        }
        let options = super::attach::Options {
            stdin: args.interactive && container.config.open_stdin,
            stdin_once: true,
            tty: container.config.tty,
            detach_keys: super::attach::parse_detach_keys(&args.detach_keys)?,
            sig_proxy: true,
        };
        return start_attached(&containers, &mut container, &options);
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
    let root = Store::default_root();
    let containers = Containers::open(&root)?;
    // What dead supervisors left on the networks goes first: their ports and addresses
    // are free again for the containers started next.
    kiln_runtime::networks::Networks::open(&root)?.release_orphans()?;
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
    let containers = Containers::open(&Store::default_root())?;
    let container = containers.find(&args.id)?;
    let client = args
        .attached
        .then(kiln_runtime::containers::detach::passed)
        .transpose()
        .context("take the attached client's socket")?;
    Ok(ExitCode::from(run_supervisor(
        &containers,
        container,
        client,
    )))
}

/// A supervisor's whole life: the container run (and run again as its policy says) with
/// its streams served, `client` attached from the first byte. Its exit code; a failure
/// of its own is said where `kiln run -d` waits for it (the state) and to the client.
fn run_supervisor(containers: &Containers, container: Container, client: Option<UnixStream>) -> u8 {
    let mut record = container.clone();
    let attached = client.is_some();
    let mut hub = None;
    let result = forward_signals().and_then(|pid| {
        let h = hub.insert(super::streams::Hub::new(&container, pid)?);
        if let Some(mut client) = client {
            // With -t its first frame is its size: the terminal has it from the start.
            if container.config.tty {
                if let Ok(Some(Frame::Resize { rows, cols })) = Frame::read_from(&mut client) {
                    h.resize(rows, cols);
                }
            }
            h.add(client);
        }
        h.listen(&container)?;
        // Wired once, for every restart; released when the supervisor is done.
        let (network, wired) = super::network::wire(&container)?;
        let served = wired
            .as_ref()
            .map(|w| serve_network(&container, w))
            .transpose();
        let result =
            served.and_then(|_| supervise(containers, container.clone(), h, attached, &network));
        drop(wired);
        let released = super::network::release(&container);
        result.and_then(|code| released.map(|()| code))
    });
    let _ = record.with_attach_socket(|p| std::fs::remove_file(p));
    match result {
        Ok(code) => code,
        Err(e) => {
            let message = crate::message(&e);
            record.state.status = Status::Exited;
            record.state.exit_code = KILN_FAILED as i32;
            record.state.error = message.clone();
            record.state.finished_at = now();
            let _ = record.save_state();
            if let Some(h) = hub {
                h.exit(KILN_FAILED as i32, &message);
            }
            KILN_FAILED
        }
    }
}

/// What a wired container needs before it starts: its `/etc` files with its address,
/// and on a user-defined network the answerer for its neighbours' names.
fn serve_network(
    container: &Container,
    wired: &kiln_runtime::networks::Wired,
) -> anyhow::Result<()> {
    let endpoints = super::network::endpoints(container);
    super::etc::write(container, &endpoints)?;
    if endpoints.iter().any(|(n, _)| n.resolves_names()) {
        kiln_runtime::networks::dns::serve(
            &Store::default_root(),
            &container.config.id,
            &wired.netns,
            super::etc::EMBEDDED_DNS,
            super::etc::upstream_servers(&container.config.dns),
        )?;
    }
    Ok(())
}

/// Starts the container's supervisor in a session of its own, without our streams
/// (`attach`'s peer, `client`, is handed over): forked from this process when it runs no
/// other thread — no second start of the kiln binary, a few milliseconds less per `kiln
/// run` — else as `kiln container-supervise ID` (a threaded process may fork only to
/// exec).
fn launch(
    containers: &Containers,
    container: &Container,
    client: Option<(&UnixStream, &UnixStream)>,
) -> anyhow::Result<()> {
    let forked = kiln_runtime::containers::detach::fork(
        c"kiln-supervise",
        client.map(|(ours, _)| ours.as_fd()),
        KILN_FAILED,
        || {
            let theirs = client.map(|(_, theirs)| theirs.try_clone());
            match theirs.transpose() {
                Ok(theirs) => run_supervisor(containers, container.clone(), theirs),
                Err(_) => KILN_FAILED,
            }
        },
    )
    .context("forking the container's supervisor")?;
    if forked {
        return Ok(());
    }
    let id = container.config.id.as_str();
    match client {
        Some((_, theirs)) => {
            spawn_detached(&["container-supervise", "--attached", id], Some(theirs))
        }
        None => spawn_detached(&["container-supervise", id], None),
    }
}

/// The container's spec and root: its mounts (volumes filled on first use), its process,
/// its layers under its own upper directory.
fn container_spec(
    container: &Container,
    network: &kiln_runtime::Network,
) -> anyhow::Result<(kiln_runtime::Spec, Rootfs)> {
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
                // -v makes a missing host directory, as docker does (a file, as a
                // Compose secret is, is bound as it is).
                if !Path::new(&m.source).exists() {
                    std::fs::create_dir_all(&m.source)
                        .with_context(|| format!("creating {} for -v", m.source))?;
                }
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
    let mut spec = kiln_runtime::default_spec(&ProcessSpec {
        args: c.args.clone(),
        env: c.env.clone(),
        cwd: c.working_dir.clone().into(),
        uid: c.uid,
        gid: c.gid,
        groups: c.groups.clone(),
        hostname: c.hostname.clone(),
        network: network.clone(),
        privileged: c.security.privileged,
        mounts,
        rlimits: c.security.ulimits.clone(),
        shm_size: None,
        cap_add: c.security.cap_add.clone(),
        cap_drop: c.security.cap_drop.clone(),
        readonly_root: c.security.read_only,
        no_new_privileges: c.security.no_new_privileges,
        seccomp: super::run::seccomp_profile(&c.security)?,
        userns: c.userns.map(|r| (r.host, r.size)),
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
    // In a network namespace of its own, any user may bind a low port (docker sets this
    // since 20.10: an httpd running as nobody listens on 80). A wired namespace has it
    // from kiln already; `none`'s is made by the sandbox.
    if *network == kiln_runtime::Network::Loopback {
        if let Some(linux) = spec.linux_mut() {
            let mut sysctl = linux.sysctl().clone().unwrap_or_default();
            sysctl.insert(
                "net.ipv4.ip_unprivileged_port_start".to_string(),
                "0".to_string(),
            );
            linux.set_sysctl(Some(sysctl));
        }
    }
    let rootfs = Rootfs {
        lower: c.lowers.clone(),
        upper: container.upper(),
        work: container.work(),
        merged: container.rootfs(),
        snapshotter: Snapshotter::Overlay,
    };
    Ok((spec, rootfs))
}

/// Docker's words for a command that is not there: a path is looked at, a bare name
/// searched for in `$PATH`.
pub(crate) fn not_found(program: &str) -> String {
    if program.contains('/') {
        format!("exec: {program:?}: stat {program}: no such file or directory")
    } else {
        format!("exec: {program:?}: executable file not found in $PATH")
    }
}

/// Why a container's command could not start: docker's exit code and message.
fn start_failure(c: &Config, e: &kiln_runtime::Error) -> (u8, String) {
    match e {
        kiln_runtime::Error::Spawn { source, .. }
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            (127, not_found(&c.args[0]))
        }
        kiln_runtime::Error::Spawn { source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            (126, format!("exec: {:?}: permission denied", c.args[0]))
        }
        other => (KILN_FAILED, other.to_string()),
    }
}

/// Runs the container's command once, its streams through `hub`, state `running`
/// while it runs. Its exit code, or docker's code and message when it could not start.
fn run_once(
    container: &mut Container,
    hub: &Arc<super::streams::Hub>,
    pid: &Mutex<Option<u32>>,
    network: &kiln_runtime::Network,
) -> anyhow::Result<Result<i32, (u8, String)>> {
    let (mut spec, rootfs) = container_spec(container, network)?;
    if container.config.init {
        let mut annotations = spec.annotations().clone().unwrap_or_default();
        annotations.insert(
            kiln_runtime::INIT_ANNOTATION.to_string(),
            "true".to_string(),
        );
        spec.set_annotations(Some(annotations));
    }
    // -t: a terminal made in the container for all three streams; else pipes (standard
    // input one with -i, kept open for clients that attach later).
    let mut console = None;
    let mut readers = Vec::new();
    let mut input = None;
    let spawned = if container.config.tty {
        let mut process = spec.process().clone().unwrap_or_default();
        super::tty::with_terminal(&mut process, hub.size());
        spec.set_process(Some(process));
        let (ours, theirs) = super::tty::console()?;
        console = Some(ours);
        kiln_runtime::spawn_terminal(&spec, &rootfs, &theirs)
    } else {
        let (out_r, out_w) = std::io::pipe()?;
        let (err_r, err_w) = std::io::pipe()?;
        readers.push((
            std::fs::File::from(std::os::fd::OwnedFd::from(out_r)),
            Stream::Stdout,
        ));
        readers.push((
            std::fs::File::from(std::os::fd::OwnedFd::from(err_r)),
            Stream::Stderr,
        ));
        let stdin = if container.config.open_stdin {
            let (in_r, in_w) = std::io::pipe()?;
            input = Some(std::fs::File::from(std::os::fd::OwnedFd::from(in_w)));
            Stdio::from(in_r)
        } else {
            Stdio::null()
        };
        kiln_runtime::spawn(&spec, &rootfs, stdin, out_w.into(), err_w.into())
    };
    let sandboxed = match spawned {
        Ok(s) => s,
        Err(e) => return Ok(Err(start_failure(&container.config, &e))),
    };
    let mut terminal = None;
    if let Some(ours) = console {
        let master = std::fs::File::from(super::tty::receive(&ours)?);
        input = Some(master.try_clone()?);
        terminal = Some(master.try_clone()?);
        readers.push((master, Stream::Stdout));
    }
    hub.connect(input, terminal);
    let middle = sandboxed.child.id();
    container.state.status = Status::Running;
    container.state.supervisor = std::process::id();
    // 0 when it has ended already: nothing to signal (never the middle process, which a
    // signal meant for the container would kill instead).
    container.state.pid = init_pid(middle).unwrap_or(0);
    container.state.started_at = now();
    container.state.error.clear();
    container.state.mount_stubs = sandboxed
        .mount_stubs()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    container.save_state()?;
    pid.lock()
        .unwrap_or_else(|e| e.into_inner())
        .replace(container.state.pid);
    let copiers: Vec<_> = readers
        .into_iter()
        .map(|(reader, stream)| hub.copy(reader, stream))
        .collect();
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
    pid.lock().unwrap_or_else(|e| e.into_inner()).take();
    container.state.oom_killed = exit.oom_killed;
    container.state.mount_stubs.clear();
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
/// state is kept in its directory, and each run's end told to the attached clients.
/// Returns its last exit code (or docker's 126/127 when its command cannot run).
/// (`attached`: started by a client, which then is the only one to hear of a failure to
/// start — a `--rm` container is removed here; else the starter reads it in the state.)
fn supervise(
    containers: &Containers,
    mut container: Container,
    hub: &Arc<super::streams::Hub>,
    attached: bool,
    network: &kiln_runtime::Network,
) -> anyhow::Result<u8> {
    let pid = hub.pid();
    container.state.restart_count = 0;
    let _ = std::fs::remove_file(container.stop_marker());
    let mut delay = std::time::Duration::from_millis(100);
    let code = loop {
        let started = std::time::Instant::now();
        let code = match run_once(&mut container, hub, &pid, network)? {
            Ok(code) => code,
            Err((code, message)) => {
                container.state.status = Status::Exited;
                container.state.exit_code = code as i32;
                container.state.error = message.clone();
                container.state.finished_at = now();
                container.save_state()?;
                if attached && container.config.auto_remove {
                    containers.remove(&container)?;
                }
                hub.exit(code as i32, &message);
                return Ok(code);
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
        hub.exit(code, "");
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
    // Removed before the client hears: after `kiln run --rm`, nothing is left.
    if container.config.auto_remove {
        containers.remove(&container)?;
    }
    hub.exit(code, "");
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

/// The signals docker's sig-proxy passes on to a container.
pub(crate) const PROXIED_SIGNALS: [nix::sys::signal::Signal; 6] = [
    nix::sys::signal::Signal::SIGINT,
    nix::sys::signal::Signal::SIGTERM,
    nix::sys::signal::Signal::SIGHUP,
    nix::sys::signal::Signal::SIGQUIT,
    nix::sys::signal::Signal::SIGUSR1,
    nix::sys::signal::Signal::SIGUSR2,
];

/// The [`PROXIED_SIGNALS`] sent to the supervisor go to the container's PID 1; the slot
/// holds its PID while it runs.
fn forward_signals() -> anyhow::Result<Arc<Mutex<Option<u32>>>> {
    let mut set = nix::sys::signal::SigSet::empty();
    for s in PROXIED_SIGNALS {
        set.add(s);
    }
    set.thread_block()
        .context("blocking the signals to forward")?;
    let slot: Arc<Mutex<Option<u32>>> = Arc::new(Mutex::new(None));
    let target = slot.clone();
    std::thread::spawn(move || {
        while let Ok(sig) = set.wait() {
            if let Some(pid) = *target.lock().unwrap_or_else(|e| e.into_inner()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
            }
        }
    });
    Ok(slot)
}
