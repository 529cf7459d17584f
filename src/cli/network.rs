//! `kiln network create [-d bridge|macvlan] [-o K=V]... [--subnet] [--gateway]
//! [--internal] NAME`, `ls`, `inspect`, `rm`, `connect [--alias] [--ip]`, `disconnect`,
//! `prune`, `kiln port`: docker's network commands; and what `run` and the supervisor
//! need of networks (the flags checked, the container wired as it starts).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use kiln_image::store::Store;
use kiln_runtime::containers::{Container, Containers, Status};
use kiln_runtime::networks::{
    Attachment, Driver, Endpoint, Member, Network, NetworkRequest, Networks, PortBinding, Wired,
    DEFAULT_NETWORK,
};
use serde_json::json;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Make a network (its ID printed).
    Create(CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls {
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show networks as docker's JSON, with the containers on them.
    Inspect {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove networks no running container is on.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Connect a container to a network (a running one gets its interface at once).
    Connect {
        /// A name the container answers to on this network (repeatable).
        #[arg(long = "alias")]
        aliases: Vec<String>,
        /// Its IPv4 address on this network.
        #[arg(long)]
        ip: Option<Ipv4Addr>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network.
    Disconnect {
        /// Accepted as docker accepts it.
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
    /// Remove every network no container uses (and what crashed containers left).
    Prune {
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// bridge (the default) or macvlan.
    #[arg(short, long, default_value = "bridge")]
    driver: String,
    /// A driver option: `parent=IF` (macvlan), `com.docker.network.bridge.name=NAME`.
    #[arg(short = 'o', long = "opt", value_name = "K=V")]
    options: Vec<String>,
    /// The network's IPv4 subnet, as CIDR (default: the next free one of docker's pools).
    #[arg(long)]
    subnet: Option<kiln_runtime::networks::Ipv4Net>,
    /// The gateway's address (default: the subnet's first).
    #[arg(long)]
    gateway: Option<Ipv4Addr>,
    /// No route out of the network.
    #[arg(long)]
    internal: bool,
    /// IPv6 (not yet: kiln's networks are IPv4 only).
    #[arg(long)]
    ipv6: bool,
    #[arg(short, long = "label", value_name = "K=V")]
    labels: Vec<String>,
    name: String,
}

fn pairs(entries: &[String]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn open() -> anyhow::Result<(Networks, Containers)> {
    let root = Store::default_root();
    Ok((Networks::open(&root)?, Containers::open(&root)?))
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    let (networks, containers) = open()?;
    match command {
        Command::Create(args) => {
            let driver = match args.driver.as_str() {
                "bridge" => Driver::Bridge,
                "macvlan" => Driver::Macvlan,
                other => bail!("-d {other}: kiln's network drivers are bridge and macvlan"),
            };
            if args.ipv6 {
                bail!("--ipv6: kiln's networks are IPv4 only for now");
            }
            let network = networks.create(NetworkRequest {
                name: args.name,
                driver: Some(driver),
                subnet: args.subnet,
                gateway: args.gateway,
                internal: args.internal,
                labels: pairs(&args.labels),
                options: pairs(&args.options),
            })?;
            println!("{}", network.id);
        }
        Command::Ls { quiet } => {
            let list = networks.list()?;
            if quiet {
                for n in list {
                    println!("{}", &n.id[..12]);
                }
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|n| {
                        vec![
                            n.id[..12].to_string(),
                            n.name.clone(),
                            n.driver.name().to_string(),
                            "local".to_string(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    super::output::table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &rows)
                );
            }
        }
        Command::Inspect { networks: names } => {
            let mut out = Vec::new();
            let mut failed = false;
            for name in &names {
                match networks.find(name) {
                    Ok(n) => out.push(inspect_json(&networks, &containers, &n)?),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        failed = true;
                    }
                }
            }
            return super::print_inspected(&out, failed);
        }
        Command::Rm { networks: names } => {
            let mut failed = false;
            for name in &names {
                match networks.remove(name) {
                    Ok(_) => println!("{name}"),
                    Err(e) => {
                        eprintln!("Error response from daemon: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Connect {
            aliases,
            ip,
            network,
            container,
        } => {
            let mut c = containers.find(&container)?;
            let found = networks.find(&network)?;
            check_joinable(&c, &found)?;
            if c.config.networks.iter().any(|a| a.network == found.name) {
                bail!(
                    "container {} is already connected to network {}",
                    c.config.name,
                    found.name
                );
            }
            if !aliases.is_empty() && !found.resolves_names() {
                bail!("network-scoped aliases are supported only for containers on user-defined networks");
            }
            let attachment = Attachment {
                network: found.name.clone(),
                aliases,
                ip,
            };
            c.settle();
            if c.state.status == Status::Running {
                networks.connect(&member(&c, c.state.supervisor), &attachment)?;
            }
            c.config.networks.push(attachment);
            c.save_config()?;
        }
        Command::Disconnect {
            network, container, ..
        } => {
            let mut c = containers.find(&container)?;
            let found = networks.find(&network)?;
            let Some(at) = c
                .config
                .networks
                .iter()
                .position(|a| a.network == found.name)
            else {
                bail!(
                    "container {} is not connected to network {}",
                    c.config.name,
                    found.name
                );
            };
            c.settle();
            if c.state.status == Status::Running {
                networks.disconnect(&c.config.id, &found)?;
            }
            c.config.networks.remove(at);
            c.save_config()?;
        }
        Command::Prune { force } => {
            if !force {
                bail!("kiln network prune removes networks without asking: pass -f");
            }
            // A network a container is configured for (running or not) is in use.
            let in_use: Vec<String> = containers
                .list()?
                .iter()
                .flat_map(|c| c.config.networks.iter().map(|a| a.network.clone()))
                .collect();
            println!("Deleted Networks:");
            for name in networks.prune(&in_use)? {
                println!("{name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// docker's `network inspect` shape.
fn inspect_json(
    networks: &Networks,
    containers: &Containers,
    n: &Network,
) -> anyhow::Result<serde_json::Value> {
    let mut members = serde_json::Map::new();
    for e in networks.endpoints(&n.id)? {
        let name = containers
            .find(&e.container_id)
            .map(|c| c.config.name)
            .unwrap_or_default();
        members.insert(
            e.container_id.clone(),
            json!({
                "Name": name,
                "EndpointID": e.host_interface,
                "MacAddress": e.mac,
                "IPv4Address": format!("{}/{}", e.address, e.prefix),
                "IPv6Address": "",
            }),
        );
    }
    Ok(json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver.name(),
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": n.subnet.map(|s| vec![json!({
                "Subnet": s.to_string(),
                "Gateway": n.gateway.map(|g| g.to_string()),
            })]).unwrap_or_default(),
        },
        "Internal": n.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": members,
        "Options": n.options,
        "Labels": n.labels,
    }))
}

fn member(c: &Container, supervisor: u32) -> Member<'_> {
    Member {
        id: &c.config.id,
        name: &c.config.name,
        supervisor,
        netns: c.netns(),
        mac: c.config.mac_address.as_deref(),
        builder: false,
    }
}

/// A container joins bridge and macvlan networks; `host` and `none` are modes.
fn check_joinable(c: &Container, n: &Network) -> anyhow::Result<()> {
    if matches!(n.driver, Driver::Host | Driver::Null) {
        bail!(
            "container {} cannot join network {}: it is a network mode (run --network {})",
            c.config.name,
            n.name,
            n.name
        );
    }
    if c.config.network == "host"
        || c.config.network == "none"
        || c.config.network.starts_with("container:")
    {
        bail!(
            "container {} runs with --network {}: it cannot join other networks",
            c.config.name,
            c.config.network
        );
    }
    Ok(())
}

/// What `run`'s network flags give a new container: its mode, the networks it joins,
/// its published ports.
pub(crate) struct Choice {
    pub mode: String,
    pub networks: Vec<Attachment>,
    pub ports: Vec<PortBinding>,
}

/// Checks `--network`, `--network-alias`, `--ip`, `-p` and `-P` (the image's EXPOSEd
/// ports, `exposed`).
pub(crate) fn choose(
    mode: &str,
    aliases: &[String],
    ip: Option<Ipv4Addr>,
    publish: &[String],
    publish_all: bool,
    exposed: &[String],
) -> anyhow::Result<Choice> {
    let mut ports = Vec::new();
    for p in publish {
        ports.extend(kiln_runtime::networks::ports::parse(p)?);
    }
    if publish_all {
        for e in exposed {
            let spec = e.trim();
            for mut b in kiln_runtime::networks::ports::parse(spec)
                .with_context(|| format!("the image's EXPOSE {spec}"))?
            {
                b.host_port = 0;
                if !ports
                    .iter()
                    .any(|p| p.container_port == b.container_port && p.protocol == b.protocol)
                {
                    ports.push(b);
                }
            }
        }
    }
    let root = Store::default_root();
    let networks = Networks::open(&root)?;
    match mode {
        "host" | "none" => {
            if !aliases.is_empty() || ip.is_some() {
                bail!("--network-alias and --ip need a user-defined network (--network {mode} has none)");
            }
            if !ports.is_empty() && mode == "none" {
                bail!("-p and -P need a network: --network none has none");
            }
            // docker discards published ports in host mode: the ports are the host's.
            if !ports.is_empty() {
                eprintln!("WARNING: Published ports are discarded when using host network mode");
            }
            return Ok(Choice {
                mode: mode.to_string(),
                networks: Vec::new(),
                ports: Vec::new(),
            });
        }
        m if m.starts_with("container:") => {
            if !ports.is_empty() || !aliases.is_empty() || ip.is_some() {
                bail!("conflicting options: -p, --network-alias and --ip cannot be used with --network container:");
            }
            Containers::open(&root)?.find(&m["container:".len()..])?;
            return Ok(Choice {
                mode: m.to_string(),
                networks: Vec::new(),
                ports: Vec::new(),
            });
        }
        _ => {}
    }
    let network = networks.find(mode)?;
    if matches!(network.driver, Driver::Host | Driver::Null) {
        return choose(&network.name, aliases, ip, publish, publish_all, exposed);
    }
    if !aliases.is_empty() && !network.resolves_names() {
        bail!("network-scoped aliases are supported only for containers on user-defined networks");
    }
    if ip.is_some() && network.name == DEFAULT_NETWORK {
        bail!("--ip: user specified IP address is supported on user defined networks only");
    }
    Ok(Choice {
        mode: network.name.clone(),
        networks: vec![Attachment {
            network: network.name,
            aliases: aliases.to_vec(),
            ip,
        }],
        ports,
    })
}

/// The network namespace a container joins as it starts, and (for bridge and macvlan
/// networks) its interfaces set up there: its namespace, endpoints and held ports stay
/// until the returned `Wired` is released.
pub(crate) fn wire(
    container: &Container,
) -> anyhow::Result<(kiln_runtime::Network, Option<Wired>)> {
    let c = &container.config;
    match c.network.as_str() {
        "host" => return Ok((kiln_runtime::Network::Host, None)),
        "none" => return Ok((kiln_runtime::Network::Loopback, None)),
        m if m.starts_with("container:") => {
            let name = &m["container:".len()..];
            let mut other = Containers::open(&Store::default_root())?.find(name)?;
            other.settle();
            if other.state.status != Status::Running || other.state.pid == 0 {
                bail!("cannot join the network of container {name}: it is not running");
            }
            let path = if other.netns().exists() {
                other.netns()
            } else {
                PathBuf::from(format!("/proc/{}/ns/net", other.state.pid))
            };
            return Ok((kiln_runtime::Network::Join(path), None));
        }
        _ => {}
    }
    if c.networks.is_empty() {
        return Ok((kiln_runtime::Network::Loopback, None));
    }
    let networks = Networks::open(&Store::default_root())?;
    let wired = networks.wire(
        &member(container, std::process::id()),
        &c.networks,
        &c.ports,
    )?;
    Ok((
        kiln_runtime::Network::Join(wired.netns.clone()),
        Some(wired),
    ))
}

/// Undoes [`wire`] (its namespace, endpoints and forwarded ports).
pub(crate) fn release(container: &Container) -> anyhow::Result<()> {
    Networks::open(&Store::default_root())?.release(&container.config.id, &container.netns())?;
    Ok(())
}

/// A running container's endpoints, with their networks.
pub(crate) fn endpoints(container: &Container) -> Vec<(Network, Endpoint)> {
    Networks::open(&Store::default_root())
        .and_then(|n| n.endpoints_of(&container.config.id))
        .unwrap_or_default()
}

/// A running container's published ports, as `docker ps` and `docker port` show them.
pub(crate) fn published(container: &Container) -> Vec<PortBinding> {
    endpoints(container)
        .into_iter()
        .flat_map(|(_, e)| e.ports)
        .collect()
}

/// The network namespace a build's RUN steps share (`RUN --network=default`): an
/// endpoint on the default bridge — out through its NAT, to nothing of the host's own —
/// made by the first step that needs it (so a cached build makes none) and released
/// when the build ends; a crashed build's is swept, its process being the endpoint's
/// owner.
pub(crate) struct BuildNetwork {
    wired: std::sync::Mutex<Option<Wired>>,
    id: String,
    /// RUN's resolv.conf names the embedded answerer: serve it.
    embedded_dns: bool,
}

impl BuildNetwork {
    pub(crate) fn new(embedded_dns: bool) -> anyhow::Result<BuildNetwork> {
        Ok(BuildNetwork {
            wired: std::sync::Mutex::new(None),
            id: format!("build{}", super::run::random_id()?),
            embedded_dns,
        })
    }

    /// Its namespace, made on first use.
    pub(crate) fn namespace(&self) -> anyhow::Result<PathBuf> {
        let mut wired = self.wired.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = wired.as_ref() {
            return Ok(w.netns.clone());
        }
        let root = Store::default_root();
        let networks = Networks::open(&root)?;
        let netns = root.join("tmp").join(format!("netns-{}", &self.id[..24]));
        let member = Member {
            id: &self.id,
            name: "build",
            supervisor: std::process::id(),
            netns,
            mac: None,
            builder: true,
        };
        let made = networks.wire(
            &member,
            &[Attachment {
                network: DEFAULT_NETWORK.to_string(),
                ..Attachment::default()
            }],
            &[],
        )?;
        if self.embedded_dns {
            kiln_runtime::networks::dns::serve(
                &root,
                &self.id,
                &made.netns,
                super::etc::EMBEDDED_DNS,
                super::etc::upstream_servers(&Default::default()),
            )?;
        }
        let path = made.netns.clone();
        *wired = Some(made);
        Ok(path)
    }
}

impl Drop for BuildNetwork {
    fn drop(&mut self) {
        let wired = self.wired.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = wired.take() {
            if let Ok(networks) = Networks::open(&Store::default_root()) {
                let _ = networks.release(&self.id, &w.netns);
            }
        }
    }
}

#[derive(clap::Args)]
pub struct PortArgs {
    container: String,
    /// PORT[/PROTOCOL]: only this port's bindings.
    port: Option<String>,
}

/// `kiln port CONTAINER [PORT[/PROTO]]`: docker's lines, `80/tcp -> 0.0.0.0:8080`.
pub fn port(args: PortArgs) -> anyhow::Result<ExitCode> {
    let (_, containers) = open()?;
    let c = containers.find(&args.container)?;
    let mut bindings = published(&c);
    if let Some(wanted) = &args.port {
        let wanted = if wanted.contains('/') {
            wanted.clone()
        } else {
            format!("{wanted}/tcp")
        };
        bindings.retain(|b| b.container() == wanted);
        if bindings.is_empty() {
            bail!("No public port '{wanted}' published for {}", args.container);
        }
        for b in bindings {
            println!("{}", b.host());
        }
    } else {
        for b in bindings {
            println!("{} -> {}", b.container(), b.host());
        }
    }
    Ok(ExitCode::SUCCESS)
}
