//! Names on user-defined networks, as docker's embedded DNS gives them: a container's
//! supervisor answers on 127.0.0.11:53 inside the container's namespace (so the
//! answerer lives and dies with the container, and needs no daemon) from the endpoints
//! of the networks the container is on — its neighbours' names, short IDs and aliases —
//! and passes every other question to the upstream servers, asked from the host's
//! namespace. Messages are read and written with `hickory-proto`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{rdata::A, RData, Record, RecordType};

use super::{netns, Networks};
use crate::error::Error;

/// How long an answer may be kept (docker's embedded DNS says 600 s).
const TTL: u32 = 600;

/// Starts answering for the container `container_id` on `address`:53 in the namespace
/// at `netns`, on a thread of the calling process.
pub fn serve(
    root: &Path,
    container_id: &str,
    netns: &Path,
    address: Ipv4Addr,
    upstreams: Vec<IpAddr>,
) -> Result<(), Error> {
    let socket =
        netns::within(netns, || UdpSocket::bind((address, 53))).map_err(|source| Error::Io {
            op: "serve names on 127.0.0.11:53 in",
            path: netns.to_path_buf(),
            source,
        })?;
    let answerer = Answerer {
        root: root.to_path_buf(),
        container_id: container_id.to_string(),
        upstreams,
    };
    std::thread::Builder::new()
        .name("dns".into())
        .spawn(move || answerer.run(socket))
        .map_err(|source| Error::Io {
            op: "start the name answerer for",
            path: netns.to_path_buf(),
            source,
        })?;
    Ok(())
}

struct Answerer {
    root: PathBuf,
    container_id: String,
    upstreams: Vec<IpAddr>,
}

impl Answerer {
    fn run(self, socket: UdpSocket) {
        let mut buffer = [0u8; 4096];
        loop {
            let Ok((read, from)) = socket.recv_from(&mut buffer) else {
                continue;
            };
            let Ok(query) = Message::from_vec(&buffer[..read]) else {
                continue;
            };
            match self.answer(&query) {
                Some(reply) => {
                    if let Ok(bytes) = reply.to_vec() {
                        let _ = socket.send_to(&bytes, from);
                    }
                }
                // Asked upstream in a thread of its own: a slow server holds up no other
                // question.
                None => {
                    let (question, upstreams) = (buffer[..read].to_vec(), self.upstreams.clone());
                    if let Ok(socket) = socket.try_clone() {
                        std::thread::spawn(move || {
                            let reply = forward(&question, &upstreams)
                                .unwrap_or_else(|| failure(&query, ResponseCode::ServFail));
                            let _ = socket.send_to(&reply, from);
                        });
                    }
                }
            }
        }
    }

    /// The answer for a name of the container's networks; None for a name to ask
    /// upstream.
    fn answer(&self, query: &Message) -> Option<Message> {
        let question = query.queries.first()?;
        let name = question
            .name()
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let addresses = self.lookup(&name);
        if addresses.is_empty() {
            return None;
        }
        let mut reply = Message::response(query.metadata.id, OpCode::Query);
        reply.metadata.message_type = MessageType::Response;
        reply.metadata.recursion_desired = query.metadata.recursion_desired;
        reply.metadata.recursion_available = true;
        reply.metadata.authoritative = true;
        reply.add_query(question.clone());
        // A known name has IPv4 addresses only: other types get an empty answer.
        if question.query_type() == RecordType::A {
            for address in addresses {
                reply.add_answer(Record::from_rdata(
                    question.name().clone(),
                    TTL,
                    RData::A(A(address)),
                ));
            }
        }
        Some(reply)
    }

    /// The addresses `name` has on the networks the container is on (those that
    /// resolve names).
    fn lookup(&self, name: &str) -> Vec<Ipv4Addr> {
        let Ok(networks) = Networks::open(&self.root) else {
            return Vec::new();
        };
        let Ok(mine) = networks.endpoints_of(&self.container_id) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for (network, _) in mine.iter().filter(|(n, _)| n.resolves_names()) {
            for e in networks.endpoints(&network.id).unwrap_or_default() {
                if e.names.iter().any(|n| n.eq_ignore_ascii_case(name))
                    && crate::containers::alive(e.supervisor)
                    && !found.contains(&e.address)
                {
                    found.push(e.address);
                }
            }
        }
        found
    }
}

/// The first upstream server's reply to `question`, each tried for 2 s.
fn forward(question: &[u8], upstreams: &[IpAddr]) -> Option<Vec<u8>> {
    for server in upstreams {
        let local: SocketAddr = match server {
            IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let Ok(socket) = UdpSocket::bind(local) else {
            continue;
        };
        let _ = socket.set_read_timeout(Some(Duration::from_secs(2)));
        if socket.send_to(question, (*server, 53)).is_err() {
            continue;
        }
        let mut buffer = vec![0u8; 4096];
        if let Ok(read) = socket.recv(&mut buffer) {
            buffer.truncate(read);
            return Some(buffer);
        }
    }
    None
}

fn failure(query: &Message, code: ResponseCode) -> Vec<u8> {
    let mut reply = Message::error_msg(query.metadata.id, OpCode::Query, code);
    reply.add_queries(query.queries.clone());
    reply.to_vec().unwrap_or_default()
}
