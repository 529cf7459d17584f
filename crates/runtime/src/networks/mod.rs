//! Container networks without a daemon: each one a file `KILN_ROOT/networks/<id>.json`
//! and a directory `networks/<id>/` of its endpoints (one file per running container on
//! it: its address, names and published ports — what address allocation, name
//! resolution and the firewall read). Changes hold `networks/.lock`.
//!
//! A container's network namespace is made before it starts and kept as a file in its
//! directory (`netns`); a bridge network gives it a veth pair (the host end on the
//! network's bridge, `eth0` inside), a macvlan network an interface on the parent
//! device. Links, addresses and routes go through rtnetlink (the `netlink` module), NAT,
//! port publishing and isolation through nftables (the `firewall` module). Releasing a
//! container unmounts its namespace (the kernel then deletes its interfaces, veth peers
//! included) and removes its endpoints; endpoints whose supervisor died are released by
//! the next change, so a crash leaves nothing for long. A bridge's alias names its
//! network's file, so the bridges of a store removed whole are removed by the next store
//! that sets up its networks.

pub mod dns;
mod firewall;
mod ipam;
mod netlink;
mod netns;
pub mod ports;
mod wiring;

use std::collections::BTreeMap;
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::containers::{read_json, write_json};
use crate::error::Error;
pub use ipam::parse_mac;
pub use ipnet::Ipv4Net;
pub use ports::{PortBinding, Protocol};
pub use wiring::{Member, Wired};

/// The network `kiln run` uses when not told: docker's `bridge`, on the `kiln0` bridge
/// (`kiln1`, … for the stores made after it on the same host: each store has its own
/// networks, and its own firewall table named after its bridge).
pub const DEFAULT_NETWORK: &str = "bridge";

/// How a bridge's alias (`ip link`'s) starts: the rest is the path of its network's file.
const BRIDGE_ALIAS: &str = "kiln network ";

/// A network's driver, docker's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// A Linux bridge on the host, containers on veths, NAT out (unless internal).
    Bridge,
    /// macvlan interfaces on a parent device: containers appear on its network.
    Macvlan,
    /// `host` and `none`, listed as docker lists them; nothing to set up.
    Host,
    /// `none`: loopback only.
    Null,
}

impl Driver {
    /// docker's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Macvlan => "macvlan",
            Driver::Host => "host",
            Driver::Null => "null",
        }
    }
}

/// A network, as `network create` made it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    /// Its ID: 64 hex digits.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its driver.
    pub driver: Driver,
    /// None for `host` and `none`.
    pub subnet: Option<Ipv4Net>,
    /// The gateway's address: the bridge's (None for `host` and `none`).
    pub gateway: Option<Ipv4Addr>,
    /// No route out: containers reach each other only.
    pub internal: bool,
    /// The bridge (bridge driver) or the parent device (macvlan).
    pub interface: String,
    /// `--label`s.
    pub labels: BTreeMap<String, String>,
    /// `-o`: driver options (`parent` for macvlan).
    pub options: BTreeMap<String, String>,
    /// RFC 3339.
    pub created: String,
}

impl Network {
    /// Containers on it find each other by name (user networks; docker's default
    /// bridge does not).
    pub fn resolves_names(&self) -> bool {
        self.name != DEFAULT_NETWORK && matches!(self.driver, Driver::Bridge | Driver::Macvlan)
    }
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NetworkRequest {
    /// Its name.
    pub name: String,
    /// `--driver` (default bridge).
    pub driver: Option<Driver>,
    /// `--subnet` (default: the first free one of the default pools).
    pub subnet: Option<Ipv4Net>,
    /// `--gateway` (default: the subnet's first address).
    pub gateway: Option<Ipv4Addr>,
    /// `--internal`: no route out.
    pub internal: bool,
    /// `--label`s.
    pub labels: BTreeMap<String, String>,
    /// `-o`: driver options.
    pub options: BTreeMap<String, String>,
}

/// A running container's place on a network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The container's ID.
    pub container_id: String,
    /// The network's ID.
    pub network_id: String,
    /// Its interface in the container (`eth0`, `eth1`, ...).
    pub interface: String,
    /// The veth's host end (empty for macvlan).
    pub host_interface: String,
    /// Its address.
    pub address: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix: u8,
    /// The network's gateway (none on an internal network).
    pub gateway: Option<Ipv4Addr>,
    /// Its interface's MAC address.
    pub mac: String,
    /// The names it answers to on this network: the container's name, its short ID,
    /// its `--network-alias`es.
    pub names: Vec<String>,
    /// The host ports published to this address (the first network's endpoint).
    pub ports: Vec<PortBinding>,
    /// The container's supervisor: the endpoint is stale once it is gone.
    pub supervisor: u32,
    /// The container's network namespace (`containers/<id>/netns`).
    pub netns: PathBuf,
}

/// How a container joins a network (`--network`, `--network-alias`, `--ip`, or
/// `network connect`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The network's name or ID.
    pub network: String,
    /// `--network-alias`: more names it answers to here.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--ip`: the address it asks for (default: the first free one).
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
}

/// The networks under a kiln root.
pub struct Networks {
    dir: PathBuf,
}

impl Networks {
    /// Opens (and on first use makes) the networks of `root`, docker's three predefined
    /// ones among them.
    pub fn open(root: &Path) -> Result<Networks, Error> {
        let dir = root.join("networks");
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            op: "create",
            path: dir.clone(),
            source,
        })?;
        let networks = Networks { dir };
        if !networks.dir.join(".predefined").exists() {
            let _held = networks.lock()?;
            if !networks.dir.join(".predefined").exists() {
                networks.predefine()?;
            }
        }
        Ok(networks)
    }

    fn predefine(&self) -> Result<(), Error> {
        self.reclaim_abandoned_bridges()?;
        let taken = self.taken_subnets()?;
        let subnet = ipam::free_subnet(&taken)?;
        // Another store on this host may have kiln0 already.
        let mut nl = netlink::Netlink::open().map_err(netlink_error("open"))?;
        let mut default_bridge = None;
        for n in 0.. {
            let name = format!("kiln{n}");
            if nl
                .link_index(&name)
                .map_err(netlink_error("look up the bridge names in use"))?
                .is_none()
            {
                default_bridge = Some(name);
                break;
            }
        }
        for (name, driver) in [
            (DEFAULT_NETWORK, Driver::Bridge),
            ("host", Driver::Host),
            ("none", Driver::Null),
        ] {
            let bridge = driver == Driver::Bridge;
            self.save(&Network {
                id: random_id()?,
                name: name.to_string(),
                driver,
                subnet: bridge.then_some(subnet),
                gateway: bridge.then(|| ipam::first_host(subnet)),
                internal: false,
                interface: if bridge {
                    default_bridge.clone().unwrap_or_default()
                } else {
                    String::new()
                },
                labels: BTreeMap::new(),
                // As docker's default bridge says of itself in `network inspect`.
                options: match (bridge, &default_bridge) {
                    (true, Some(name)) => BTreeMap::from([
                        (
                            "com.docker.network.bridge.default_bridge".to_string(),
                            "true".to_string(),
                        ),
                        ("com.docker.network.bridge.name".to_string(), name.clone()),
                    ]),
                    _ => BTreeMap::new(),
                },
                created: now(),
            })?;
        }
        File::create(self.dir.join(".predefined")).map_err(|source| Error::Io {
            op: "create",
            path: self.dir.join(".predefined"),
            source,
        })?;
        Ok(())
    }

    fn lock(&self) -> Result<Flock<File>, Error> {
        let path = self.dir.join(".lock");
        let file = File::create(&path).map_err(|source| Error::Io {
            op: "create",
            path: path.clone(),
            source,
        })?;
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| Error::Io {
            op: "lock",
            path,
            source: e.into(),
        })
    }

    fn save(&self, network: &Network) -> Result<(), Error> {
        write_json(&self.dir.join(format!("{}.json", network.id)), network)
    }

    /// Every network, by name.
    pub fn list(&self) -> Result<Vec<Network>, Error> {
        let read = std::fs::read_dir(&self.dir).map_err(|source| Error::Io {
            op: "read",
            path: self.dir.clone(),
            source,
        })?;
        let mut networks = Vec::new();
        for entry in read.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                networks.push(read_json::<Network>(&path)?);
            }
        }
        networks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(networks)
    }

    /// The network named `what`, or whose ID is or starts with it.
    pub fn find(&self, what: &str) -> Result<Network, Error> {
        let all = self.list()?;
        if let Some(n) = all.iter().find(|n| n.name == what || n.id == what) {
            return Ok(n.clone());
        }
        let mut prefixed = all.into_iter().filter(|n| n.id.starts_with(what));
        match (prefixed.next(), prefixed.next()) {
            (Some(n), None) if !what.is_empty() => Ok(n),
            _ => Err(Error::NoSuchNetwork {
                name: what.to_string(),
            }),
        }
    }

    /// Makes a network; its bridge comes with the first container on it.
    pub fn create(&self, request: NetworkRequest) -> Result<Network, Error> {
        let _held = self.lock()?;
        if self.list()?.iter().any(|n| n.name == request.name) {
            return Err(Error::NetworkExists { name: request.name });
        }
        let driver = request.driver.unwrap_or(Driver::Bridge);
        self.reclaim_abandoned_bridges()?;
        let id = random_id()?;
        let interface = match driver {
            Driver::Bridge => request
                .options
                .get("com.docker.network.bridge.name")
                .cloned()
                .unwrap_or_else(|| format!("br-{}", &id[..12])),
            Driver::Macvlan => {
                let parent = request.options.get("parent").cloned().ok_or_else(|| {
                    Error::NetworkRequest {
                        reason: "a macvlan network needs its parent interface: -o parent=IF"
                            .to_string(),
                    }
                })?;
                let mut nl = netlink::Netlink::open().map_err(netlink_error("open"))?;
                if nl
                    .link_index(&parent)
                    .map_err(netlink_error("look up the parent interface"))?
                    .is_none()
                {
                    return Err(Error::NetworkRequest {
                        reason: format!("-o parent={parent}: no such interface on this host"),
                    });
                }
                parent
            }
            Driver::Host | Driver::Null => {
                return Err(Error::NetworkRequest {
                    reason: format!(
                        "only one {} network can exist: use --network {}",
                        driver.name(),
                        if driver == Driver::Host {
                            "host"
                        } else {
                            "none"
                        }
                    ),
                })
            }
        };
        // A macvlan network's subnet is its parent's link's: the host routes it already.
        let taken = if driver == Driver::Macvlan {
            self.list()?.iter().filter_map(|n| n.subnet).collect()
        } else {
            self.taken_subnets()?
        };
        let subnet = match request.subnet {
            Some(subnet) => {
                let subnet = subnet.trunc();
                if let Some(other) = taken.iter().find(|t| ipam::overlap(t, &subnet)) {
                    return Err(Error::SubnetOverlap {
                        subnet: subnet.to_string(),
                        other: other.to_string(),
                    });
                }
                subnet
            }
            None => ipam::free_subnet(&taken)?,
        };
        let gateway = match request.gateway {
            Some(g) if !subnet.contains(&g) => {
                return Err(Error::AddressOutsideSubnet {
                    address: g.to_string(),
                    subnet: subnet.to_string(),
                })
            }
            Some(g) => g,
            None => ipam::first_host(subnet),
        };
        let network = Network {
            id,
            name: request.name,
            driver,
            subnet: Some(subnet),
            gateway: Some(gateway),
            internal: request.internal,
            interface,
            labels: request.labels,
            options: request.options,
            created: now(),
        };
        self.save(&network)?;
        Ok(network)
    }

    /// Removes a network no running container is on (its bridge and rules with it).
    pub fn remove(&self, what: &str) -> Result<Network, Error> {
        let _held = self.lock()?;
        self.sweep()?;
        let network = self.find(what)?;
        if matches!(network.name.as_str(), DEFAULT_NETWORK | "host" | "none") {
            return Err(Error::PredefinedNetwork { name: network.name });
        }
        let endpoints = self.endpoints(&network.id)?;
        if !endpoints.is_empty() {
            return Err(Error::NetworkInUse {
                name: network.name,
                containers: endpoints.len(),
            });
        }
        let _ = std::fs::remove_dir_all(self.dir.join(&network.id));
        let path = self.dir.join(format!("{}.json", network.id));
        std::fs::remove_file(&path).map_err(|source| Error::Io {
            op: "remove",
            path,
            source,
        })?;
        if network.driver == Driver::Bridge {
            let mut nl = netlink::Netlink::open().map_err(netlink_error("open"))?;
            if let Some(index) = nl
                .link_index(&network.interface)
                .map_err(netlink_error("look up the bridge"))?
            {
                nl.delete_link(index)
                    .map_err(netlink_error("delete the bridge"))?;
            }
            self.apply_firewall()?;
        }
        Ok(network)
    }

    /// The endpoints on a network (running containers), stale ones included.
    pub fn endpoints(&self, network_id: &str) -> Result<Vec<Endpoint>, Error> {
        let dir = self.dir.join(network_id);
        let Ok(read) = std::fs::read_dir(&dir) else {
            return Ok(Vec::new());
        };
        let mut endpoints = Vec::new();
        for entry in read.flatten() {
            if entry.path().extension().is_some_and(|e| e == "json") {
                // One removed since the directory was read is simply not there.
                if let Ok(e) = read_json::<Endpoint>(&entry.path()) {
                    endpoints.push(e);
                }
            }
        }
        endpoints.sort_by_key(|e| e.address);
        Ok(endpoints)
    }

    /// Every endpoint of a container.
    pub fn endpoints_of(&self, container_id: &str) -> Result<Vec<(Network, Endpoint)>, Error> {
        let mut found = Vec::new();
        for network in self.list()? {
            let path = self.endpoint_path(&network.id, container_id);
            if let Ok(endpoint) = read_json::<Endpoint>(&path) {
                found.push((network.clone(), endpoint));
            }
        }
        found.sort_by(|a, b| a.1.interface.cmp(&b.1.interface));
        Ok(found)
    }

    fn endpoint_path(&self, network_id: &str, container_id: &str) -> PathBuf {
        self.dir
            .join(network_id)
            .join(format!("{container_id}.json"))
    }

    /// `network prune`: removes the networks no container is on (but the predefined
    /// ones) and what crashed containers left; the names of those removed.
    pub fn prune(&self, in_use: &[String]) -> Result<Vec<String>, Error> {
        self.release_orphans()?;
        let mut removed = Vec::new();
        for network in self.list()? {
            if matches!(network.name.as_str(), DEFAULT_NETWORK | "host" | "none")
                || in_use.contains(&network.name)
                || !self.endpoints(&network.id)?.is_empty()
            {
                continue;
            }
            self.remove(&network.id)?;
            removed.push(network.name);
        }
        Ok(removed)
    }

    /// The firewall made again from the networks and the published ports. Under the
    /// lock.
    fn apply_firewall(&self) -> Result<(), Error> {
        let mut bridges = Vec::new();
        let mut published = Vec::new();
        let mut table = String::new();
        for network in self.list()? {
            if network.name == DEFAULT_NETWORK {
                table.clone_from(&network.interface);
            }
            if network.driver != Driver::Bridge {
                continue;
            }
            if let Some(subnet) = network.subnet {
                bridges.push(firewall::Bridge {
                    interface: network.interface.clone(),
                    subnet: (subnet.network(), subnet.prefix_len()),
                    internal: network.internal,
                    builders: (network.name == DEFAULT_NETWORK)
                        .then(|| ipam::builder_range(subnet))
                        .flatten()
                        .map(|r| (r.network(), r.prefix_len())),
                });
            }
            for e in self.endpoints(&network.id)? {
                if !e.ports.is_empty() {
                    published.push(firewall::Published {
                        address: e.address,
                        ports: e.ports,
                    });
                }
            }
        }
        firewall::apply(&table, &bridges, &published)
    }

    /// What a bridge's alias says: the file of the network it was made for (see
    /// [`Networks::reclaim_abandoned_bridges`]).
    fn bridge_alias(&self, network_id: &str) -> String {
        // Absolute: another process, in another directory, reads it (`KILN_ROOT` may be
        // relative).
        let dir = std::fs::canonicalize(&self.dir).unwrap_or_else(|_| self.dir.clone());
        format!(
            "{BRIDGE_ALIAS}{}",
            dir.join(format!("{network_id}.json")).display()
        )
    }

    /// Removes the bridges, and their firewall tables, of networks whose file is gone:
    /// a store removed whole (a CI job's `KILN_ROOT`, `rm -rf`) cannot remove them
    /// itself, and each would keep its subnet's route, so after 31 such stores no subnet
    /// of the default pools would be free. Under the lock; before subnets are chosen.
    fn reclaim_abandoned_bridges(&self) -> Result<(), Error> {
        let mut nl = netlink::Netlink::open().map_err(netlink_error("open"))?;
        let links = nl.links().map_err(netlink_error("list the links"))?;
        for (index, name, alias) in links {
            let Some(file) = alias.strip_prefix(BRIDGE_ALIAS) else {
                continue;
            };
            if Path::new(file).exists() {
                continue;
            }
            nl.delete_link(index)
                .map_err(netlink_error("delete the bridge of a removed network"))?;
            // A store's table is named after its default bridge: gone with it (a table
            // of another name is not there, and removing it does nothing).
            firewall::apply(&name, &[], &[])?;
        }
        Ok(())
    }

    /// The subnets of kiln's networks and of the host's routes.
    fn taken_subnets(&self) -> Result<Vec<Ipv4Net>, Error> {
        let mut taken: Vec<Ipv4Net> = self.list()?.iter().filter_map(|n| n.subnet).collect();
        let routed = netlink::Netlink::open()
            .and_then(|mut nl| nl.routed_prefixes())
            .map_err(netlink_error("read the host's routes"))?;
        taken.extend(
            routed
                .into_iter()
                .filter_map(|(address, len)| Ipv4Net::new(address, len).ok()),
        );
        Ok(taken)
    }
}

fn netlink_error(op: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |source| Error::Netlink { op, source }
}

fn random_id() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(|source| Error::Io {
            op: "read",
            path: PathBuf::from("/dev/urandom"),
            source,
        })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}
