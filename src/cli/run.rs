//! `kiln run [-d] [--rm] [--name N] [-e K=V]... [--env-file F]... [-w DIR] [-u USER[:GROUP]]
//! [-h HOST] [--entrypoint CMD] [-l K=V]... [-v SRC:DST[:ro]]... [--mount type=…,…]...
//! [--tmpfs DST]... [--network none|host] [--pull missing|always|never] IMAGE [COMMAND]
//! [ARG...]` and `kiln create`: the container made from the image and the flags (its
//! supervisor is in `supervisor.rs`).
//!
//! Exit codes as docker's: 125 when kiln fails, 126 when the command cannot be run, 127
//! when it is not found, else the container's own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use kiln_image::store::Store;
use kiln_runtime::containers::{
    Config, Container, Containers, Healthcheck, Limits, MountType, Security,
};
use kiln_runtime::volumes::Volumes;

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
    /// `no-new-privileges`, `seccomp=unconfined` or `seccomp=FILE` (a profile in
    /// Docker's format).
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
    /// HOST:IP (or HOST=IP): a line of the container's /etc/hosts (repeatable).
    #[arg(long = "add-host", value_name = "HOST:IP")]
    add_hosts: Vec<String>,
    /// A DNS server for the container's /etc/resolv.conf (repeatable; else the host's).
    #[arg(long = "dns", value_name = "IP")]
    dns: Vec<String>,
    /// A DNS search domain (repeatable; `.` for none).
    #[arg(long = "dns-search", value_name = "DOMAIN")]
    dns_search: Vec<String>,
    /// A resolver option, such as ndots:2 (repeatable).
    #[arg(long = "dns-option", value_name = "OPTION")]
    dns_options: Vec<String>,
    /// `auto`: a user namespace of the container's own, its root a range of host IDs no
    /// other container has (podman's --userns=auto); `host` (the default): the host's IDs.
    #[arg(long, default_value = "host", value_name = "host|auto")]
    userns: String,
    /// Keep the container's standard input open, and pass ours on when attached.
    #[arg(short, long)]
    interactive: bool,
    /// The keys that detach from a `-it` container, leaving it running (docker's
    /// format: `ctrl-<a-z@[\]^_>` or one character each, comma-separated).
    #[arg(long, default_value = "ctrl-p,ctrl-q")]
    detach_keys: String,
    /// Pass the signals kiln receives on to the container (foreground runs).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    sig_proxy: bool,
    /// no, always, unless-stopped or on-failure[:N]: what happens when it exits.
    #[arg(long, default_value = "no", value_name = "POLICY")]
    restart: String,
    /// bridge (the default network: a private address behind NAT), a network's name,
    /// host, none (loopback only) or container:NAME (another container's).
    #[arg(
        long = "network",
        alias = "net",
        default_value = "bridge",
        value_name = "NETWORK"
    )]
    network: String,
    /// A name the container answers to on its (user-defined) network (repeatable).
    #[arg(long = "network-alias", alias = "net-alias", value_name = "ALIAS")]
    network_aliases: Vec<String>,
    /// Its IPv4 address on its (user-defined) network.
    #[arg(long)]
    ip: Option<std::net::Ipv4Addr>,
    /// Its first interface's MAC address.
    #[arg(long)]
    mac_address: Option<String>,
    /// Publish a port: `[IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]`, ranges as `8000-8001`
    /// (repeatable).
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    publish: Vec<String>,
    /// Publish every port the image EXPOSEs on a free host port.
    #[arg(short = 'P', long)]
    publish_all: bool,
    /// missing (pull the image when the store lacks it), always, or never.
    #[arg(long, default_value = "missing", value_name = "missing|always|never")]
    pull: String,
    /// The platform's image to run from a multi-platform image (default: this host's);
    /// another architecture's runs through QEMU (see `kiln builder binfmt`).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// The image to run.
    image: String,
    /// The command and its arguments (default: the image's CMD).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
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
        return super::supervisor::start_detached(&containers, container);
    }
    let options = super::attach::Options {
        stdin: args.interactive,
        stdin_once: true,
        tty: args.tty,
        detach_keys: super::attach::parse_detach_keys(&args.detach_keys)?,
        sig_proxy: args.sig_proxy,
    };
    let mut container = container;
    super::supervisor::start_attached(&containers, &mut container, &options)
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
pub(crate) fn create_container(args: &Args) -> anyhow::Result<(Containers, Container)> {
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
    let store = super::store()?;
    let root = Store::default_root();
    let platform = args
        .platform
        .as_deref()
        .map(kiln_image::Platform::parse)
        .transpose()
        .context("--platform")?;
    let image = image(&store, &args.image, &args.pull, platform.as_ref())?;
    let containers = Containers::open(&root)?;
    let config = container_config(&store, &root, &image, args)?;
    let volumes = Volumes::open(&root)?;
    let container = containers.create(config, |c| {
        super::etc::write(c, &[])?;
        for m in c
            .config
            .mounts
            .iter()
            .filter(|m| m.kind == MountType::Volume)
        {
            volumes.create(
                &m.source,
                BTreeMap::new(),
                super::mounts::is_anonymous(&m.source),
            )?;
        }
        Ok(())
    })?;
    Ok((containers, container))
}

/// The image (for `platform` when one is named: else this host's from an index, or the
/// image as it is), pulled first when `pull` asks for it.
fn image(
    store: &Store,
    name: &str,
    pull: &str,
    platform: Option<&kiln_image::Platform>,
) -> anyhow::Result<kiln_image::store::images::ResolvedImage> {
    let resolve = || match platform {
        Some(p) => store.resolve_for(name, p),
        None => store.resolve(name),
    };
    let have = resolve();
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
        let report = |line: String| eprintln!("{line}");
        let platform = platform.cloned().unwrap_or_else(kiln_image::Platform::host);
        kiln_image::client::pull_image(store, &reference, &platform.to_string(), &report)
            .with_context(|| format!("pulling {name}"))?;
    }
    match resolve() {
        Err(e @ kiln_image::Error::NoPlatform { .. }) => Err(e.into()),
        r => r.with_context(|| {
            format!("no such image {name} (pull it, or build it with kiln build)")
        }),
    }
}

pub(crate) fn random_id() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(hex::encode(bytes))
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

/// The seccomp profile a container's security options name.
pub(crate) fn seccomp_profile(security: &Security) -> anyhow::Result<kiln_runtime::SeccompProfile> {
    Ok(match security.seccomp.as_deref() {
        None => kiln_runtime::SeccompProfile::Default,
        Some("unconfined") => kiln_runtime::SeccompProfile::Unconfined,
        Some(json) => kiln_runtime::SeccompProfile::Docker(
            serde_json::from_str(json).context("the seccomp profile is not JSON")?,
        ),
    })
}

/// The security options of `args`, checked.
fn security(args: &Args) -> anyhow::Result<Security> {
    let mut no_new_privileges = false;
    let mut seccomp = None;
    for o in &args.security_opts {
        match o.as_str() {
            "no-new-privileges" | "no-new-privileges=true" | "no-new-privileges:true" => {
                no_new_privileges = true
            }
            "seccomp=unconfined" | "seccomp:unconfined" => seccomp = Some("unconfined".into()),
            other => match other
                .strip_prefix("seccomp=")
                .or_else(|| other.strip_prefix("seccomp:"))
            {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("--security-opt seccomp: reading {path}"))?;
                    let json = serde_json::from_str(&text)
                        .with_context(|| format!("--security-opt seccomp: {path} is not JSON"))?;
                    // Checked now: a profile that does not compile makes no container.
                    kiln_runtime::SeccompProfile::Docker(json)
                        .check()
                        .with_context(|| format!("--security-opt seccomp: {path}"))?;
                    seccomp = Some(text);
                }
                None => bail!(
                    "--security-opt {other}: kiln takes no-new-privileges and seccomp=unconfined|FILE"
                ),
            },
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
        seccomp,
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
        // Chosen by the store, under its lock, among the names not taken.
        None => String::new(),
    };
    let image_config = image.config.config().clone().unwrap_or_default();
    let network = super::network::choose(
        &args.network,
        &args.network_aliases,
        args.ip,
        &args.publish,
        args.publish_all,
        &image_config.exposed_ports().clone().unwrap_or_default(),
    )?;
    if let Some(mac) = &args.mac_address {
        if kiln_runtime::networks::parse_mac(mac).is_none() {
            bail!("--mac-address {mac}: give a unicast address as aa:bb:cc:dd:ee:ff");
        }
    }
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
    let mounts =
        super::mounts::mount_points(&args.volumes, &args.mounts, &args.tmpfs, &image_volumes)?;
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
        network: network.mode,
        networks: network.networks,
        ports: network.ports,
        mac_address: args.mac_address.clone(),
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
        extra_hosts: extra_hosts(&args.add_hosts, root)?,
        dns: dns(args)?,
        userns: match args.userns.as_str() {
            "" | "host" => None,
            // 65536 IDs, as podman's --userns=auto gives by default; the store picks them.
            "auto" => Some(kiln_runtime::containers::IdRange {
                host: 0,
                size: 65536,
            }),
            other => bail!("--userns {other}: kiln takes host (the default) or auto"),
        },
        id,
    })
}

/// `--add-host` entries, checked: docker's `HOST:IP` (an IPv6 address in brackets or
/// bare) or `HOST=IP`; `host-gateway` is the default bridge's gateway, the host as
/// containers reach it.
fn extra_hosts(entries: &[String], root: &Path) -> anyhow::Result<Vec<(String, String)>> {
    entries
        .iter()
        .map(|e| {
            let (host, ip) = e
                .split_once('=')
                .or_else(|| e.split_once(':'))
                .with_context(|| format!("--add-host {e}: write HOST:IP"))?;
            let mut ip = ip.trim_start_matches('[').trim_end_matches(']').to_string();
            if ip == "host-gateway" {
                let bridge = kiln_runtime::networks::Networks::open(root)?
                    .find(kiln_runtime::networks::DEFAULT_NETWORK)?;
                ip = bridge.gateway.map(|g| g.to_string()).unwrap_or_default();
            }
            if host.is_empty() || ip.parse::<std::net::IpAddr>().is_err() {
                bail!(
                    "--add-host {e}: write HOST:IP, with an IPv4 or IPv6 address or host-gateway"
                );
            }
            Ok((host.to_string(), ip.to_string()))
        })
        .collect()
}

/// `--dns`, `--dns-search` and `--dns-option`, checked.
fn dns(args: &Args) -> anyhow::Result<kiln_runtime::containers::Dns> {
    for server in &args.dns {
        if server.parse::<std::net::IpAddr>().is_err() {
            bail!("--dns {server}: give the server's IP address");
        }
    }
    Ok(kiln_runtime::containers::Dns {
        servers: args.dns.clone(),
        search: args.dns_search.clone(),
        options: args.dns_options.clone(),
    })
}
