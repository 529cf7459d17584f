//! Container networks without a daemon: each one a file `KILN_ROOT/networks/<id>.json`
//! and a directory `networks/<id>/` of its endpoints (one file per running container on
//! it: its address, names and published ports — what address allocation, name
//! resolution and the firewall read). Changes hold `networks/.lock`.
//!
//! A container's network namespace is made before it starts and kept as a file in its
//! directory (`netns`); a bridge network gives it a veth pair (the host end on the
//! network's bridge, `eth0` inside), a macvlan network an interface on the parent
//! device. Links, addresses and routes go through rtnetlink ([`netlink`]), NAT, port
//! publishing and isolation through nftables ([`firewall`]). Releasing a container
//! unmounts its namespace (the kernel then deletes its interfaces, veth peers included)
//! and removes its endpoints; endpoints whose supervisor died are released by the next
//! change, so a crash leaves nothing for long.

pub mod dns;
mod firewall;
mod ipam;
mod netlink;
mod netns;
pub mod ports;

use std::collections::BTreeMap;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use rtnetlink::packet_route::link::{InfoMacVlan, MacVlanMode};
use rtnetlink::{LinkBridge, LinkMacVlan, LinkMessageBuilder, LinkUnspec, LinkVeth};
use serde::{Deserialize, Serialize};

use crate::containers::{read_json, write_json};
use crate::error::Error;
pub use ipam::parse_mac;
pub use ipnet::Ipv4Net;
pub use ports::{PortBinding, Protocol};

/// The network `kiln run` uses when not told: docker's `bridge`, on the `kiln0` bridge.
pub const DEFAULT_NETWORK: &str = "bridge";
const DEFAULT_BRIDGE: &str = "kiln0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Bridge,
    Macvlan,
    /// `host` and `none`, listed as docker lists them; nothing to set up.
    Host,
    Null,
}

impl Driver {
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
    pub id: String,
    pub name: String,
    pub driver: Driver,
    /// None for `host` and `none`.
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    /// No route out: containers reach each other only.
    pub internal: bool,
    /// The bridge (bridge driver) or the parent device (macvlan).
    pub interface: String,
    pub labels: BTreeMap<String, String>,
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
    pub name: String,
    pub driver: Option<Driver>,
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

/// A running container's place on a network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub container_id: String,
    pub network_id: String,
    /// Its interface in the container (`eth0`, `eth1`, ...), and the veth's host end
    /// (empty for macvlan).
    pub interface: String,
    pub host_interface: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
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
    /// A build's RUN namespace: nothing of the host's own (its addresses' services)
    /// answers it.
    #[serde(default)]
    pub builder: bool,
}

/// How a container joins a network (`--network`, `--network-alias`, `--ip`, or
/// `network connect`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub network: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
}

/// Who a container is, for its endpoints.
pub struct Member<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub supervisor: u32,
    pub netns: PathBuf,
    pub mac: Option<&'a str>,
    /// A build's RUN steps, not a container: see [`Endpoint::builder`].
    pub builder: bool,
}

/// A container's network while it runs: its namespace (to join), its endpoints, and the
/// sockets that hold its published host ports.
pub struct Wired {
    pub netns: PathBuf,
    pub endpoints: Vec<Endpoint>,
    pub ports: Vec<PortBinding>,
    _reserved: Vec<OwnedFd>,
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
        let taken = self.taken_subnets()?;
        let subnet = ipam::free_subnet(&taken)?;
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
                    DEFAULT_BRIDGE.to_string()
                } else {
                    String::new()
                },
                labels: BTreeMap::new(),
                options: BTreeMap::new(),
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

    /// Sets up a container's network before it starts: its namespace at
    /// `member.netns`, an interface on each network of `attachments` (the first one's
    /// gateway its default route), its published ports held and forwarded. On failure
    /// nothing is left.
    pub fn wire(
        &self,
        member: &Member,
        attachments: &[Attachment],
        ports: &[PortBinding],
    ) -> Result<Wired, Error> {
        let mut ports = ports.to_vec();
        let reserved = ports::reserve(&mut ports)?;
        let _ = netns::remove(&member.netns);
        netns::create(&member.netns).map_err(|source| Error::Io {
            op: "create the network namespace",
            path: member.netns.clone(),
            source,
        })?;
        let wired = (|| {
            let _held = self.lock()?;
            self.sweep()?;
            let mut endpoints = Vec::new();
            for (n, attachment) in attachments.iter().enumerate() {
                let published = if n == 0 { ports.as_slice() } else { &[] };
                endpoints.push(self.join(member, attachment, n, published)?);
            }
            if !ports.is_empty() || member.builder {
                self.apply_firewall()?;
            }
            Ok(endpoints)
        })();
        match wired {
            Ok(endpoints) => Ok(Wired {
                netns: member.netns.clone(),
                endpoints,
                ports,
                _reserved: reserved,
            }),
            Err(e) => {
                let _ = self.release(member.id, &member.netns);
                Err(e)
            }
        }
    }

    /// `network connect`: a running container joins one more network (its next
    /// `ethN`).
    pub fn connect(&self, member: &Member, attachment: &Attachment) -> Result<Endpoint, Error> {
        let _held = self.lock()?;
        self.sweep()?;
        let network = self.find(&attachment.network)?;
        if self.endpoint_path(&network.id, member.id).exists() {
            return Err(Error::AlreadyConnected {
                container: member.name.to_string(),
                network: network.name,
            });
        }
        let next = self.endpoints_of(member.id)?.len();
        self.join(member, attachment, next, &[])
    }

    /// `network disconnect`: its interface on `network` removed from the running
    /// container.
    pub fn disconnect(&self, container_id: &str, network: &Network) -> Result<(), Error> {
        let _held = self.lock()?;
        let path = self.endpoint_path(&network.id, container_id);
        let endpoint: Endpoint = read_json(&path)?;
        netns::within(&endpoint.netns, || {
            let mut nl = netlink::Netlink::open()?;
            if let Some(index) = nl.link_index(&endpoint.interface)? {
                nl.delete_link(index)?;
            }
            Ok(())
        })
        .map_err(netlink_error("remove the interface"))?;
        std::fs::remove_file(&path).map_err(|source| Error::Io {
            op: "remove",
            path,
            source,
        })
    }

    /// Everything `wire` and `connect` made for a container: its endpoints, its
    /// namespace (and with it its interfaces), its forwarded ports. Idempotent.
    pub fn release(&self, container_id: &str, netns_path: &Path) -> Result<(), Error> {
        let _held = self.lock()?;
        let had_ports = self.forget(container_id)?;
        netns::remove(netns_path).map_err(|source| Error::Io {
            op: "remove the network namespace",
            path: netns_path.to_path_buf(),
            source,
        })?;
        if had_ports {
            self.apply_firewall()?;
        }
        Ok(())
    }

    /// Removes a container's endpoint files; whether the firewall named one (its
    /// published ports, a build's namespace).
    fn forget(&self, container_id: &str) -> Result<bool, Error> {
        let mut had_ports = false;
        for (network, endpoint) in self.endpoints_of(container_id)? {
            had_ports |= !endpoint.ports.is_empty() || endpoint.builder;
            let path = self.endpoint_path(&network.id, container_id);
            std::fs::remove_file(&path).map_err(|source| Error::Io {
                op: "remove",
                path,
                source,
            })?;
        }
        Ok(had_ports)
    }

    /// Releases the endpoints whose supervisor is gone (killed, or the machine
    /// restarted): their addresses and ports are free again. Under the lock.
    fn sweep(&self) -> Result<(), Error> {
        let mut changed = false;
        for network in self.list()? {
            for e in self.endpoints(&network.id)? {
                if !crate::containers::alive(e.supervisor) {
                    changed |= self.forget(&e.container_id)?;
                    let _ = netns::remove(&e.netns);
                }
            }
        }
        if changed {
            self.apply_firewall()?;
        }
        Ok(())
    }

    /// Releases what containers whose supervisor died left on the networks (their
    /// namespaces, interfaces, addresses and ports), as `system restore` does after a
    /// crash or a reboot.
    pub fn release_orphans(&self) -> Result<(), Error> {
        let _held = self.lock()?;
        self.sweep()
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

    /// Joins the container (namespace at `member.netns`) to one network as `eth{n}`,
    /// and writes its endpoint. Under the lock.
    fn join(
        &self,
        member: &Member,
        attachment: &Attachment,
        n: usize,
        ports: &[PortBinding],
    ) -> Result<Endpoint, Error> {
        let network = self.find(&attachment.network)?;
        let (Some(subnet), Some(gateway)) = (network.subnet, network.gateway) else {
            return Err(Error::NetworkRequest {
                reason: format!(
                    "network {} ({}) is not one a container joins: use --network {}",
                    network.name,
                    network.driver.name(),
                    network.name
                ),
            });
        };
        let taken: Vec<Ipv4Addr> = self
            .endpoints(&network.id)?
            .iter()
            .map(|e| e.address)
            .chain([gateway])
            .collect();
        let address = match attachment.ip {
            Some(ip) if !subnet.contains(&ip) => {
                return Err(Error::AddressOutsideSubnet {
                    address: ip.to_string(),
                    subnet: subnet.to_string(),
                })
            }
            Some(ip) if taken.contains(&ip) => {
                return Err(Error::AddressInUse {
                    address: ip.to_string(),
                    network: network.name.clone(),
                })
            }
            Some(ip) => ip,
            None => ipam::free_address(subnet, &taken).ok_or_else(|| Error::NoFreeAddress {
                network: network.name.clone(),
            })?,
        };
        let mac = match (n, member.mac) {
            (0, Some(mac)) => mac.to_string(),
            _ => ipam::mac_of(address),
        };
        let mut names = vec![member.name.to_string(), member.id[..12].to_string()];
        names.extend(attachment.aliases.iter().cloned());
        let endpoint = Endpoint {
            container_id: member.id.to_string(),
            network_id: network.id.clone(),
            interface: format!("eth{n}"),
            host_interface: if network.driver == Driver::Bridge {
                format!("veth{}", &random_id()?[..8])
            } else {
                String::new()
            },
            address,
            prefix: subnet.prefix_len(),
            // An internal network has no way out: no default route through it.
            gateway: (!network.internal).then_some(gateway),
            mac,
            names,
            ports: ports.to_vec(),
            supervisor: member.supervisor,
            netns: member.netns.clone(),
            builder: member.builder,
        };
        let dir = self.dir.join(&network.id);
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            op: "create",
            path: dir,
            source,
        })?;
        let path = self.endpoint_path(&network.id, member.id);
        write_json(&path, &endpoint)?;
        let linked = self
            .link(&network, &endpoint, n == 0)
            .map_err(netlink_error("set up the container's interface"));
        if let Err(e) = linked {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Ok(endpoint)
    }

    /// The interface: a veth pair to the bridge (made first when missing — after a
    /// restart, or for the first container of a network) or a macvlan interface; then
    /// its address, and (`route`) the default route.
    fn link(&self, network: &Network, endpoint: &Endpoint, route: bool) -> std::io::Result<()> {
        let namespace = File::open(&endpoint.netns)?;
        let mut nl = netlink::Netlink::open()?;
        let mac = ipam::parse_mac(&endpoint.mac)
            .ok_or_else(|| std::io::Error::other(format!("MAC address {:?}", endpoint.mac)))?;
        let inside = |name: &str| {
            LinkMessageBuilder::<LinkUnspec>::new()
                .name(name.to_string())
                .address(mac.to_vec())
                .setns_by_fd(namespace.as_raw_fd())
        };
        match network.driver {
            Driver::Bridge => {
                let bridge = match nl.link_index(&network.interface)? {
                    Some(index) => index,
                    None => self.make_bridge(&mut nl, network)?,
                };
                let peer = inside(&endpoint.interface).build();
                let veth = LinkVeth::new(&endpoint.host_interface, &endpoint.interface)
                    .set_info_data(rtnetlink::packet_route::link::InfoData::Veth(
                        rtnetlink::packet_route::link::InfoVeth::Peer(peer),
                    ))
                    .controller(bridge)
                    .up()
                    .build();
                nl.add_link(veth)?;
            }
            Driver::Macvlan => {
                let parent = nl.link_index(&network.interface)?.ok_or_else(|| {
                    std::io::Error::other(format!(
                        "the parent interface {} is gone",
                        network.interface
                    ))
                })?;
                let macvlan = LinkMacVlan::new(&endpoint.interface, parent, MacVlanMode::Bridge)
                    .append_info_data(InfoMacVlan::Mode(MacVlanMode::Bridge))
                    .address(mac.to_vec())
                    .setns_by_fd(namespace.as_raw_fd())
                    .build();
                nl.add_link(macvlan)?;
            }
            Driver::Host | Driver::Null => return Ok(()),
        }
        netns::within(&endpoint.netns, || {
            let mut nl = netlink::Netlink::open()?;
            let index = nl
                .link_index(&endpoint.interface)?
                .ok_or_else(|| std::io::Error::other("the interface did not arrive"))?;
            nl.add_address(index, endpoint.address, endpoint.prefix)?;
            nl.set_link(LinkUnspec::new_with_index(index).up().build())?;
            match endpoint.gateway {
                Some(gateway) if route => nl.add_default_route(gateway),
                _ => Ok(()),
            }
        })
    }

    /// The network's bridge, with the gateway's address, forwarding on and its rules.
    fn make_bridge(&self, nl: &mut netlink::Netlink, network: &Network) -> std::io::Result<u32> {
        let (Some(subnet), Some(gateway)) = (network.subnet, network.gateway) else {
            return Err(std::io::Error::other("a bridge network without a subnet"));
        };
        match nl.add_link(LinkBridge::new(&network.interface).up().build()) {
            Err(e) if e.raw_os_error() != Some(nix::libc::EEXIST) => return Err(e),
            _ => {}
        }
        let index = nl
            .link_index(&network.interface)?
            .ok_or_else(|| std::io::Error::other("the bridge did not appear"))?;
        nl.add_address(index, gateway, subnet.prefix_len())?;
        // Forwarding, as docker turns it on; route_localnet lets the host's 127.0.0.1
        // reach published ports through the bridge.
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")?;
        std::fs::write(
            format!(
                "/proc/sys/net/ipv4/conf/{}/route_localnet",
                network.interface
            ),
            "1",
        )?;
        self.apply_firewall().map_err(std::io::Error::other)?;
        Ok(index)
    }

    /// The firewall made again from the networks and the published ports. Under the
    /// lock.
    fn apply_firewall(&self) -> Result<(), Error> {
        let mut bridges = Vec::new();
        let mut published = Vec::new();
        let mut builders = Vec::new();
        for network in self.list()? {
            if network.driver != Driver::Bridge {
                continue;
            }
            if let Some(subnet) = network.subnet {
                bridges.push(firewall::Bridge {
                    interface: network.interface.clone(),
                    subnet: (subnet.network(), subnet.prefix_len()),
                    internal: network.internal,
                });
            }
            for e in self.endpoints(&network.id)? {
                if e.builder {
                    builders.push(e.address);
                }
                if !e.ports.is_empty() {
                    published.push(firewall::Published {
                        address: e.address,
                        ports: e.ports,
                    });
                }
            }
        }
        firewall::apply(&bridges, &published, &builders)
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
