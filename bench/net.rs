//! Networks, kiln beside podman (netavark) in the same run, inside a network namespace
//! the benchmark makes (nothing touches the machine's own network):
//! - network setup + teardown: `run --rm -p 8080:80 IMG true` on the default bridge less
//!   the same run with `--network none`, N runs each, for kiln and for podman;
//! - HTTP through a published port: wrk against busybox httpd in a container, through
//!   127.0.0.1:PORT (kiln's DNAT, then podman's) and straight to the container's address;
//! - the 30-layer build (30 RUN steps, no cache) with RUN in the build's network
//!   namespace against `--network host`.
//!
//! Usage (root; podman, netavark, wrk from Debian): net-bench [N]   (default 30)

mod containers;

use std::process::{Command, Stdio};

use containers::{ok, per_run, Kiln};

/// Requests per second wrk reports for `url` (2 threads, 16 connections, 5 s).
fn wrk(url: &str) -> f64 {
    let out = ok(Command::new("wrk").args(["-t2", "-c16", "-d5s", url]));
    out.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("wrk printed no rate:\n{out}"))
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    assert!(nix::unistd::geteuid().is_root(), "net-bench needs root");
    // A network namespace of the benchmark's own, loopback up: bridges, veths and NAT
    // rules (kiln's and netavark's) live and die in it.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare --net");
    ok(Command::new("ip").args(["link", "set", "lo", "up"]));
    let work = tempfile::tempdir_in("/tmp").unwrap();
    let w = work.path();
    let kiln = Kiln::new(w.join("store"));
    let k = |args: &[&str]| kiln.cmd(args);
    let archive = kiln.busybox(w, "RUN mkdir /www && head -c 1024 /dev/zero > /www/f\n");

    // Setup + teardown: bridge with a published port, less none.
    let kiln_run = |network: &'static [&'static str]| {
        let k = &k;
        move || {
            let mut c = k(&["run", "--rm"]);
            c.args(network).args(["localhost/bench:1", "true"]);
            c
        }
    };
    const NONE: &[&str] = &["--network", "none"];
    const BRIDGE: &[&str] = &["--network", "bridge", "-p", "8080:80"];
    ok(&mut kiln_run(BRIDGE)()); // warm: the bridge and the table exist from here
    let kiln_none = per_run(n, kiln_run(NONE));
    let kiln_bridge = per_run(n, kiln_run(BRIDGE));

    let proot = w.join("podman");
    let podman = |args: &[&str]| {
        let mut c = containers::podman(&proot, &["--network-backend", "netavark"]);
        c.args(args);
        c
    };
    let podman_run = |network: &'static [&'static str]| {
        let podman = &podman;
        move || {
            let mut c = podman(&["run", "--rm"]);
            c.args(network)
                .args([
                    "--ulimit",
                    "nofile=1024:1024",
                    "--ulimit",
                    "nproc=4096:4096",
                ])
                .args(["localhost/bench:1", "true"]);
            c
        }
    };
    const PODMAN_BRIDGE: &[&str] = &["-p", "8080:80"];
    ok(&mut podman(&[
        "load",
        "-q",
        "-i",
        archive.to_str().unwrap(),
    ]));
    ok(&mut podman_run(PODMAN_BRIDGE)());
    let runs = n.min(20);
    let podman_none = per_run(runs, podman_run(NONE));
    let podman_bridge = per_run(runs, podman_run(PODMAN_BRIDGE));

    // HTTP through a published port and straight to the container: each on a container
    // of its own address, started for it. (Two runs of wrk against one address meet in
    // the host's connection tracking: the first run's flows stay there in TIME_WAIT for
    // two minutes, and the masquerade of the second must pick around them.)
    const HTTPD: [&str; 6] = ["httpd", "-f", "-p", "80", "-h", "/www"];
    ok(&mut k(&[
        "network",
        "create",
        "--subnet",
        "10.123.0.0/24",
        "benchnet",
    ]));
    let mut next_ip = 10;
    let mut kiln_httpd = |published: bool| {
        let ip = format!("10.123.0.{next_ip}");
        next_ip += 1;
        ok(k(&[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "benchnet",
            "--ip",
            &ip,
        ])
        .args(["-p", "8080:80", "localhost/bench:1"])
        .args(HTTPD));
        std::thread::sleep(std::time::Duration::from_millis(300));
        let rate = wrk(&if published {
            "http://127.0.0.1:8080/f".to_string()
        } else {
            format!("http://{ip}:80/f")
        });
        ok(&mut k(&["rm", "-f", "web"]));
        rate
    };
    let podman_httpd = || {
        ok(podman(&["run", "-d", "--name", "web", "-p", "8081:80"])
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=4096:4096",
            ])
            .arg("localhost/bench:1")
            .args(HTTPD));
        std::thread::sleep(std::time::Duration::from_millis(300));
        let rate = wrk("http://127.0.0.1:8081/f");
        ok(&mut podman(&["rm", "-f", "web"]));
        rate
    };
    let (mut direct, mut published, mut podman_published) = (0f64, 0f64, 0f64);
    for _ in 0..2 {
        published = published.max(kiln_httpd(true));
        direct = direct.max(kiln_httpd(false));
        podman_published = podman_published.max(podman_httpd());
    }

    // 30 RUN steps, no cache: in the build's namespace against the host's network.
    let layers = w.join("layers");
    std::fs::create_dir_all(&layers).unwrap();
    let steps: String = (0..30).map(|i| format!("RUN echo {i} > /f{i}\n")).collect();
    std::fs::write(
        layers.join("Dockerfile"),
        format!("FROM localhost/bench:1\n{steps}"),
    )
    .unwrap();
    let build = |network: &str| {
        let mut c = k(&["build", "-q", "--no-cache", "--network", network]);
        c.arg(&layers).stdout(Stdio::null());
        c
    };
    let (mut own, mut host) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        own = own.min(per_run(1, || build("default")));
        host = host.min(per_run(1, || build("host")));
    }

    let kiln_cost = kiln_bridge - kiln_none;
    let podman_cost = podman_bridge - podman_none;
    println!("run --rm IMG true, {n} runs (podman {runs}):");
    println!("  kiln   --network none {kiln_none:>7.1} ms   bridge -p 8080:80 {kiln_bridge:>7.1} ms   network {kiln_cost:>6.1} ms");
    println!("  podman --network none {podman_none:>7.1} ms   bridge -p 8080:80 {podman_bridge:>7.1} ms   network {podman_cost:>6.1} ms");
    println!(
        "  network setup + teardown: podman / kiln {:.1}x",
        podman_cost / kiln_cost
    );
    println!("HTTP, busybox httpd, wrk -t2 -c16 (a connection per request):");
    println!("  kiln, straight to the container  {direct:>9.0} req/s");
    println!(
        "  kiln, 127.0.0.1:8080 (DNAT)     {published:>9.0} req/s   {:.1}% of direct",
        published / direct * 100.0
    );
    println!(
        "  podman, 127.0.0.1:8081          {podman_published:>9.0} req/s   kiln / podman {:.2}x",
        published / podman_published
    );
    println!(
        "30 RUN steps, no cache (best of 5): own namespace {:.0} ms, --network host {:.0} ms: {:+.1}%",
        own,
        host,
        (own / host - 1.0) * 100.0
    );
    println!("goals: network setup + teardown >= 5x faster than podman's; published port within 10% of direct; RUN's namespace costs the 30-layer build < 5%");
}
