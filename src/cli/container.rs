//! `kiln ps`, `logs`, `stop`, `kill`, `rm`, `wait` and `container inspect`: docker's
//! names, flags, columns and exit codes, over the containers' directories.

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use kiln_image::store::Store;
use kiln_runtime::containers::{self, Container, Containers, Status, Stream};
use nix::sys::signal::Signal;
use serde_json::json;

pub(crate) fn containers() -> anyhow::Result<Containers> {
    Ok(Containers::open(&Store::default_root())?)
}

#[derive(clap::Args)]
pub struct LogsArgs {
    /// Follow the log until the container stops.
    #[arg(short, long)]
    follow: bool,
    /// Only the last N lines (`all`: every line).
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Each line with its time (RFC 3339 with nanoseconds).
    #[arg(short, long)]
    timestamps: bool,
    /// Only lines from this time on: RFC 3339, Unix seconds, or a duration ago (`10m`).
    #[arg(long)]
    since: Option<String>,
    /// Only lines before this time (same forms).
    #[arg(long)]
    until: Option<String>,
    container: String,
}

/// docker's time forms for `--since`/`--until`.
fn log_time(flag: &str, value: &str) -> anyhow::Result<SystemTime> {
    if let Ok(t) = humantime::parse_rfc3339_weak(value) {
        return Ok(t);
    }
    if let Ok(secs) = value.parse::<f64>() {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    let ago = humantime::parse_duration(value).with_context(|| {
        format!("{flag} {value}: give an RFC 3339 time, Unix seconds or a duration (10m)")
    })?;
    Ok(SystemTime::now() - ago)
}

pub fn logs(args: LogsArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let store = containers()?;
    let mut c = store.find(&args.container)?;
    let path = c.log_path();
    let mut lines = Vec::new();
    for older in containers::rotated_logs(&path) {
        lines.extend(containers::read_log(&older, 0)?.0);
    }
    let (current, mut offset) = containers::read_log(&path, 0)?;
    lines.extend(current);
    let since = args
        .since
        .as_deref()
        .map(|v| log_time("--since", v))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|v| log_time("--until", v))
        .transpose()?;
    let in_window = |l: &containers::LogLine| {
        let t = l.time();
        since.is_none_or(|s| t.is_some_and(|t| t >= s))
            && until.is_none_or(|u| t.is_some_and(|t| t < u))
    };
    lines.retain(in_window);
    if args.tail != "all" {
        let n: usize = args
            .tail
            .parse()
            .with_context(|| format!("--tail {}: give a number or all", args.tail))?;
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    let print = |lines: &[containers::LogLine]| -> std::io::Result<()> {
        let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
        for l in lines {
            let text = if args.timestamps {
                format!("{} {}", l.time, l.log)
            } else {
                l.log.clone()
            };
            match l.stream {
                Stream::Stdout => out.write_all(text.as_bytes())?,
                Stream::Stderr => err.write_all(text.as_bytes())?,
            }
        }
        out.flush()
    };
    print(&lines)?;
    if args.follow {
        loop {
            let running = c.reload().is_ok() && c.state.status != Status::Exited;
            let (mut more, next) = containers::read_log(&path, offset)?;
            more.retain(in_window);
            print(&more)?;
            offset = next;
            if !running {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits up to `timeout` for `c` to exit; true when it did.
fn wait_exit(c: &mut Container, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if c.reload().is_err() {
            return true;
        }
        c.settle();
        if c.state.status == Status::Exited || c.state.status == Status::Created {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Marks the container stopped by its user (its restart policy leaves it so), then sends
/// `sig` to its PID 1.
fn signal(c: &mut Container, sig: Signal) -> anyhow::Result<()> {
    std::fs::write(c.stop_marker(), b"")
        .with_context(|| format!("marking {} stopped", c.config.name))?;
    // A frozen process takes no signal: thawed first, as docker's stop and kill do.
    super::pause::thaw(c)?;
    if c.state.pid == 0 {
        return Ok(());
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.state.pid as i32), sig)
        .with_context(|| format!("sending {sig} to {}", c.config.name))
}

/// The container's stop signal (SIGTERM unless `--stop-signal` said), then SIGKILL after
/// `timeout` (`-t`, else the container's `--stop-timeout`, else 10 s).
pub(crate) fn stop_one(c: &mut Container, timeout: Option<u64>) -> anyhow::Result<()> {
    if !matches!(c.state.status, Status::Running | Status::Restarting) {
        return Ok(());
    }
    let timeout = Duration::from_secs(timeout.or(c.config.security.stop_timeout).unwrap_or(10));
    let first = match &c.config.security.stop_signal {
        Some(s) => parse_signal(s)?,
        None => Signal::SIGTERM,
    };
    signal(c, first)?;
    if !wait_exit(c, timeout) {
        signal(c, Signal::SIGKILL)?;
        if !wait_exit(c, Duration::from_secs(10)) {
            bail!("{} did not stop after SIGKILL", c.config.name);
        }
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct StopArgs {
    /// Seconds to wait after SIGTERM before SIGKILL (default: the container's
    /// --stop-timeout, else 10).
    #[arg(short = 't', long = "time")]
    time: Option<u64>,
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Runs `each` on every named container, printing the name as docker does; an error on
/// one is said and the others go on; exit 1 if any failed.
pub(crate) fn for_each(
    names: &[String],
    mut each: impl FnMut(&Containers, &mut Container) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    let store = containers()?;
    let mut failed = false;
    for name in names {
        let result = store
            .find(name)
            .map_err(anyhow::Error::from)
            .and_then(|mut c| each(&store, &mut c));
        match result {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("Error response from daemon: {}", crate::message(&e));
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub fn stop(args: StopArgs) -> anyhow::Result<ExitCode> {
    for_each(&args.containers, |_, c| stop_one(c, args.time))
}

#[derive(clap::Args)]
pub struct KillArgs {
    /// The signal: a name (KILL, SIGTERM, ...) or a number.
    #[arg(short, long, default_value = "KILL")]
    signal: String,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub(crate) fn parse_signal(s: &str) -> anyhow::Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).with_context(|| format!("--signal {s}: no such signal"));
    }
    let name = s.to_ascii_uppercase();
    let name = if name.starts_with("SIG") {
        name
    } else {
        format!("SIG{name}")
    };
    name.parse::<Signal>()
        .with_context(|| format!("--signal {s}: no such signal"))
}

pub fn kill(args: KillArgs) -> anyhow::Result<ExitCode> {
    let sig = parse_signal(&args.signal)?;
    for_each(&args.containers, |_, c| {
        if c.state.status != Status::Running {
            bail!(
                "cannot kill container {}: container is not running",
                c.config.name
            );
        }
        signal(c, sig)
    })
}

#[derive(clap::Args)]
pub struct RmArgs {
    /// Kill a running container first.
    #[arg(short, long)]
    force: bool,
    /// Remove its anonymous volumes too.
    #[arg(short, long)]
    volumes: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn rm(args: RmArgs) -> anyhow::Result<ExitCode> {
    for_each(&args.containers, |store, c| {
        remove_one(store, c, args.force, args.volumes)
    })
}

/// Removes a container (`force`: killed first if it runs; `volumes`: its anonymous
/// volumes too).
pub(crate) fn remove_one(
    store: &Containers,
    c: &mut Container,
    force: bool,
    volumes: bool,
) -> anyhow::Result<()> {
    if matches!(c.state.status, Status::Running | Status::Restarting) {
        if !force {
            bail!(
                "cannot remove container \"/{}\": container is running: stop the container before removing or force remove (-f)",
                c.config.name
            );
        }
        signal(c, Signal::SIGKILL)?;
        wait_exit(c, Duration::from_secs(10));
    }
    store.remove(c)?;
    if volumes {
        let volumes = kiln_runtime::volumes::Volumes::open(&Store::default_root())?;
        for m in &c.config.mounts {
            if m.kind == kiln_runtime::containers::MountType::Volume
                && super::mounts::is_anonymous(&m.source)
                && super::volume::user_of(store, &m.source)?.is_none()
            {
                volumes.remove(&m.source)?;
            }
        }
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct WaitArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn wait(args: WaitArgs) -> anyhow::Result<ExitCode> {
    let store = containers()?;
    for name in &args.containers {
        let mut c = store.find(name)?;
        while !wait_exit(&mut c, Duration::from_secs(3600)) {}
        println!("{}", c.state.exit_code);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct InspectArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

/// docker's shape for what kiln knows of a container.
fn inspect_json(c: &Container) -> serde_json::Value {
    let s = &c.state;
    let zero = "0001-01-01T00:00:00Z";
    let or_zero = |t: &str| {
        if t.is_empty() {
            zero.to_string()
        } else {
            t.to_string()
        }
    };
    json!({
        "Id": c.config.id,
        "Created": c.config.created,
        "Path": c.config.args.first(),
        "Args": c.config.args.get(1..).unwrap_or_default(),
        "State": {
            "Status": if s.paused { "paused" } else { s.status.name() },
            "Running": s.status == Status::Running,
            "Paused": s.paused,
            "Restarting": s.status == Status::Restarting,
            "OOMKilled": s.oom_killed,
            "Dead": false,
            "Pid": s.pid,
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": or_zero(&s.started_at),
            "FinishedAt": or_zero(&s.finished_at),
            "Health": c.config.healthcheck.as_ref().and(super::health::read(&c.dir)),
        },
        "Image": c.config.image_id,
        "LogPath": c.log_path(),
        "Name": format!("/{}", c.config.name),
        "HostsPath": c.dir.join("hosts"),
        "HostnamePath": c.dir.join("hostname"),
        "ResolvConfPath": c.dir.join("resolv.conf"),
        "Driver": "overlay",
        "RestartCount": s.restart_count,
        "HostConfig": {
            "Memory": c.config.limits.memory.unwrap_or(0),
            "MemorySwap": c.config.limits.memory_swap.or(c.config.limits.memory.map(|m| m * 2)).unwrap_or(0),
            "NanoCpus": c.config.limits.cpus.map_or(0, |c| (c * 1e9) as i64),
            "CpuShares": c.config.limits.cpu_shares.unwrap_or(0),
            "PidsLimit": c.config.limits.pids,
            "RestartPolicy": {
                "Name": c.config.restart.split(':').next(),
                "MaximumRetryCount": c.config.restart.split_once(':').and_then(|(_, n)| n.parse::<u32>().ok()).unwrap_or(0),
            },
            "NetworkMode": c.config.network,
            "PortBindings": port_bindings(&c.config.ports),
            "PublishAllPorts": false,
            "ExtraHosts": c.config.extra_hosts.iter().map(|(h, ip)| format!("{h}:{ip}")).collect::<Vec<_>>(),
            "Dns": c.config.dns.servers,
            "DnsSearch": c.config.dns.search,
            "DnsOptions": c.config.dns.options,
            "AutoRemove": c.config.auto_remove,
            "LogConfig": {"Type": "json-file", "Config": {}},
        },
        "NetworkSettings": network_settings(c),
        "GraphDriver": {
            "Name": "overlay",
            "Data": {
                "LowerDir": c.config.lowers.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"),
                "UpperDir": c.upper(),
                "WorkDir": c.work(),
                "MergedDir": c.rootfs(),
            },
        },
        "Mounts": c.config.mounts.iter().map(|m| {
            let source = match m.kind {
                kiln_runtime::containers::MountType::Volume => kiln_runtime::volumes::Volumes::open(&Store::default_root())
                    .and_then(|v| v.get(&m.source))
                    .map(|v| v.mountpoint.display().to_string())
                    .unwrap_or_default(),
                _ => m.source.clone(),
            };
            json!({
                "Type": m.kind.name(),
                "Name": if m.kind == kiln_runtime::containers::MountType::Volume { json!(m.source) } else { serde_json::Value::Null },
                "Source": source,
                "Destination": m.destination,
                "RW": !m.readonly,
            })
        }).collect::<Vec<_>>(),
        "Config": {
            "Hostname": c.config.hostname,
            "User": c.config.user,
            "Env": c.config.env,
            "Cmd": c.config.cmd,
            "Entrypoint": if c.config.entrypoint.is_empty() { serde_json::Value::Null } else { json!(c.config.entrypoint) },
            "Image": c.config.image,
            "WorkingDir": c.config.working_dir,
            "Labels": c.config.labels,
        },
    })
}

/// docker's `{"80/tcp": [{"HostIp": …, "HostPort": …}]}` shape.
fn port_bindings(bindings: &[kiln_runtime::networks::PortBinding]) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for b in bindings {
        let entry = map.entry(b.container()).or_insert_with(|| json!([]));
        if let Some(list) = entry.as_array_mut() {
            list.push(json!({
                "HostIp": b.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                "HostPort": if b.host_port == 0 { String::new() } else { b.host_port.to_string() },
            }));
        }
    }
    serde_json::Value::Object(map)
}

/// docker's NetworkSettings: while it runs, its address on each network and the ports
/// published to it.
fn network_settings(c: &Container) -> serde_json::Value {
    let running = c.state.status == Status::Running;
    let endpoints = if running {
        super::network::endpoints(c)
    } else {
        Vec::new()
    };
    let mut networks = serde_json::Map::new();
    for a in &c.config.networks {
        let e = endpoints.iter().find(|(n, _)| n.name == a.network);
        networks.insert(
            a.network.clone(),
            json!({
                "Aliases": a.aliases,
                "NetworkID": e.map(|(n, _)| n.id.clone()).unwrap_or_default(),
                "EndpointID": e.map(|(_, e)| e.host_interface.clone()).unwrap_or_default(),
                "Gateway": e.and_then(|(_, e)| e.gateway).map(|g| g.to_string()).unwrap_or_default(),
                "IPAddress": e.map(|(_, e)| e.address.to_string()).unwrap_or_default(),
                "IPPrefixLen": e.map_or(0, |(_, e)| e.prefix),
                "MacAddress": e.map(|(_, e)| e.mac.clone()).unwrap_or_default(),
                "DNSNames": e.map(|(_, e)| e.names.clone()),
            }),
        );
    }
    let first = endpoints.first().map(|(_, e)| e);
    let published: Vec<_> = endpoints
        .iter()
        .flat_map(|(_, e)| e.ports.clone())
        .collect();
    json!({
        "SandboxKey": if running && c.netns().exists() { c.netns().display().to_string() } else { String::new() },
        "Ports": port_bindings(&published),
        "IPAddress": first.map(|e| e.address.to_string()).unwrap_or_default(),
        "IPPrefixLen": first.map_or(0, |e| e.prefix),
        "Gateway": first.and_then(|e| e.gateway).map(|g| g.to_string()).unwrap_or_default(),
        "MacAddress": first.map(|e| e.mac.clone()).unwrap_or_default(),
        "Networks": networks,
    })
}

pub fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let store = containers()?;
    let mut out = Vec::new();
    let mut failed = false;
    for name in &args.containers {
        match store.find(name) {
            Ok(c) => out.push(inspect_json(&c)),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    super::print_inspected(&out, failed)
}

#[derive(clap::Args)]
pub struct RestartArgs {
    /// Seconds to wait after SIGTERM before SIGKILL (default: the container's
    /// --stop-timeout, else 10).
    #[arg(short = 't', long = "time")]
    time: Option<u64>,
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `kiln restart`: stop (as `stop` does), then start again.
pub fn restart(args: RestartArgs) -> anyhow::Result<ExitCode> {
    for_each(&args.containers, |store, c| {
        stop_one(c, args.time)?;
        c.reload()?;
        match super::supervisor::spawn_supervisor(store, c)? {
            None => Ok(()),
            Some((_, message)) => bail!("{message}"),
        }
    })
}

#[derive(clap::Args)]
pub struct RenameArgs {
    container: String,
    new_name: String,
}

pub fn rename(args: RenameArgs) -> anyhow::Result<ExitCode> {
    let store = containers()?;
    let mut c = store.find(&args.container)?;
    if !kiln_runtime::volumes::valid_name(&args.new_name) {
        bail!(
            "invalid container name {:?}: use letters, digits, _ . and -",
            args.new_name
        );
    }
    store.rename(&mut c, &args.new_name)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Do not ask (kiln never asks: without -f it refuses).
    #[arg(short, long)]
    force: bool,
}

/// `kiln container prune -f`: every container that is not running.
pub fn prune(args: PruneArgs) -> anyhow::Result<ExitCode> {
    if !args.force {
        bail!("kiln container prune removes every stopped container without asking: pass -f");
    }
    let store = containers()?;
    println!("Deleted Containers:");
    for c in store.list()? {
        if matches!(c.state.status, Status::Exited | Status::Created) {
            store.remove(&c)?;
            println!("{}", c.config.id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct StatsArgs {
    /// One table, then exit (else a table each second until interrupted).
    #[arg(long)]
    no_stream: bool,
    /// Containers (default: every running one).
    containers: Vec<String>,
}

/// "1.5MiB", as docker's `units.BytesSize` writes a size.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{:.4}", v)
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
        + UNITS[i]
}

/// `kiln stats --no-stream`: CPU (over a 200 ms sample), memory and processes, from each
/// container's cgroup.
/// `kiln stats [--no-stream] [C...]`: a table each second (until interrupted), or one.
pub fn stats(args: StatsArgs) -> anyhow::Result<ExitCode> {
    loop {
        sample(&args)?;
        if args.no_stream {
            return Ok(ExitCode::SUCCESS);
        }
        std::io::Write::flush(&mut std::io::stdout())?;
    }
}

/// One table: CPU over a 200 ms window (then 800 ms more when streaming, a second a row).
fn sample(args: &StatsArgs) -> anyhow::Result<()> {
    let store = containers()?;
    let chosen: Vec<Container> = if args.containers.is_empty() {
        store
            .list()?
            .into_iter()
            .filter(|c| c.state.status == Status::Running)
            .collect()
    } else {
        args.containers
            .iter()
            .map(|n| store.find(n))
            .collect::<Result<_, _>>()?
    };
    let path = |c: &Container| std::path::PathBuf::from(c.cgroup_path());
    let before: Vec<_> = chosen
        .iter()
        .map(|c| kiln_runtime::cgroups::usage(&path(c)))
        .collect();
    let window = Duration::from_millis(200);
    std::thread::sleep(window);
    let total_memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    println!(
        "{:<15}{:<20}{:<10}{:<24}{:<10}{:<15}{:<15}PIDS",
        "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O"
    );
    for (c, before) in chosen.iter().zip(before) {
        let now = kiln_runtime::cgroups::usage(&path(c));
        let cpu =
            (now.cpu_ns.saturating_sub(before.cpu_ns)) as f64 / window.as_nanos() as f64 * 100.0;
        let limit = now.memory_limit.unwrap_or(total_memory);
        let mem_pct = if limit > 0 {
            now.memory as f64 / limit as f64 * 100.0
        } else {
            0.0
        };
        println!(
            "{:<15}{:<20}{:<10}{:<24}{:<10}{:<15}{:<15}{}",
            &c.config.id[..12],
            c.config.name,
            format!("{cpu:.2}%"),
            format!("{} / {}", bytes(now.memory), bytes(limit)),
            format!("{mem_pct:.2}%"),
            "0B / 0B",
            "0B / 0B",
            now.pids
        );
    }
    if !args.no_stream {
        std::thread::sleep(Duration::from_millis(800));
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct TopArgs {
    container: String,
}

/// `kiln top C`: the container's processes as `ps -f` shows them (docker runs ps too).
pub fn top(args: TopArgs) -> anyhow::Result<ExitCode> {
    let c = containers()?.find(&args.container)?;
    if c.state.status != Status::Running {
        bail!("container {} is not running", c.config.name);
    }
    let pids = kiln_runtime::cgroups::pids(std::path::Path::new(&c.cgroup_path()));
    // The sandbox's middle process is in the cgroup too; the container's are its
    // descendants, PID 1 first.
    let shown: Vec<String> = pids
        .iter()
        .filter(|p| **p != 0)
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/status")).is_ok_and(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("NSpid:"))
                    .is_some_and(|ns| ns.split_whitespace().count() > 1)
            })
        })
        .map(|p| p.to_string())
        .collect();
    if shown.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let status = std::process::Command::new("ps")
        .arg("-f")
        .arg("-p")
        .arg(shown.join(","))
        .status()
        .context("running ps")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
