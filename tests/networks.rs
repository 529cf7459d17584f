//! Container networks through the binary: published ports, user networks with names,
//! internal networks, connect/disconnect, macvlan, RUN steps off the host's network,
//! and nothing left behind. Every test runs in a network namespace of its own (made by
//! `Kiln::new`), with an "outside" namespace as the world beyond the host where one is
//! needed: bridges, veths, NAT rules and DNS live and die there. Needs root.

kiln_testkit::private_network!();

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::Duration;

use kiln_testkit::{build_busybox, context, root_or_skip, run_tool, wait_for, Kiln};

/// A store with busybox:kiln and `web:kiln` (busybox with `EXPOSE 80 53/udp`).
fn kiln() -> Option<Kiln> {
    if !root_or_skip() {
        return None;
    }
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(
        &k.dir.path().join("web"),
        &[("Dockerfile", "FROM busybox:kiln\nEXPOSE 80 53/udp\n")],
    );
    k.ok(&["build", "-q", "-t", "web:kiln", ctx.to_str().unwrap()]);
    Some(k)
}

/// `GET path` over HTTP/1.0 to `address`; the response, or the error.
fn get(address: &str, path: &str) -> Result<String, std::io::Error> {
    let mut stream = TcpStream::connect_timeout(&address.parse().unwrap(), Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

fn links() -> String {
    run_tool("ip", &["-o", "link", "show"])
}

fn ruleset() -> String {
    run_tool("nft", &["list", "ruleset"])
}

/// A second network namespace standing for the world outside the build machine: one
/// end of a veth pair (`uplink`, 10.99.0.1/24 on our side), 10.99.0.2 on its side.
struct Outside {
    holder: Child,
}

impl Outside {
    fn new() -> Outside {
        let holder = Command::new("unshare")
            .args(["--net", "sleep", "600"])
            .spawn()
            .unwrap();
        let pid = holder.id().to_string();
        // unshare(1) makes the namespace before it runs sleep: wait until it has.
        wait_for("the outside namespace", || {
            std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()
                != std::fs::read_link("/proc/thread-self/ns/net").ok()
                && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "sleep")
        });
        run_tool(
            "ip",
            &[
                "link", "add", "uplink", "type", "veth", "peer", "name", "outside0",
            ],
        );
        run_tool("ip", &["link", "set", "outside0", "netns", &pid]);
        run_tool("ip", &["addr", "add", "10.99.0.1/24", "dev", "uplink"]);
        run_tool("ip", &["link", "set", "uplink", "up"]);
        let outside = Outside { holder };
        outside.run(&["ip", "addr", "add", "10.99.0.2/24", "dev", "outside0"]);
        outside.run(&["ip", "link", "set", "outside0", "up"]);
        outside.run(&["ip", "link", "set", "lo", "up"]);
        outside
    }

    /// Runs a command in the outside namespace.
    fn run(&self, args: &[&str]) -> String {
        let pid = self.holder.id().to_string();
        let mut all = vec!["-t", pid.as_str(), "-n", "--"];
        all.extend_from_slice(args);
        run_tool("nsenter", &all)
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn inspect(k: &Kiln, what: &[&str]) -> serde_json::Value {
    serde_json::from_str(&k.ok(what)).unwrap()
}

#[test]
fn published_ports_answer_on_localhost_and_other_addresses_and_a_taken_port_fails_first() {
    let Some(k) = kiln() else { return };
    let _outside = Outside::new();
    let id = k
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            "8080:80",
            "-p",
            "127.0.0.1:8081:80",
            // Not root: in its own network namespace any user binds port 80, as docker
            // lets it.
            "-u",
            "65534",
            "busybox:kiln",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/etc",
        ])
        .trim()
        .to_string();
    let hostname = &id[..12];
    wait_for("httpd", || get("127.0.0.1:8080", "/hostname").is_ok());
    // So with --network none too (the sandbox's namespace), not with the host's network.
    let start = |network: &str| {
        k.ok(&[
            "run",
            "--rm",
            "--network",
            network,
            "busybox:kiln",
            "cat",
            "/proc/sys/net/ipv4/ip_unprivileged_port_start",
        ])
    };
    assert_eq!(start("none"), "0\n");
    assert_eq!(start("host"), "1024\n");
    for (address, reachable) in [
        ("127.0.0.1:8080", true),
        ("10.99.0.1:8080", true),
        ("127.0.0.1:8081", true),
        // Bound to 127.0.0.1: not on the host's other addresses.
        ("10.99.0.1:8081", false),
    ] {
        let answer = get(address, "/hostname");
        assert_eq!(
            answer.as_ref().is_ok_and(|a| a.contains(hostname)),
            reachable,
            "{address}: {answer:?}"
        );
    }
    assert_eq!(
        k.ok(&["port", "web"]),
        "80/tcp -> 0.0.0.0:8080\n80/tcp -> 127.0.0.1:8081\n"
    );
    assert_eq!(
        k.ok(&["port", "web", "80"]),
        "0.0.0.0:8080\n127.0.0.1:8081\n"
    );
    assert!(k
        .ok(&["ps"])
        .contains("0.0.0.0:8080->80/tcp, 127.0.0.1:8081->80/tcp"));
    let settings = &inspect(&k, &["container", "inspect", "web"])[0]["NetworkSettings"];
    assert_eq!(settings["Ports"]["80/tcp"][0]["HostPort"], "8080");
    assert_eq!(settings["Networks"]["bridge"]["Gateway"], "172.17.0.1");

    // A port in use: refused before the container starts (docker's code and words),
    // and it leaves no interface and no rule.
    let links_before = links();
    let out = k.run(&["run", "--rm", "-p", "8080:80", "busybox:kiln", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Bind for 0.0.0.0:8080 failed: port is already allocated"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("no new interface", || links() == links_before);
    assert_eq!(ruleset().matches("dnat to").count(), 2);

    // -P: each EXPOSEd port on a free host port.
    k.ok(&[
        "run", "-d", "--name", "all", "-P", "web:kiln", "httpd", "-f", "-p", "80", "-h", "/etc",
    ]);
    let ports = k.ok(&["port", "all"]);
    assert!(ports.contains("53/udp -> 0.0.0.0:"), "{ports}");
    let http = k.ok(&["port", "all", "80/tcp"]);
    let port: u16 = http.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert!(port > 0);
    wait_for("httpd on the -P port", || {
        get(&format!("127.0.0.1:{port}"), "/hostname").is_ok()
    });

    k.ok(&["rm", "-f", "web", "all"]);
    wait_for("the veths to go", || !links().contains("veth"));
    assert!(!ruleset().contains("dnat to"), "{}", ruleset());
    assert!(get("127.0.0.1:8080", "/hostname").is_err());
}

#[test]
fn containers_on_a_user_network_find_each_other_by_name_and_alias_not_on_the_default_bridge() {
    let Some(k) = kiln() else { return };
    k.ok(&["network", "create", "appnet"]);
    k.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "appnet",
        "--network-alias",
        "database",
        "busybox:kiln",
        "sleep",
        "100",
    ]);
    let db_inspect = inspect(&k, &["container", "inspect", "db"]);
    let db_id = db_inspect[0]["Id"].as_str().unwrap();
    let db = &db_inspect[0]["NetworkSettings"]["Networks"]["appnet"];
    let address = db["IPAddress"].as_str().unwrap().to_string();
    assert!(address.starts_with("172.18."), "{db}");
    // --network container:db shares db's namespace, its address with it.
    let shared = k.ok(&[
        "run",
        "--rm",
        "--network",
        "container:db",
        "busybox:kiln",
        "ip",
        "-o",
        "-4",
        "addr",
    ]);
    assert!(shared.contains(&format!("inet {address}/16")), "{shared}");
    for name in ["db", "database", "DB"] {
        let out = k.ok(&[
            "run",
            "--rm",
            "--network",
            "appnet",
            "busybox:kiln",
            "nslookup",
            name,
        ]);
        assert!(
            out.contains(&format!("Address: {address}")),
            "{name}: {out}"
        );
    }
    let resolv = k.ok(&[
        "run",
        "--rm",
        "--network",
        "appnet",
        "busybox:kiln",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(resolv.starts_with("nameserver 127.0.0.11\n"), "{resolv}");
    assert!(resolv.contains("options ndots:0"), "{resolv}");
    k.ok(&[
        "run",
        "--rm",
        "--network",
        "appnet",
        "busybox:kiln",
        "ping",
        "-c1",
        "-W2",
        "database",
    ]);
    let hosts = k.ok(&["exec", "db", "cat", "/etc/hosts"]);
    assert!(
        hosts.ends_with(&format!("{address}\t{}\n", &db_id[..12])),
        "{hosts}"
    );
    let members = &inspect(&k, &["network", "inspect", "appnet"])[0]["Containers"];
    assert_eq!(members.as_object().unwrap().len(), 1, "{members}");

    // The default bridge gives no names (as docker's): the name is unknown to the
    // resolver it has (here none answers).
    k.ok(&[
        "run",
        "-d",
        "--name",
        "plain",
        "busybox:kiln",
        "sleep",
        "100",
    ]);
    let out = k.run(&[
        "run",
        "--rm",
        "--dns",
        "127.0.0.1",
        "busybox:kiln",
        "nslookup",
        "plain",
    ]);
    assert!(!out.status.success());
    // --network-alias needs a user network.
    let out = k.run(&[
        "run",
        "--rm",
        "--network-alias",
        "x",
        "busybox:kiln",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));

    k.ok(&["rm", "-f", "db", "plain"]);
    // Gone from the names once it is gone.
    let out = k.run(&[
        "run",
        "--rm",
        "--network",
        "appnet",
        "--dns",
        "127.0.0.1",
        "busybox:kiln",
        "nslookup",
        "db",
    ]);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let bridge = inspect(&k, &["network", "inspect", "appnet"])[0]["Id"]
        .as_str()
        .unwrap()[..12]
        .to_string();
    k.ok(&["network", "rm", "appnet"]);
    wait_for("the bridge to go", || {
        !links().contains(&format!("br-{bridge}"))
    });
    assert!(!ruleset().contains(&format!("br-{bridge}")));
    assert!(!k.ok(&["network", "ls"]).contains("appnet"));
}

#[test]
fn internal_networks_have_no_way_out_and_connect_disconnect_change_a_running_container() {
    let Some(k) = kiln() else { return };
    let _outside = Outside::new();
    k.ok(&["network", "create", "--internal", "closed"]);
    k.ok(&[
        "network",
        "create",
        "--subnet",
        "10.30.0.0/24",
        "--gateway",
        "10.30.0.254",
        "open",
    ]);
    // Out through NAT from a bridge network; no route at all from an internal one.
    k.ok(&[
        "run",
        "--rm",
        "busybox:kiln",
        "ping",
        "-c1",
        "-W2",
        "10.99.0.2",
    ]);
    k.ok(&[
        "run",
        "--rm",
        "--network",
        "open",
        "busybox:kiln",
        "ping",
        "-c1",
        "-W2",
        "10.99.0.2",
    ]);
    let routes = k.ok(&[
        "run",
        "--rm",
        "--network",
        "closed",
        "busybox:kiln",
        "ip",
        "route",
    ]);
    assert!(!routes.contains("default"), "{routes}");
    let out = k.run(&[
        "run",
        "--rm",
        "--network",
        "closed",
        "busybox:kiln",
        "ping",
        "-c1",
        "-W1",
        "10.99.0.2",
    ]);
    assert!(!out.status.success());
    // One kiln network cannot reach another.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "there",
        "--network",
        "open",
        "--ip",
        "10.30.0.7",
        "busybox:kiln",
        "sleep",
        "100",
    ]);
    let out = k.run(&[
        "run",
        "--rm",
        "busybox:kiln",
        "ping",
        "-c1",
        "-W1",
        "10.30.0.7",
    ]);
    assert!(!out.status.success());

    k.ok(&[
        "run",
        "-d",
        "--name",
        "mover",
        "--network",
        "closed",
        "busybox:kiln",
        "sleep",
        "100",
    ]);
    k.ok(&["network", "connect", "--alias", "mv", "open", "mover"]);
    let addresses = k.ok(&["exec", "mover", "ip", "-o", "-4", "addr"]);
    assert!(
        addresses.contains("eth1") && addresses.contains("10.30.0."),
        "{addresses}"
    );
    // It reaches its new neighbour, which finds it by its alias.
    k.ok(&["exec", "mover", "ping", "-c1", "-W2", "10.30.0.7"]);
    let found = k.ok(&["exec", "there", "nslookup", "mv"]);
    assert!(found.contains("Address: 10.30.0."), "{found}");
    let out = k.run(&["network", "connect", "open", "mover"]);
    assert!(!out.status.success());
    k.ok(&["network", "disconnect", "open", "mover"]);
    let addresses = k.ok(&["exec", "mover", "ip", "-o", "-4", "addr"]);
    assert!(!addresses.contains("eth1"), "{addresses}");
    // A network a container is on is not removed.
    let out = k.run(&["network", "rm", "open"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("running container"));
    k.ok(&["rm", "-f", "mover", "there"]);
    k.ok(&["network", "rm", "open"]);
    // prune takes the networks no container is on, never the predefined ones.
    let pruned = k.ok(&["network", "prune", "-f"]);
    assert_eq!(pruned, "Deleted Networks:\nclosed\n");
    let left = k.ok(&["network", "ls"]);
    assert_eq!(left.lines().count(), 4, "{left}");
    for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
        assert!(
            left.lines()
                .any(|l| l.split_whitespace().skip(1).take(2).eq([name, driver])),
            "{left}"
        );
    }
}

#[test]
fn macvlan_gives_a_container_its_own_address_on_the_parent_interface() {
    let Some(k) = kiln() else { return };
    let outside = Outside::new();
    let out = k.run(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "-o",
        "parent=nothere",
        "mv",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothere"));
    k.ok(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "-o",
        "parent=uplink",
        "--subnet",
        "10.99.0.0/24",
        "--gateway",
        "10.99.0.1",
        "mv",
    ]);
    k.ok(&[
        "run",
        "-d",
        "--name",
        "m",
        "--network",
        "mv",
        "--ip",
        "10.99.0.50",
        "--mac-address",
        "02:00:00:00:00:50",
        "busybox:kiln",
        "sleep",
        "100",
    ]);
    // Seen by the outside as a host of its own on the link, with the MAC it was given.
    outside.run(&["busybox", "ping", "-c1", "-W2", "10.99.0.50"]);
    let neighbours = outside.run(&["ip", "neigh", "show", "10.99.0.50"]);
    assert!(neighbours.contains("02:00:00:00:00:50"), "{neighbours}");
    k.ok(&["rm", "-f", "m"]);
    k.ok(&["network", "rm", "mv"]);
}

#[test]
fn a_container_started_right_after_it_stopped_keeps_its_network() {
    // The stopped container's supervisor says `exited` before it releases the network;
    // a start straight after must not lose the namespace it makes to that release.
    let Some(k) = kiln() else { return };
    k.ok(&["network", "create", "again"]);
    k.ok(&[
        "run",
        "-d",
        "--name",
        "again",
        "--network",
        "again",
        "-p",
        "9091:80",
        "busybox:kiln",
        "httpd",
        "-f",
        "-p",
        "80",
    ]);
    for round in 0..15 {
        k.ok(&["stop", "-t", "0", "again"]);
        k.ok(&["start", "again"]);
        let ip = k.ok(&["exec", "again", "ip", "-4", "-o", "addr", "show", "eth0"]);
        assert!(
            ip.contains("inet "),
            "round {round}: no address on eth0: {ip}"
        );
    }
    wait_for("httpd on the published port", || {
        get("127.0.0.1:9091", "/").is_ok()
    });
    k.ok(&["rm", "-f", "again"]);
    k.ok(&["network", "rm", "again"]);
    // The kernel removes a namespace's veth after the namespace goes, not at once.
    wait_for("the veth to go", || !links().contains("veth"));
}

#[test]
fn a_killed_supervisor_leaves_nothing_once_restore_or_rm_has_run() {
    let Some(k) = kiln() else { return };
    k.ok(&["network", "create", "appnet"]);
    k.ok(&[
        "run",
        "-d",
        "--name",
        "doomed",
        "--network",
        "appnet",
        "-p",
        "9090:80",
        "busybox:kiln",
        "httpd",
        "-f",
        "-p",
        "80",
    ]);
    assert!(links().contains("veth"));
    k.kill_supervisor(
        inspect(&k, &["container", "inspect", "doomed"])[0]["Id"]
            .as_str()
            .unwrap(),
    );
    wait_for("the exited status", || {
        k.ok(&["ps", "-a"]).contains("Exited (-1)")
    });
    k.ok(&["system", "restore"]);
    k.ok(&["system", "restore"]);
    wait_for("the veth to go", || !links().contains("veth"));
    assert!(!ruleset().contains("dnat to"));
    // Its port is free again for another container.
    k.ok(&["run", "--rm", "-p", "9090:80", "busybox:kiln", "true"]);
    k.ok(&["rm", "doomed"]);
    k.ok(&["network", "rm", "appnet"]);
    assert!(!ruleset().contains("br-"));
    assert!(!links().contains("br-"));
    // kiln writes no iptables rule of its own (its rules are in its nftables table).
    let legacy = run_tool("iptables-save", &[]);
    assert!(
        !legacy.contains("DNAT") && !legacy.contains("MASQUERADE"),
        "{legacy}"
    );
}

#[test]
fn run_steps_reach_out_but_not_the_hosts_loopback_or_services_unless_network_host() {
    let Some(k) = kiln() else { return };
    let outside = Outside::new();
    // A secret on the host's loopback, and a service on another address of the host.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let service = std::net::TcpListener::bind("10.99.0.1:0").unwrap();
    let secret_port = listener.local_addr().unwrap().port();
    let service_port = service.local_addr().unwrap().port();
    for l in [listener, service] {
        std::thread::spawn(move || {
            for mut c in l.incoming().flatten() {
                let _ = c.write_all(b"HTTP/1.0 200 OK\r\n\r\nSECRET\n");
            }
        });
    }
    outside.run(&["ip", "addr", "show"]);
    let probe =
        |target: &str| format!("RUN (echo | nc -w 2 {target}) || echo UNREACHABLE {target}\n");
    let dockerfile = format!(
        "FROM busybox:kiln\n{}{}RUN ping -c1 -W2 10.99.0.2 && echo OUTSIDE-OK\n",
        probe(&format!("127.0.0.1 {secret_port}")),
        probe(&format!("10.99.0.1 {service_port}")),
    );
    let ctx = context(&k.dir.path().join("netctx"), &[("Dockerfile", &dockerfile)]);
    let log = k.log(&[
        "build",
        "--no-cache",
        "--progress",
        "plain",
        ctx.to_str().unwrap(),
    ]);
    assert!(!log.contains("SECRET"), "{log}");
    assert!(
        log.contains(&format!("UNREACHABLE 127.0.0.1 {secret_port}")),
        "{log}"
    );
    assert!(
        log.contains(&format!("UNREACHABLE 10.99.0.1 {service_port}")),
        "{log}"
    );
    assert!(log.contains("OUTSIDE-OK"), "{log}");
    // The build's namespace went with the build (the kernel deletes its veth a moment
    // after the namespace's last reference goes).
    wait_for("the build's veth to go", || !links().contains("veth"));

    // RUN --network=host: only with the entitlement.
    let host =
        format!("FROM busybox:kiln\nRUN --network=host echo | nc -w 2 127.0.0.1 {secret_port}\n");
    let ctx = context(&k.dir.path().join("hostctx"), &[("Dockerfile", &host)]);
    let out = k.run(&["build", "--no-cache", ctx.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow network.host"));
    let log = k.log(&[
        "build",
        "--no-cache",
        "--progress",
        "plain",
        "--allow",
        "network.host",
        ctx.to_str().unwrap(),
    ]);
    assert!(log.contains("SECRET"), "{log}");
    // And `kiln build --network host` puts every step there.
    let plain = format!("FROM busybox:kiln\nRUN echo | nc -w 2 127.0.0.1 {secret_port}\n");
    let ctx = context(&k.dir.path().join("plainctx"), &[("Dockerfile", &plain)]);
    let log = k.log(&[
        "build",
        "--no-cache",
        "--progress",
        "plain",
        "--network",
        "host",
        ctx.to_str().unwrap(),
    ]);
    assert!(log.contains("SECRET"), "{log}");
}

#[test]
fn two_stores_on_one_host_keep_their_networks_apart() {
    let Some(first) = kiln() else { return };
    let second = Kiln::new();
    build_busybox(&second);
    for (k, port) in [(&first, "8080"), (&second, "8090")] {
        k.ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            &format!("{port}:80"),
            "busybox:kiln",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/etc",
        ]);
    }
    // The second store found kiln0 taken: a bridge, a subnet and a table of its own.
    let bridge = |k: &Kiln| {
        inspect(k, &["network", "inspect", "bridge"])[0]["IPAM"]["Config"][0]["Subnet"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(bridge(&first), "172.17.0.0/16");
    assert_eq!(bridge(&second), "172.18.0.0/16");
    let tables = ruleset();
    assert!(
        tables.contains("table ip kiln0") && tables.contains("table ip kiln1"),
        "{tables}"
    );
    for port in ["8080", "8090"] {
        wait_for("both published ports", || {
            get(&format!("127.0.0.1:{port}"), "/hostname").is_ok()
        });
    }
    first.ok(&["rm", "-f", "web"]);
    second.ok(&["rm", "-f", "web"]);
    assert!(!ruleset().contains("dnat to"));
}

/// A store removed whole (`rm -rf`, as a CI job's `KILN_ROOT` goes) cannot take its
/// bridge and firewall table with it: the next store that sets up networks removes
/// them, and leaves a store that is still there alone. Before, each removed store kept
/// its bridge and its subnet's route, and after 31 no subnet was free.
#[test]
fn the_bridge_and_rules_of_a_removed_store_go_and_a_live_stores_stay() {
    let Some(gone) = kiln() else { return };
    let Some(kept) = kiln() else { return };
    // Each store's build made its default bridge (its RUN steps joined it).
    let bridge = |k: &Kiln| {
        let out = k.ok(&["network", "inspect", "bridge"]);
        let inspect: serde_json::Value = serde_json::from_str(&out).unwrap();
        inspect[0]["Options"]["com.docker.network.bridge.name"]
            .as_str()
            .unwrap_or_else(|| panic!("no bridge name in {out}"))
            .to_string()
    };
    let (gone_bridge, kept_bridge) = (bridge(&gone), bridge(&kept));
    assert_ne!(gone_bridge, kept_bridge);
    for name in [&gone_bridge, &kept_bridge] {
        assert!(links().contains(&format!(" {name}:")), "{}", links());
        assert!(
            ruleset().contains(&format!("table ip {name} ")),
            "{}",
            ruleset()
        );
    }
    drop(gone);
    // A new store sets up its networks.
    Kiln::new().ok(&["network", "ls"]);
    assert!(
        !links().contains(&format!(" {gone_bridge}:")),
        "the removed store's bridge is still there:\n{}",
        links()
    );
    assert!(
        !ruleset().contains(&format!("table ip {gone_bridge} ")),
        "the removed store's table is still there:\n{}",
        ruleset()
    );
    assert!(links().contains(&format!(" {kept_bridge}:")), "{}", links());
    assert!(
        ruleset().contains(&format!("table ip {kept_bridge} ")),
        "{}",
        ruleset()
    );
    // And the live store still runs containers on it.
    kept.ok(&["run", "--rm", "busybox:kiln", "true"]);
}

/// A bridge made under a relative `KILN_ROOT` names its network's file by an absolute
/// path: another store, set up from another directory, leaves it alone.
#[test]
fn a_bridge_made_under_a_relative_store_path_is_left_to_its_store() {
    kiln_testkit::require_root!();
    let k = Kiln::new();
    let tarball = kiln_testkit::busybox_rootfs(k.dir.path(), 0);
    let relative = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
            .current_dir(k.dir.path())
            .env("KILN_ROOT", "store")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kiln {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    relative(&["import", tarball.to_str().unwrap(), "bb:1"]);
    relative(&["run", "--rm", "bb:1", "/bin/echo", "up"]);
    let out = k.ok(&["network", "inspect", "bridge"]);
    let inspect: serde_json::Value = serde_json::from_str(&out).unwrap();
    let bridge = inspect[0]["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_string();
    let details = run_tool("ip", &["-d", "link", "show", &bridge]);
    assert!(
        details.contains(&format!(
            "alias kiln network {}/",
            std::fs::canonicalize(k.root()).unwrap().display()
        )),
        "{details}"
    );
    Kiln::new().ok(&["network", "ls"]);
    assert!(links().contains(&format!(" {bridge}:")), "{}", links());
}
