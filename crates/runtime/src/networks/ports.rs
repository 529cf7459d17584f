//! Published ports: docker's `-p` syntax, and the host ports held while a container
//! runs — a socket bound to each, so a port in use is refused before the container
//! starts and no other program takes it while the container has it (the traffic itself
//! goes through the firewall's DNAT, never through that socket).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;

use nix::sys::socket::{bind, getsockname, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A published port's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`, as docker prints it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One published port: `host_ip:host_port` on the host to `container_port` in the
/// container. `host_port` 0 until the container starts: then a free port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    /// None: every address of the host (docker's `0.0.0.0`).
    pub host_ip: Option<Ipv4Addr>,
    /// The port on the host.
    pub host_port: u16,
    /// The port in the container.
    pub container_port: u16,
    /// Its protocol.
    pub protocol: Protocol,
}

impl PortBinding {
    /// docker's `HOST_IP:HOST_PORT` as `docker port` prints it.
    pub fn host(&self) -> String {
        format!(
            "{}:{}",
            self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            self.host_port
        )
    }

    /// `80/tcp`.
    pub fn container(&self) -> String {
        format!("{}/{}", self.container_port, self.protocol.name())
    }
}

/// docker's `-p [IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/tcp|udp]`: one binding per
/// port of the range (a host range as long as the container's, or none: free ports).
pub fn parse(spec: &str) -> Result<Vec<PortBinding>, Error> {
    let bad = |reason: &str| Error::PortSpec {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((rest, "tcp")) => (rest, Protocol::Tcp),
        Some((rest, "udp")) => (rest, Protocol::Udp),
        Some(_) => return Err(bad("the protocol is tcp or udp")),
        None => (spec, Protocol::Tcp),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [container] => ("", "", *container),
        [host, container] => ("", *host, *container),
        [ip, host, container] => (*ip, *host, *container),
        _ => return Err(bad("write [IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]")),
    };
    let host_ip = match ip {
        "" | "0.0.0.0" => None,
        ip => Some(ip.parse().map_err(|_| {
            bad("the host address is an IPv4 address (kiln's networks are IPv4 for now)")
        })?),
    };
    let range = |s: &str, what: &str| -> Result<(u16, u16), Error> {
        let number = |n: &str| {
            n.parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| bad(&format!("the {what} port is a number from 1 to 65535")))
        };
        let (start, end) = match s.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(s)?, number(s)?),
        };
        if end < start {
            return Err(bad(&format!("the {what} port range ends before it starts")));
        }
        Ok((start, end))
    };
    let (first, last) = range(container, "container")?;
    let hosts: Vec<u16> = if host.is_empty() {
        vec![0; usize::from(last - first) + 1]
    } else {
        let (start, end) = range(host, "host")?;
        if end - start != last - first {
            return Err(bad("the host and container ranges differ in length"));
        }
        (start..=end).collect()
    };
    Ok((first..=last)
        .zip(hosts)
        .map(|(container_port, host_port)| PortBinding {
            host_ip,
            host_port,
            container_port,
            protocol,
        })
        .collect())
}

/// Binds a socket to each binding's host address and port (a free port for port 0,
/// written back into the binding): held until the container stops.
pub fn reserve(bindings: &mut [PortBinding]) -> Result<Vec<OwnedFd>, Error> {
    bindings
        .iter_mut()
        .map(|b| {
            let kind = match b.protocol {
                Protocol::Tcp => SockType::Stream,
                Protocol::Udp => SockType::Datagram,
            };
            let ip = b.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
            let in_use = |e: nix::errno::Errno| Error::PortInUse {
                address: format!("{ip}:{}", b.host_port),
                protocol: b.protocol.name(),
                reason: e.desc(),
            };
            let fd =
                socket(AddressFamily::Inet, kind, SockFlag::SOCK_CLOEXEC, None).map_err(in_use)?;
            bind(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                &SockaddrIn::from(SocketAddrV4::new(ip, b.host_port)),
            )
            .map_err(in_use)?;
            if b.host_port == 0 {
                let bound: SockaddrIn =
                    getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)).map_err(in_use)?;
                b.host_port = bound.port();
            }
            Ok(fd)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_port_forms_parse() {
        let one = |s| parse(s).unwrap();
        assert_eq!(
            one("8080:80"),
            [PortBinding {
                host_ip: None,
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp
            }]
        );
        let b = one("127.0.0.1::53/udp");
        assert_eq!(b[0].host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!((b[0].host_port, b[0].protocol), (0, Protocol::Udp));
        let range = one("9000-9002:7000-7002");
        assert_eq!(
            range
                .iter()
                .map(|b| (b.host_port, b.container_port))
                .collect::<Vec<_>>(),
            [(9000, 7000), (9001, 7001), (9002, 7002)]
        );
        assert_eq!(one("80").len(), 1);
        for bad in [
            "",
            "x:80",
            "1:2:3:4",
            "80/sctp",
            "9000-9001:80",
            "0:80",
            "70000",
            "::1:80:80",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
