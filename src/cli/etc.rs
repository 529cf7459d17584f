//! The files docker writes for a container and binds on its `/etc` — `hostname`,
//! `hosts`, `resolv.conf` — written when it is made and again as it starts on a
//! network, when its address is known.

use kiln_runtime::containers::{Container, Dns};
use kiln_runtime::networks::{Endpoint, Network};

/// Where a container on a user-defined network asks for names: the answerer its
/// supervisor serves in its namespace (docker's embedded DNS address).
pub(crate) const EMBEDDED_DNS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 11);

/// Writes the three files for `c`, on the networks of `endpoints` (none: `host`,
/// `none`, or not started yet).
pub(crate) fn write(
    c: &Container,
    endpoints: &[(Network, Endpoint)],
) -> Result<(), kiln_runtime::Error> {
    let host = &c.config.hostname;
    // --add-host lines after the standard ones, before the container's own, as docker's.
    let extra: String = c
        .config
        .extra_hosts
        .iter()
        .map(|(name, ip)| format!("{ip}\t{name}\n"))
        .collect();
    let own = match endpoints.first() {
        Some((_, e)) => format!("{}\t{host}\n", e.address),
        None => format!("127.0.1.1\t{host}\n"),
    };
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = if endpoints.iter().any(|(n, _)| n.resolves_names()) {
        embedded_resolv_conf(&host_resolv, &c.config.dns)
    } else {
        resolv_conf(&host_resolv, &c.config.dns, !endpoints.is_empty())
    };
    let files = [
        ("hostname", format!("{host}\n")),
        (
            "hosts",
            format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n{extra}{own}"),
        ),
        ("resolv.conf", resolv),
    ];
    for (name, text) in files {
        let path = c.dir.join(name);
        std::fs::write(&path, text).map_err(|e| kiln_runtime::Error::Io {
            op: "write",
            path,
            source: e,
        })?;
    }
    Ok(())
}

/// The container's `/etc/resolv.conf`: the host's, its `nameserver`, `search` and
/// `options` lines replaced by the container's `--dns*` where given, as docker does. In
/// a namespace of its own (`isolated`) the host's loopback servers cannot be reached:
/// they go, and docker's public servers stand in when none is left.
fn resolv_conf(host: &str, dns: &Dns, isolated: bool) -> String {
    let replaced = |line: &str| match line.split_whitespace().next().unwrap_or("") {
        "nameserver" => !dns.servers.is_empty() || (isolated && loopback_server(line)),
        "search" | "domain" => !dns.search.is_empty(),
        "options" => !dns.options.is_empty(),
        _ => false,
    };
    let mut out: String = host
        .lines()
        .filter(|l| !replaced(l))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut servers = dns.servers.clone();
    if servers.is_empty() && !out.lines().any(|l| l.starts_with("nameserver")) && isolated {
        servers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    for server in &servers {
        out.push_str(&format!("nameserver {server}\n"));
    }
    out.push_str(&search_and_options(dns, &[]));
    out
}

/// A `nameserver` line naming an address on the loopback (systemd-resolved's
/// 127.0.0.53, say), which a network namespace of its own cannot reach.
fn loopback_server(line: &str) -> bool {
    let mut words = line.split_whitespace();
    words.next() == Some("nameserver")
        && words
            .next()
            .and_then(|a| a.parse::<std::net::IpAddr>().ok())
            .is_some_and(|a| a.is_loopback())
}

/// RUN's `/etc/resolv.conf` in a build's network namespace: the host's, less the
/// servers on its loopback; when those were all it had, the embedded answerer (which
/// asks them from the host's side) instead — and whether that answerer is needed.
pub(crate) fn build_resolv_conf() -> (String, bool) {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let kept: String = host
        .lines()
        .filter(|l| !loopback_server(l))
        .map(|l| format!("{l}\n"))
        .collect();
    if host.lines().any(loopback_server) && !kept.lines().any(|l| l.starts_with("nameserver")) {
        (format!("nameserver {EMBEDDED_DNS}\n{kept}"), true)
    } else {
        (kept, false)
    }
}

/// On a user-defined network: the embedded answerer (which asks the host's servers, or
/// `--dns`'s, for other names), the host's search domains, and `ndots:0` as docker
/// writes it.
fn embedded_resolv_conf(host: &str, dns: &Dns) -> String {
    let mut out = format!("nameserver {EMBEDDED_DNS}\n");
    let search = if dns.search.is_empty() {
        host.lines()
            .filter_map(|l| l.strip_prefix("search "))
            .flat_map(|l| l.split_whitespace().map(String::from))
            .collect()
    } else {
        dns.search.clone()
    };
    out.push_str(&search_and_options(
        &Dns {
            servers: Vec::new(),
            search,
            options: dns.options.clone(),
        },
        &["ndots:0"],
    ));
    out
}

fn search_and_options(dns: &Dns, extra_options: &[&str]) -> String {
    let mut out = String::new();
    // `.` alone: no search domain at all.
    let search: Vec<&str> = dns
        .search
        .iter()
        .map(String::as_str)
        .filter(|d| *d != ".")
        .collect();
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    let options: Vec<&str> = extra_options
        .iter()
        .copied()
        .chain(dns.options.iter().map(String::as_str))
        .collect();
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// The servers the embedded answerer asks for names it does not know: `--dns`'s, else
/// the host's (loopback ones too: it asks from the host's namespace).
pub(crate) fn upstream_servers(dns: &Dns) -> Vec<std::net::IpAddr> {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let configured: Vec<String> = if dns.servers.is_empty() {
        host.lines()
            .filter_map(|l| l.strip_prefix("nameserver"))
            .map(|a| a.trim().to_string())
            .collect()
    } else {
        dns.servers.clone()
    };
    configured.iter().filter_map(|a| a.parse().ok()).collect()
}
