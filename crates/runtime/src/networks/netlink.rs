//! Links, addresses and routes through rtnetlink, one request at a time and waiting for
//! its acknowledgement: the messages are the `rtnetlink` crate's (its builders), the
//! transport a plain blocking netlink socket — no async runtime, so a single-threaded
//! `kiln run` stays single-threaded and can fork its supervisor.

use std::io;
use std::net::Ipv4Addr;

use rtnetlink::packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use rtnetlink::{AddressMessageBuilder, LinkUnspec, RouteMessageBuilder};

/// A route netlink socket of the network namespace it was opened in.
pub(crate) struct Netlink {
    socket: Socket,
    sequence: u32,
}

impl Netlink {
    pub(crate) fn open() -> io::Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink {
            socket,
            sequence: 0,
        })
    }

    /// Sends `message` and reads the answers up to the acknowledgement (or, for a dump,
    /// its end); an error the kernel answers is returned as its errno.
    fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        let mut packet = NetlinkMessage::from(message);
        self.sequence += 1;
        packet.header.sequence_number = self.sequence;
        // A dump ends with NLMSG_DONE; asking for an acknowledgement as well would leave
        // one behind for the next request to misread.
        packet.header.flags = NLM_F_REQUEST
            | flags
            | if flags & NLM_F_DUMP == NLM_F_DUMP {
                0
            } else {
                NLM_F_ACK
            };
        packet.finalize();
        let mut bytes = vec![0; packet.header.length as usize];
        packet.serialize(&mut bytes);
        self.socket.send(&bytes, 0)?;
        let mut answers = Vec::new();
        let mut buffer = Vec::with_capacity(64 * 1024);
        loop {
            buffer.clear();
            let read = self.socket.recv(&mut buffer, 0)?;
            let mut at = 0;
            while at < read {
                let answer = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buffer[at..read])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let length = answer.header.length as usize;
                if answer.header.sequence_number == self.sequence {
                    match answer.payload {
                        NetlinkPayload::Done(_) => return Ok(answers),
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                                None => Ok(answers),
                            }
                        }
                        NetlinkPayload::InnerMessage(m) => answers.push(m),
                        _ => {}
                    }
                }
                if length == 0 {
                    break;
                }
                at += length;
            }
        }
    }

    /// A new link (fails if its name is taken).
    pub(crate) fn add_link(&mut self, link: LinkMessage) -> io::Result<()> {
        self.request(
            RouteNetlinkMessage::NewLink(link),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Changes a link: its state, its controller (bridge), its namespace.
    pub(crate) fn set_link(&mut self, link: LinkMessage) -> io::Result<()> {
        self.request(RouteNetlinkMessage::SetLink(link), 0)
            .map(drop)
    }

    pub(crate) fn delete_link(&mut self, index: u32) -> io::Result<()> {
        let link = LinkUnspec::new_with_index(index).build();
        self.request(RouteNetlinkMessage::DelLink(link), 0)
            .map(drop)
    }

    /// Every link's index, name and alias (`ip link`'s `alias`; empty when it has none).
    pub(crate) fn links(&mut self) -> io::Result<Vec<(u32, String, String)>> {
        let answers = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(answers
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => {
                    let (mut name, mut alias) = (String::new(), String::new());
                    for attribute in link.attributes {
                        match attribute {
                            LinkAttribute::IfName(n) => name = n,
                            LinkAttribute::IfAlias(a) => alias = a,
                            _ => {}
                        }
                    }
                    Some((link.header.index, name, alias))
                }
                _ => None,
            })
            .collect())
    }

    /// Sets the alias of link `index`.
    pub(crate) fn set_alias(&mut self, index: u32, alias: &str) -> io::Result<()> {
        let mut link = LinkUnspec::new_with_index(index).build();
        link.attributes
            .push(LinkAttribute::IfAlias(alias.to_string()));
        self.set_link(link)
    }

    /// The index of the link named `name`, if there is one.
    pub(crate) fn link_index(&mut self, name: &str) -> io::Result<Option<u32>> {
        let link = LinkUnspec::new_with_name(name).build();
        match self.request(RouteNetlinkMessage::GetLink(link), 0) {
            Ok(answers) => Ok(answers.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(e) if e.raw_os_error() == Some(nix::libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn add_address(
        &mut self,
        index: u32,
        address: Ipv4Addr,
        prefix: u8,
    ) -> io::Result<()> {
        let message = AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(address, prefix)
            .build();
        match self.request(
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if e.raw_os_error() == Some(nix::libc::EEXIST) => Ok(()),
            other => other.map(drop),
        }
    }

    /// The default route through `gateway`.
    pub(crate) fn add_default_route(&mut self, gateway: Ipv4Addr) -> io::Result<()> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .build();
        self.request(
            RouteNetlinkMessage::NewRoute(route),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// The IPv4 destinations the main routing table has a route to (prefix and length),
    /// but the default route: what a new network's subnet must not overlap.
    pub(crate) fn routed_prefixes(&mut self) -> io::Result<Vec<(Ipv4Addr, u8)>> {
        let mut query = RouteMessage::default();
        query.header.address_family = rtnetlink::packet_route::AddressFamily::Inet;
        let answers = self.request(RouteNetlinkMessage::GetRoute(query), NLM_F_DUMP)?;
        Ok(answers
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) if r.header.destination_prefix_length > 0 => {
                    let length = r.header.destination_prefix_length;
                    r.attributes.into_iter().find_map(|a| match a {
                        RouteAttribute::Destination(RouteAddress::Inet(address)) => {
                            Some((address, length))
                        }
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }
}
