//! Wiring containers into networks: a container's namespace made and its interfaces set
//! up before it starts (`wire`), one more network for a running container (`connect`,
//! `disconnect`), and everything released when it stops, or when its supervisor died
//! (`release`, the sweep every change runs first).

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rtnetlink::packet_route::link::{InfoData, InfoMacVlan, InfoVeth, MacVlanMode};
use rtnetlink::{LinkBridge, LinkMacVlan, LinkMessageBuilder, LinkUnspec, LinkVeth};

use super::{
    ipam, netlink, netlink_error, netns, ports, random_id, Attachment, Driver, Endpoint, Network,
    Networks, PortBinding,
};
use crate::containers::{read_json, write_json};
use crate::error::Error;

/// Who a container is, for its endpoints.
pub struct Member<'a> {
    /// The container's ID.
    pub id: &'a str,
    /// Its name, which DNS answers for (with its aliases).
    pub name: &'a str,
    /// Its supervisor's process id: an endpoint whose supervisor is gone is stale.
    pub supervisor: u32,
    /// Where its network namespace is to be bound.
    pub netns: PathBuf,
    /// `--mac-address`, when given.
    pub mac: Option<&'a str>,
    /// A build's RUN namespace, not a container: its address comes from the default
    /// network's builder range, which the firewall keeps from the host's services.
    pub builder: bool,
}

/// A container's network while it runs: its namespace (to join), its endpoints, and the
/// sockets that hold its published host ports.
pub struct Wired {
    /// The namespace, bound at this path.
    pub netns: PathBuf,
    /// Its interface on each network, in the order of the attachments.
    pub endpoints: Vec<Endpoint>,
    /// Its published ports, host ports chosen.
    pub ports: Vec<PortBinding>,
    _reserved: Vec<OwnedFd>,
}

impl Networks {
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
            if !ports.is_empty() {
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

    /// Removes a container's endpoint files; whether one published ports (which the
    /// firewall names).
    fn forget(&self, container_id: &str) -> Result<bool, Error> {
        let mut had_ports = false;
        for (network, endpoint) in self.endpoints_of(container_id)? {
            had_ports |= !endpoint.ports.is_empty();
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
    pub(super) fn sweep(&self) -> Result<(), Error> {
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
            None => ipam::free_address(subnet, &taken, member.builder).ok_or_else(|| {
                Error::NoFreeAddress {
                    network: network.name.clone(),
                }
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
                    .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
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
        // Its network's file, so the bridge can be removed once that is gone. An alias
        // the kernel refuses (over 255 bytes) only leaves this bridge unreclaimed.
        let _ = nl.set_alias(index, &self.bridge_alias(&network.id));
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
}
