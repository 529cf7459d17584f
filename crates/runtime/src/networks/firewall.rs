//! A store's nftables table, `ip kiln0` (named after its default bridge, so stores
//! sharing a host keep theirs apart), written whole from what the store holds — the
//! bridge networks and the ports running containers publish — in one atomic
//! transaction (the table deleted and made again): nothing is ever patched by rule
//! handle, so a crash leaves no stray rule that the next change does not sweep away, and
//! removing the last network removes the table. Applied through the `nftables` crate
//! (nft's JSON interface), as netavark's nftables driver does.
//!
//! ```text
//! table ip kiln0 {
//!   chain forward     { hook forward:     same-bridge traffic and published ports pass;
//!                       one kiln network to another, and an internal one out, drop }
//!   chain input       { hook input:       builds' RUN namespaces reach no host service }
//!   chain prerouting  { hook prerouting:  to a local address: jump ports }
//!   chain output      { hook output:      the host's own connections, 127.0.0.1 too }
//!   chain ports       { [ip daddr A] meta l4proto P th dport H dnat ip to C:P' }
//!   chain postrouting { masquerade: a network's traffic leaving it, and 127.0.0.1's
//!                       connections to a published port }
//! }
//! ```

use std::borrow::Cow;
use std::net::Ipv4Addr;

use nftables::batch::Batch;
use nftables::expr::{
    Expression, Fib, FibFlag, FibResult, Meta, MetaKey, NamedExpression, Payload, PayloadField,
    Prefix, SetItem, CT,
};
use nftables::schema::{Chain, NfListObject, Rule, Table};
use nftables::stmt::{JumpTarget, Match, NATFamily, Operator, Statement, NAT};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use super::ports::PortBinding;
use crate::error::Error;

/// A bridge network as the firewall sees it.
pub(crate) struct Bridge {
    pub interface: String,
    pub subnet: (Ipv4Addr, u8),
    pub internal: bool,
    /// Where builds' RUN namespaces take their addresses (the default network's).
    pub builders: Option<(Ipv4Addr, u8)>,
}

/// A container's published ports, to its address.
pub(crate) struct Published {
    pub address: Ipv4Addr,
    pub ports: Vec<PortBinding>,
}

/// Replaces the table `name` with one for `bridges` and `published` (or removes it when
/// there are no bridges).
pub(crate) fn apply(name: &str, bridges: &[Bridge], published: &[Published]) -> Result<(), Error> {
    let table = || Table {
        family: NfFamily::IP,
        name: name.to_string().into(),
        handle: None,
    };
    let mut batch = Batch::new();
    // `add` then `delete`: the table is gone whether or not it was there.
    batch.add(NfListObject::Table(table()));
    batch.delete(NfListObject::Table(table()));
    if !bridges.is_empty() {
        batch.add(NfListObject::Table(table()));
        for object in chains(name)
            .into_iter()
            .chain(rules(name, bridges, published))
        {
            batch.add(object);
        }
    }
    nftables::helper::apply_ruleset(&batch.to_nftables()).map_err(|e| Error::Firewall {
        reason: match e {
            nftables::helper::NftablesError::NftFailed { stderr, .. } => stderr.trim().to_string(),
            other => other.to_string(),
        },
    })
}

fn chains(table: &str) -> Vec<NfListObject<'static>> {
    let base = |name: &'static str, kind, hook, prio| Chain {
        family: NfFamily::IP,
        table: table.to_string().into(),
        name: name.into(),
        _type: Some(kind),
        hook: Some(hook),
        prio: Some(prio),
        policy: Some(NfChainPolicy::Accept),
        ..Chain::default()
    };
    vec![
        base("forward", NfChainType::Filter, NfHook::Forward, 0),
        base("input", NfChainType::Filter, NfHook::Input, 0),
        base("prerouting", NfChainType::NAT, NfHook::Prerouting, -100),
        base("output", NfChainType::NAT, NfHook::Output, -100),
        base("postrouting", NfChainType::NAT, NfHook::Postrouting, 100),
        Chain {
            family: NfFamily::IP,
            table: table.to_string().into(),
            name: "ports".into(),
            ..Chain::default()
        },
    ]
    .into_iter()
    .map(NfListObject::Chain)
    .collect()
}

fn rules(table: &str, bridges: &[Bridge], published: &[Published]) -> Vec<NfListObject<'static>> {
    let mut rules = Vec::new();
    let mut rule = |chain: &'static str, expr: Vec<Statement<'static>>| {
        rules.push(NfListObject::Rule(Rule {
            family: NfFamily::IP,
            table: table.to_string().into(),
            chain: chain.into(),
            expr: expr.into(),
            ..Rule::default()
        }))
    };
    let all: Vec<String> = bridges.iter().map(|b| b.interface.clone()).collect();
    for b in bridges {
        let name = || string(b.interface.clone());
        rule(
            "forward",
            vec![is(iifname(), name()), is(oifname(), name()), accept()],
        );
    }
    // A published port is reachable from every network, as a host address is.
    rule("forward", vec![is(ct("status"), string("dnat")), accept()]);
    rule(
        "forward",
        vec![is(iifname(), set(&all)), is(oifname(), set(&all)), drop()],
    );
    for b in bridges.iter().filter(|b| b.internal) {
        rule(
            "forward",
            vec![is(iifname(), string(b.interface.clone())), drop()],
        );
        rule(
            "forward",
            vec![is(oifname(), string(b.interface.clone())), drop()],
        );
    }
    // A RUN step reaches the world, never a service of the build machine's own.
    for b in bridges {
        if let Some((address, len)) = b.builders {
            rule(
                "input",
                vec![
                    is(iifname(), string(b.interface.clone())),
                    is(payload("ip", "saddr"), prefix(address, len)),
                    drop(),
                ],
            );
        }
    }
    let local = || {
        is(
            Expression::Named(NamedExpression::Fib(Fib {
                result: FibResult::Type,
                flags: [FibFlag::Daddr].into_iter().collect(),
            })),
            string("local"),
        )
    };
    let to_ports = || {
        Statement::Jump(JumpTarget {
            target: "ports".into(),
        })
    };
    rule("prerouting", vec![local(), to_ports()]);
    rule("output", vec![local(), to_ports()]);
    for p in published {
        for b in &p.ports {
            let mut expr = Vec::new();
            if let Some(ip) = b.host_ip {
                expr.push(is(payload("ip", "daddr"), string(ip.to_string())));
            }
            expr.push(is(
                Expression::Named(NamedExpression::Meta(Meta {
                    key: MetaKey::L4proto,
                })),
                string(b.protocol.name()),
            ));
            expr.push(is(
                payload("th", "dport"),
                Expression::Number(b.host_port.into()),
            ));
            expr.push(Statement::DNAT(Some(NAT {
                addr: Some(string(p.address.to_string())),
                family: Some(NATFamily::IP),
                port: Some(Expression::Number(b.container_port.into())),
                flags: None,
            })));
            rule("ports", expr);
        }
    }
    // The host's 127.0.0.1 reaching a published port: the kernel routes a loopback
    // source out of the bridge only masqueraded (and with route_localnet on the bridge).
    rule(
        "postrouting",
        vec![
            is(ct("status"), string("dnat")),
            is(
                payload("ip", "saddr"),
                prefix(Ipv4Addr::new(127, 0, 0, 0), 8),
            ),
            is(oifname(), set(&all)),
            masquerade(),
        ],
    );
    for b in bridges.iter().filter(|b| !b.internal) {
        rule(
            "postrouting",
            vec![
                is(payload("ip", "saddr"), prefix(b.subnet.0, b.subnet.1)),
                Statement::Match(Match {
                    left: oifname(),
                    right: string(b.interface.clone()),
                    op: Operator::NEQ,
                }),
                masquerade(),
            ],
        );
    }
    rules
}

fn string(s: impl Into<Cow<'static, str>>) -> Expression<'static> {
    Expression::String(s.into())
}

fn set(names: &[String]) -> Expression<'static> {
    Expression::Named(NamedExpression::Set(
        names
            .iter()
            .map(|n| SetItem::Element(string(n.clone())))
            .collect(),
    ))
}

fn prefix(address: Ipv4Addr, len: u8) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(string(address.to_string())),
        len: len.into(),
    }))
}

fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.into(),
            field: field.into(),
        },
    )))
}

fn iifname() -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta {
        key: MetaKey::Iifname,
    }))
}

fn oifname() -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta {
        key: MetaKey::Oifname,
    }))
}

fn ct(key: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT {
        key: key.into(),
        family: None,
        dir: None,
    }))
}

/// `left == right` (or `in`, for a set or flags: nft picks by the right side's type).
fn is(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    let op = match right {
        Expression::Named(NamedExpression::Set(_)) => Operator::IN,
        _ if matches!(&left, Expression::Named(NamedExpression::CT(_))) => Operator::IN,
        _ => Operator::EQ,
    };
    Statement::Match(Match { left, right, op })
}

fn accept() -> Statement<'static> {
    Statement::Accept(None)
}

fn drop() -> Statement<'static> {
    Statement::Drop(None)
}

fn masquerade() -> Statement<'static> {
    Statement::Masquerade(None)
}
