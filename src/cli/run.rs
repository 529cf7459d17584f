//! `kiln run [-d] [--rm] [--name N] [-e K=V]... [--env-file F]... [-w DIR] [-u USER[:GROUP]]
//! [-h HOST] [--entrypoint CMD] [-l K=V]... [-v SRC:DST[:ro]]... [--mount type=…,…]...
//! [--tmpfs DST]... [--network none|host] [--pull missing|always|never] IMAGE [COMMAND]
//! [ARG...]`, and the supervisor each container gets (`kiln run -d`
//! starts one as a process of its own; without `-d` the `kiln run` process is it).
//!
//! Exit codes as docker's: 125 when kiln fails, 126 when the command cannot be run, 127
//! when it is not found, else the container's own.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use kiln_image::store::Store;
use kiln_runtime::containers::{
    Config, Container, Containers, Healthcheck, Limits, LogWriter, MountPoint, MountType, Security,
    Status, Stream,
};
use kiln_runtime::volumes::Volumes;
use kiln_runtime::{Network, ProcessSpec, Rootfs, Snapshotter};

#[derive(clap::Args)]
pub struct Args {
    /// Run in the background and print the container's ID.
    #[arg(short, long)]
    detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// The container's name (default: a generated one).
    #[arg(long)]
    name: Option<String>,
    /// An environment variable: `K=V`, or `K` to pass this one's (repeatable).
    #[arg(short, long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// A file of `K=V` lines (repeatable).
    #[arg(long = "env-file", value_name = "FILE")]
    env_files: Vec<PathBuf>,
    /// The working directory inside the container.
    #[arg(short, long = "workdir", value_name = "DIR")]
    workdir: Option<String>,
    /// USER[:GROUP], by name (from the image's /etc/passwd) or number.
    #[arg(short, long)]
    user: Option<String>,
    /// The container's host name (default: the first 12 digits of its ID).
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    /// Print help (`-h` is --hostname, as in docker).
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Replace the image's ENTRYPOINT (`""` clears it).
    #[arg(long)]
    entrypoint: Option<String>,
    /// A label: `K=V` (repeatable).
    #[arg(short, long = "label", value_name = "K=V")]
    labels: Vec<String>,
    /// A volume or a bind mount: `NAME:/path[:ro]` (a named volume, made on first use and
    /// filled from the image), `/host/path:/path[:ro]` (a bind), `/path` (an anonymous
    /// volume) (repeatable).
    #[arg(short, long = "volume", value_name = "SRC:DST[:ro]")]
    volumes: Vec<String>,
    /// `type=bind|volume|tmpfs,source=…,target=…[,readonly]` (repeatable).
    #[arg(long = "mount", value_name = "type=…,source=…,target=…")]
    mounts: Vec<String>,
    /// A tmpfs at this path (repeatable).
    #[arg(long = "tmpfs", value_name = "DST")]
    tmpfs: Vec<String>,
    /// A memory limit (`512m`, `1g`; 6 MiB at least, as docker).
    #[arg(short, long, value_name = "SIZE")]
    memory: Option<String>,
    /// Memory and swap together (`-1`: unlimited swap; default twice --memory).
    #[arg(long, value_name = "SIZE")]
    memory_swap: Option<String>,
    /// CPUs it may use (`1.5`).
    #[arg(long)]
    cpus: Option<f64>,
    /// Relative CPU weight (1024 by default).
    #[arg(short = 'c', long)]
    cpu_shares: Option<u64>,
    /// How many processes it may have (`-1`: no limit).
    #[arg(long)]
    pids_limit: Option<i64>,
    /// Every capability, no seccomp filter, nothing masked, the host's devices.
    #[arg(long)]
    privileged: bool,
    /// A capability to add to docker's default set (`NET_ADMIN`, `ALL`) (repeatable).
    #[arg(long = "cap-add", value_name = "CAP")]
    cap_add: Vec<String>,
    /// A capability to drop (`NET_RAW`, `ALL`) (repeatable).
    #[arg(long = "cap-drop", value_name = "CAP")]
    cap_drop: Vec<String>,
    /// The root read-only (volumes, binds and tmpfs mounts stay writable).
    #[arg(long)]
    read_only: bool,
    /// `no-new-privileges` (the only one for now).
    #[arg(long = "security-opt", value_name = "OPT")]
    security_opts: Vec<String>,
    /// `NAME=SOFT[:HARD]` resource limits (repeatable).
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    ulimit: Vec<String>,
    /// The signal `stop` sends first (default SIGTERM).
    #[arg(long, value_name = "SIGNAL")]
    stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (default 10).
    #[arg(long, value_name = "SECONDS")]
    stop_timeout: Option<u64>,
    /// A supplementary group, by name (from the image's /etc/group) or number
    /// (repeatable).
    #[arg(long = "group-add", value_name = "GROUP")]
    group_add: Vec<String>,
    /// json-file log options: `max-size=10m`, `max-file=3` (repeatable).
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    log_opts: Vec<String>,
    /// A health check command, run with /bin/sh -c in the container.
    #[arg(long, value_name = "COMMAND")]
    health_cmd: Option<String>,
    /// Time between health checks (`30s`, `1m`).
    #[arg(long, value_name = "DURATION")]
    health_interval: Option<String>,
    /// How long a health check may run.
    #[arg(long, value_name = "DURATION")]
    health_timeout: Option<String>,
    /// Failures in a row that make it unhealthy.
    #[arg(long, value_name = "N")]
    health_retries: Option<u32>,
    /// Time after start when failures do not count.
    #[arg(long, value_name = "DURATION")]
    health_start_period: Option<String>,
    /// No health check, whatever the image says.
    #[arg(long)]
    no_healthcheck: bool,
    /// A small init as PID 1: it reaps orphaned processes and passes signals on to the
    /// command (docker's --init).
    #[arg(long)]
    init: bool,
    /// A pseudo-terminal for the container (`-it` for an interactive shell).
    #[arg(short, long)]
    tty: bool,
    /// Pass standard input to the container (foreground runs).
    #[arg(short, long)]
    interactive: bool,
    /// no, always, unless-stopped or on-failure[:N]: what happens when it exits.
    #[arg(long, default_value = "no", value_name = "POLICY")]
    restart: String,
    /// none (loopback only, the default until kiln has container networks) or host.
    #[arg(long, default_value = "none", value_name = "none|host")]
    network: String,
    /// missing (pull the image when the store lacks it), always, or never.
    #[arg(long, default_value = "missing", value_name = "missing|always|never")]
    pull: String,
    /// The image to run.
    image: String,
    /// The command and its arguments (default: the image's CMD).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// The hidden `kiln container-supervise ID` a detached container runs under.
#[derive(clap::Args)]
pub struct SuperviseArgs {
    id: String,
}

/// docker's code for an error of its own.
pub(crate) const KILN_FAILED: u8 = 125;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match run_container(args) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("kiln: {}", crate::message(&e));
            Ok(ExitCode::from(KILN_FAILED))
        }
    }
}

fn run_container(args: Args) -> anyhow::Result<ExitCode> {
    let (containers, container) = create_container(&args)?;
    if args.detach {
        start_detached(&containers, container)
    } else {
        let code = supervise(&containers, container, true)?;
        Ok(ExitCode::from(code))
    }
}

/// `kiln create [run's flags] IMAGE [COMMAND] [ARG...]`: the container, made and not
/// started; its ID printed.
pub fn create(args: Args) -> anyhow::Result<ExitCode> {
    match create_container(&args) {
        Ok((_, c)) => {
            println!("{}", c.config.id);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("kiln: {}", crate::message(&e));
            Ok(ExitCode::from(KILN_FAILED))
        }
    }
}

/// Checks `args`, finds (or pulls) the image and makes the container and its volumes.
fn create_container(args: &Args) -> anyhow::Result<(Containers, Container)> {
    if !nix::unistd::geteuid().is_root() {
        bail!("kiln run starts containers in namespaces on overlayfs and needs root for now");
    }
    let policy_ok = match args.restart.split_once(':') {
        Some(("on-failure", n)) => n.parse::<u32>().is_ok(),
        None => matches!(
            args.restart.as_str(),
            "no" | "always" | "unless-stopped" | "on-failure"
        ),
        _ => false,
    };
    if !policy_ok {
        bail!(
            "--restart {}: use no, always, unless-stopped or on-failure[:N]",
            args.restart
        );
    }
    if args.rm && args.restart != "no" {
        bail!("conflicting options: --restart and --rm (a container removed when it exits cannot be restarted)");
    }
    if !matches!(args.network.as_str(), "none" | "host") {
        bail!(
            "--network {}: kiln runs containers with --network none or host for now",
            args.network
        );
    }
    let store = super::store()?;
    let root = Store::default_root();
    let image = image(&store, &args.image, &args.pull)?;
    let containers = Containers::open(&root)?;
    let config = container_config(&store, &root, &image, args)?;
    let volumes = Volumes::open(&root)?;
    let container = containers.create(config, |c| {
        write_etc_files(c)?;
        for m in c
            .config
            .mounts
            .iter()
            .filter(|m| m.kind == MountType::Volume)
        {
            volumes.create(&m.source, BTreeMap::new(), is_anonymous(&m.source))?;
        }
        Ok(())
    })?;
    Ok((containers, container))
}

/// The image, pulled first when `pull` asks for it.
fn image(
    store: &Store,
    name: &str,
    pull: &str,
) -> anyhow::Result<kiln_image::store::images::ResolvedImage> {
    let have = store.resolve(name);
    let fetch = match pull {
        "always" => true,
        "missing" => have.is_err(),
        "never" => false,
        other => bail!("--pull {other}: use missing, always or never"),
    };
    if fetch {
        if have.is_err() {
            eprintln!("Unable to find image '{name}' locally");
        }
        let reference = kiln_image::Reference::parse(name)?;
        let platform = kiln_image::store::images::host_platform();
        let report = |line: String| eprintln!("{line}");
        kiln_image::client::pull_image(store, &reference, &platform, &report)
            .with_context(|| format!("pulling {name}"))?;
    }
    store
        .resolve(name)
        .with_context(|| format!("no such image {name} (pull it, or build it with kiln build)"))
}

pub(crate) fn random_id() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(hex::encode(bytes))
}

/// A name as docker makes one: an adjective and a surname.
fn generated_name(id: &str) -> String {
    const ADJECTIVES: [&str; 16] = [
        "brave", "calm", "eager", "fervent", "gifted", "happy", "jolly", "keen", "lucid", "modest",
        "nifty", "quirky", "serene", "tender", "vibrant", "zealous",
    ];
    const NAMES: [&str; 16] = [
        "allen", "babbage", "curie", "dijkstra", "euler", "franklin", "goldberg", "hopper", "kare",
        "lamport", "lovelace", "noether", "ritchie", "shannon", "thompson", "wing",
    ];
    let n = u16::from_str_radix(&id[..4], 16).unwrap_or(0) as usize;
    format!("{}_{}", ADJECTIVES[n % 16], NAMES[(n / 16) % 16])
}

/// `K=V` entries from `-e` and `--env-file`, in order (later ones win).
fn env_entries(args: &Args) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut take = |entry: &str| {
        match entry.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), v.to_string())),
            // `-e K`: this process's K, when it has one.
            None => {
                if let Ok(v) = std::env::var(entry) {
                    out.push((entry.to_string(), v));
                }
            }
        }
    };
    for file in &args.env_files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("--env-file {}", file.display()))?;
        for line in text.lines() {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                take(line);
            }
        }
    }
    for e in &args.env {
        take(e);
    }
    Ok(out)
}

/// The image's HEALTHCHECK (docker's `config.Healthcheck`), with `--health-*` over it.
fn healthcheck(args: &Args, config_bytes: &[u8]) -> anyhow::Result<Option<Healthcheck>> {
    if args.no_healthcheck {
        return Ok(None);
    }
    let config: serde_json::Value = serde_json::from_slice(config_bytes).unwrap_or_default();
    let image = &config["config"]["Healthcheck"];
    let mut check = Healthcheck {
        test: serde_json::from_value(image["Test"].clone()).unwrap_or_default(),
        interval_ns: image["Interval"].as_u64().unwrap_or(0),
        timeout_ns: image["Timeout"].as_u64().unwrap_or(0),
        start_period_ns: image["StartPeriod"].as_u64().unwrap_or(0),
        retries: image["Retries"].as_u64().unwrap_or(0) as u32,
    };
    let duration = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<u64>> {
        v.as_deref()
            .map(|d| {
                humantime::parse_duration(d)
                    .map(|d| d.as_nanos() as u64)
                    .map_err(|e| anyhow::anyhow!("{flag} {d}: {e} (write 30s, 1m, 1h30m)"))
            })
            .transpose()
    };
    if let Some(cmd) = &args.health_cmd {
        check.test = vec!["CMD-SHELL".into(), cmd.clone()];
    }
    if let Some(ns) = duration("--health-interval", &args.health_interval)? {
        check.interval_ns = ns;
    }
    if let Some(ns) = duration("--health-timeout", &args.health_timeout)? {
        check.timeout_ns = ns;
    }
    if let Some(ns) = duration("--health-start-period", &args.health_start_period)? {
        check.start_period_ns = ns;
    }
    if let Some(r) = args.health_retries {
        check.retries = r;
    }
    Ok((!check.test.is_empty() && check.test[0] != "NONE").then_some(check))
}

/// The security options of `args`, checked.
fn security(args: &Args) -> anyhow::Result<Security> {
    let mut no_new_privileges = false;
    for o in &args.security_opts {
        match o.as_str() {
            "no-new-privileges" | "no-new-privileges=true" | "no-new-privileges:true" => {
                no_new_privileges = true
            }
            other => bail!("--security-opt {other}: kiln takes no-new-privileges for now"),
        }
    }
    let ulimits = super::build::ulimits(&args.ulimit)?;
    if let Some(s) = &args.stop_signal {
        super::container::parse_signal(s)?;
    }
    Ok(Security {
        privileged: args.privileged,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        read_only: args.read_only,
        no_new_privileges,
        ulimits,
        stop_signal: args.stop_signal.clone(),
        stop_timeout: args.stop_timeout,
    })
}

/// The resource limits of `args`, checked as docker checks them.
fn limits(args: &Args) -> anyhow::Result<Limits> {
    let size = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<i64>> {
        v.as_deref()
            .map(|s| {
                if s == "-1" {
                    return Ok(-1);
                }
                kiln_builder::size::parse(s)
                    .map(|n| n as i64)
                    .ok_or_else(|| anyhow::anyhow!("{flag} {s}: give a size (512m, 1g, ...)"))
            })
            .transpose()
    };
    let memory = size("--memory", &args.memory)?;
    if memory.is_some_and(|m| m < 6 << 20) {
        bail!(
            "--memory {}: the minimum memory limit allowed is 6MB",
            args.memory.as_deref().unwrap_or_default()
        );
    }
    let memory_swap = size("--memory-swap", &args.memory_swap)?;
    if let (Some(m), Some(s)) = (memory, memory_swap) {
        if s != -1 && s < m {
            bail!(
                "--memory-swap must be larger than --memory (it counts memory and swap together)"
            );
        }
    }
    if args.cpus.is_some_and(|c| c <= 0.0) {
        bail!(
            "--cpus {}: give a positive number",
            args.cpus.unwrap_or_default()
        );
    }
    Ok(Limits {
        memory,
        memory_swap,
        cpus: args.cpus,
        cpu_shares: args.cpu_shares,
        pids: args.pids_limit,
    })
}

/// An anonymous volume's name: 64 hex digits, as docker names them.
pub(crate) fn is_anonymous(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `-v SRC:DST[:OPTS]`, as docker reads it: an absolute SRC is a host path, another a
/// volume's name; DST alone is an anonymous volume.
fn volume_flag(spec: &str) -> anyhow::Result<MountPoint> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, options) = match parts.as_slice() {
        [dst] => ("", *dst, ""),
        [src, dst] => (*src, *dst, ""),
        [src, dst, opts] => (*src, *dst, *opts),
        _ => bail!("-v {spec}: use SOURCE:DESTINATION[:ro]"),
    };
    let mut readonly = false;
    for o in options.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "readonly" => readonly = true,
            "rw" => readonly = false,
            // SELinux relabelling and propagation: nothing to do on this host.
            "z" | "Z" | "rprivate" | "private" => {}
            other => bail!("-v {spec}: unknown option {other} (use ro or rw)"),
        }
    }
    if !destination.starts_with('/') {
        bail!("-v {spec}: the destination {destination:?} must be an absolute path");
    }
    let kind = if source.starts_with('/') {
        MountType::Bind
    } else {
        MountType::Volume
    };
    Ok(MountPoint {
        kind,
        source: source.to_string(),
        destination: destination.to_string(),
        readonly,
    })
}

/// `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly]`.
fn mount_flag(spec: &str) -> anyhow::Result<MountPoint> {
    let mut kind = MountType::Volume;
    let (mut source, mut destination, mut readonly) = (String::new(), String::new(), false);
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => {
                kind = match v {
                    "bind" => MountType::Bind,
                    "volume" => MountType::Volume,
                    "tmpfs" => MountType::Tmpfs,
                    other => bail!("--mount {spec}: type {other}: use bind, volume or tmpfs"),
                }
            }
            "source" | "src" => source = v.to_string(),
            "target" | "destination" | "dst" => destination = v.to_string(),
            "readonly" | "ro" => readonly = v.is_empty() || v == "true" || v == "1",
            other => bail!("--mount {spec}: unknown field {other}"),
        }
    }
    if !destination.starts_with('/') {
        bail!("--mount {spec}: give target=/absolute/path");
    }
    if kind == MountType::Bind && !Path::new(&source).exists() {
        bail!("--mount {spec}: bind source path does not exist: {source}");
    }
    Ok(MountPoint {
        kind,
        source,
        destination,
        readonly,
    })
}

/// The container's mounts: `-v`, `--mount`, `--tmpfs`, then an anonymous volume for each
/// image `VOLUME` none of them covers. Anonymous volumes get a random name here.
fn mount_points(args: &Args, image_volumes: &[String]) -> anyhow::Result<Vec<MountPoint>> {
    let mut out = Vec::new();
    for v in &args.volumes {
        out.push(volume_flag(v)?);
    }
    for m in &args.mounts {
        out.push(mount_flag(m)?);
    }
    for t in &args.tmpfs {
        let dst = t.split(':').next().unwrap_or(t);
        if !dst.starts_with('/') {
            bail!("--tmpfs {t}: give an absolute path");
        }
        out.push(MountPoint {
            kind: MountType::Tmpfs,
            source: String::new(),
            destination: dst.to_string(),
            readonly: false,
        });
    }
    for v in image_volumes {
        if !out.iter().any(|m| m.destination == *v) {
            out.push(MountPoint {
                kind: MountType::Volume,
                source: String::new(),
                destination: v.clone(),
                readonly: false,
            });
        }
    }
    for m in &mut out {
        if m.kind == MountType::Volume && m.source.is_empty() {
            m.source = random_id()?;
        }
        if m.kind == MountType::Volume && !kiln_runtime::volumes::valid_name(&m.source) {
            bail!("volume name {:?}: use letters, digits, _ . and -", m.source);
        }
    }
    // Parents first: a volume at /data before a bind at /data/conf.
    out.sort_by_key(|m| Path::new(&m.destination).components().count());
    Ok(out)
}

fn container_config(
    store: &Store,
    root: &Path,
    image: &kiln_image::store::images::ResolvedImage,
    args: &Args,
) -> anyhow::Result<Config> {
    let id = random_id()?;
    let name = match &args.name {
        Some(n) => {
            let valid = n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !valid {
                bail!(
                    "--name {n}: use letters, digits, _ . and -, starting with a letter or digit"
                );
            }
            n.clone()
        }
        None => generated_name(&id),
    };
    let image_config = image.config.config().clone().unwrap_or_default();
    let image_entrypoint = image_config.entrypoint().clone().unwrap_or_default();
    let image_cmd = image_config.cmd().clone().unwrap_or_default();
    let entrypoint = match &args.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
        None => image_entrypoint.clone(),
    };
    // A new entrypoint drops the image's CMD, as docker does.
    let cmd = if !args.command.is_empty() {
        args.command.clone()
    } else if args.entrypoint.is_some() {
        Vec::new()
    } else {
        image_cmd.clone()
    };
    let argv: Vec<String> = entrypoint.iter().chain(&cmd).cloned().collect();
    if argv.is_empty() {
        bail!("no command specified: give one after the image, or build the image with CMD");
    }

    // The layers' snapshots, unpacked once and shared with builds.
    let scratch = root.join("tmp");
    std::fs::create_dir_all(&scratch)?;
    let diff_ids = image.config.rootfs().diff_ids();
    let mut bottom_first = Vec::new();
    for (layer, diff_id) in image.manifest.layers().iter().zip(diff_ids) {
        let diff_id = kiln_image::digest::DiffId::parse(diff_id)?;
        bottom_first.push(store.snapshot(&diff_id, layer.digest(), &scratch)?);
    }
    let user = args
        .user
        .clone()
        .or_else(|| image_config.user().clone())
        .unwrap_or_default();
    let mut account = kiln_image::tree::resolve_user(&user, &bottom_first)
        .map_err(|e| anyhow::anyhow!("--user {user}: {e}"))?;
    for g in &args.group_add {
        let gid = kiln_image::tree::id_of(&bottom_first, "etc/group", g)
            .map_err(|e| anyhow::anyhow!("--group-add {g}: {e}"))?
            .ok_or_else(|| {
                anyhow::anyhow!("--group-add {g}: no such group in the image's /etc/group")
            })?;
        if !account.groups.contains(&gid) {
            account.groups.push(gid);
        }
    }

    // The image's environment, then HOME and PATH if it lacks them, then -e.
    let mut env: Vec<(String, String)> = image_config
        .env()
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let mut set = |k: &str, v: String, replace: bool| match env.iter_mut().find(|(key, _)| key == k)
    {
        Some(entry) if replace => entry.1 = v,
        Some(_) => {}
        None => env.push((k.to_string(), v)),
    };
    set(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        false,
    );
    set("HOME", account.home.clone(), false);
    for (k, v) in env_entries(args)? {
        set(&k, v, true);
    }
    let image_volumes: Vec<String> = image_config
        .volumes()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mounts = mount_points(args, &image_volumes)?;
    let (mut log_max_size, mut log_max_file) = (None, 1);
    for opt in &args.log_opts {
        match opt.split_once('=') {
            Some(("max-size", v)) => {
                log_max_size = Some(
                    kiln_builder::size::parse(v)
                        .ok_or_else(|| anyhow::anyhow!("--log-opt {opt}: give a size (10m, 1g)"))?,
                )
            }
            Some(("max-file", v)) => {
                log_max_file =
                    v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        anyhow::anyhow!("--log-opt {opt}: give a count of 1 or more")
                    })?
            }
            _ => bail!("--log-opt {opt}: kiln's json-file log takes max-size and max-file"),
        }
    }
    let hostname = args
        .hostname
        .clone()
        .unwrap_or_else(|| id[..12].to_string());
    let mut labels: BTreeMap<String, String> = image_config
        .labels()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    for l in &args.labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_string(), v.to_string());
    }
    Ok(Config {
        name,
        image: args.image.clone(),
        image_id: image.id().to_string(),
        created: humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
        args: argv,
        env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
        working_dir: args
            .workdir
            .clone()
            .or_else(|| image_config.working_dir().clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into()),
        user,
        uid: account.uid,
        gid: account.gid,
        groups: account.groups,
        hostname,
        network: args.network.clone(),
        labels,
        auto_remove: args.rm,
        lowers: bottom_first.into_iter().rev().collect(),
        entrypoint,
        cmd,
        mounts,
        restart: args.restart.clone(),
        limits: limits(args)?,
        security: security(args)?,
        open_stdin: args.interactive,
        tty: args.tty,
        init: args.init,
        healthcheck: healthcheck(args, &image.config_bytes)?,
        log_max_size,
        log_max_file,
        id,
    })
}

/// `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`, as docker writes them for a
/// container (bound read-write: a container may edit its own).
fn write_etc_files(c: &Container) -> Result<(), kiln_runtime::Error> {
    let host = &c.config.hostname;
    let files = [
        ("hostname", format!("{host}\n")),
        (
            "hosts",
            format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.1.1\t{host}\n"),
        ),
        (
            "resolv.conf",
            std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        ),
    ];
    for (name, text) in files {
        let path = c.dir.join(name);
        std::fs::write(&path, text).map_err(|e| kiln_runtime::Error::Io {
            op: "write",
            path,
            source: e,
        })?;
    }
    Ok(())
}

/// Starts `kiln container-supervise ID` in a session of its own and waits until the
/// container runs; None, or docker's exit code and message when it could not start (a
/// `--rm` container is then removed).
pub(crate) fn spawn_supervisor(
    containers: &Containers,
    container: &mut Container,
) -> anyhow::Result<Option<(u8, String)>> {
    use std::os::unix::process::CommandExt;
    // From `created`, so the wait below sees this start and not an earlier one.
    container.state.status = Status::Created;
    container.state.error.clear();
    container.save_state()?;
    let _ = std::fs::remove_file(container.stop_marker());
    let exe = std::env::current_exe().context("finding the kiln binary")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["container-supervise", &container.config.id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid(2) in the child before exec: it outlives this process, apart from
    // its terminal and its process group.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    cmd.spawn().context("starting the container's supervisor")?;
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

/// `run -d`: the container started, its ID printed as docker prints it.
fn start_detached(containers: &Containers, mut container: Container) -> anyhow::Result<ExitCode> {
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
    // -t: one terminal for all three streams; else pipes, read line by line.
    let (terminal, pipes, streams) = if container.config.tty {
        let mut process = spec.process().clone().unwrap_or_default();
        process.set_terminal(Some(true));
        spec.set_process(Some(process));
        let (master, slave) = super::tty::open()?;
        let streams = (
            Stdio::from(slave.try_clone()?),
            Stdio::from(slave.try_clone()?),
            Stdio::from(slave),
        );
        (Some(master), None, streams)
    } else {
        let (out_r, out_w) = std::io::pipe()?;
        let (err_r, err_w) = std::io::pipe()?;
        let stdin = if echo && container.config.open_stdin {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        (
            None,
            Some((out_r, err_r)),
            (stdin, Stdio::from(out_w), Stdio::from(err_w)),
        )
    };
    let sandboxed = match kiln_runtime::spawn(&spec, &rootfs, streams.0, streams.1, streams.2) {
        Ok(s) => s,
        Err(e) => return Ok(Err(start_failure(&container.config, &e))),
    };
    let middle = sandboxed.child.id();
    container.state.status = Status::Running;
    container.state.supervisor = std::process::id();
    container.state.pid = init_pid(middle).unwrap_or(middle);
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
fn supervise(containers: &Containers, mut container: Container, echo: bool) -> anyhow::Result<u8> {
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
        // process is then gone or ending, and there is no PID 1 to wait for.
        if !kiln_runtime::containers::alive(middle)
            || std::fs::read_to_string(format!("/proc/{middle}/wchan"))
                .is_ok_and(|w| w.contains("exit"))
        {
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
