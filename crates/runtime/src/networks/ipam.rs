//! Address management as docker does it: subnets from docker's default pools (the
//! 172.17–31.0.0/16 networks, then 192.168.0.0/16 in /20s) that no other network and
//! no route of the host overlaps; addresses from the bottom of the subnet up, the first
//! one the gateway's; MAC addresses made from the address (02:42 and its four bytes).
//! The last /24 of a subnet of /22 or more is kept for builds' RUN namespaces: one
//! firewall rule, written with the network, keeps them from the host's services, so a
//! build changes no rule.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::error::Error;

/// The first default pool subnet that overlaps none of `taken`.
pub(crate) fn free_subnet(taken: &[Ipv4Net]) -> Result<Ipv4Net, Error> {
    let pools = (17..=31)
        .map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16))
        .chain((0..16).map(|k| Ipv4Net::new(Ipv4Addr::new(192, 168, k * 16, 0), 20)));
    pools
        .flatten()
        .find(|candidate| !taken.iter().any(|t| overlap(t, candidate)))
        .ok_or(Error::NoFreeSubnet)
}

pub(crate) fn overlap(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The subnet's first host address: the gateway's unless told otherwise.
pub(crate) fn first_host(subnet: Ipv4Net) -> Ipv4Addr {
    subnet.hosts().next().unwrap_or(subnet.network())
}

/// The lowest host address of `subnet` not in `taken`: in its builder range for a
/// build (`builder`), outside it for a container.
pub(crate) fn free_address(subnet: Ipv4Net, taken: &[Ipv4Addr], builder: bool) -> Option<Ipv4Addr> {
    let builders = builder_range(subnet);
    subnet
        .hosts()
        .find(|a| !taken.contains(a) && builders.is_some_and(|r| r.contains(a)) == builder)
}

/// Where builds take their addresses in `subnet`: its last /24, when it has room.
pub(crate) fn builder_range(subnet: Ipv4Net) -> Option<Ipv4Net> {
    if subnet.prefix_len() > 22 {
        return None;
    }
    Ipv4Net::new(subnet.broadcast(), 24).ok().map(|n| n.trunc())
}

/// docker's MAC address for an address: 02:42 (locally administered) and its bytes.
pub(crate) fn mac_of(address: Ipv4Addr) -> String {
    let [a, b, c, d] = address.octets();
    format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

/// `aa:bb:cc:dd:ee:ff` as bytes; None unless it is a unicast address.
pub fn parse_mac(mac: &str) -> Option<[u8; 6]> {
    let mut bytes = [0u8; 6];
    let mut parts = mac.split(':');
    for byte in &mut bytes {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    (parts.next().is_none() && bytes[0] & 1 == 0).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_and_addresses_come_in_dockers_order() {
        let net = |s: &str| s.parse::<Ipv4Net>().unwrap();
        assert_eq!(free_subnet(&[]).unwrap(), net("172.17.0.0/16"));
        // A host route inside a pool subnet takes it.
        assert_eq!(
            free_subnet(&[net("172.17.0.0/16"), net("172.18.5.0/24")]).unwrap(),
            net("172.19.0.0/16")
        );
        let all: Vec<_> = (16..=31).map(|b| net(&format!("172.{b}.0.0/16"))).collect();
        assert_eq!(free_subnet(&all).unwrap(), net("192.168.0.0/20"));
        assert!(free_subnet(&[net("0.0.0.0/0")]).is_err());
        let subnet = net("10.1.0.0/30");
        let gateway = first_host(subnet);
        assert_eq!(gateway, Ipv4Addr::new(10, 1, 0, 1));
        assert_eq!(
            free_address(subnet, &[gateway], false),
            Some(Ipv4Addr::new(10, 1, 0, 2))
        );
        assert_eq!(
            free_address(subnet, &[gateway, Ipv4Addr::new(10, 1, 0, 2)], false),
            None
        );
        // Builds take the last /24 of a large subnet, containers the rest.
        let bridge = net("172.17.0.0/16");
        assert_eq!(builder_range(bridge), Some(net("172.17.255.0/24")));
        assert_eq!(builder_range(subnet), None);
        assert_eq!(
            free_address(bridge, &[first_host(bridge)], true),
            Some(Ipv4Addr::new(172, 17, 255, 0))
        );
        assert_eq!(
            free_address(bridge, &[first_host(bridge)], false),
            Some(Ipv4Addr::new(172, 17, 0, 2))
        );
        assert_eq!(mac_of(Ipv4Addr::new(172, 17, 0, 2)), "02:42:ac:11:00:02");
        assert_eq!(
            parse_mac("02:42:ac:11:00:02"),
            Some([2, 0x42, 0xac, 0x11, 0, 2])
        );
        assert_eq!(parse_mac("01:00:5e:00:00:01"), None);
        assert_eq!(parse_mac("02:42"), None);
    }
}
