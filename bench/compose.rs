//! `compose up -d` and `down -v` of a project like the sample (an httpd front on a
//! published port, three workers on a named volume, a db with a healthcheck, a secret):
//! kiln beside podman-compose (PyPI; podman 4.3 from Debian) in the same run, in a network
//! namespace the benchmark makes. The front depends on the db being started, not
//! healthy: podman-compose 1.6 skips `service_healthy` on podman 4.3, and the same work
//! must be timed on both sides. Its processes end at once on SIGTERM (`sleep & wait`:
//! a shell runs its trap only between commands), so `down` times the tools, not the
//! programs' own shutdown.
//! Usage (root; podman, podman-compose): compose-bench [ROUNDS]   (default 5)

mod containers;

use std::process::Command;

use containers::{ok, per_run, Kiln};

const PROJECT: &str = r#"
name: bench
services:
  front:
    image: localhost/bench:1
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    init: true
    ports: ["8080:80"]
    depends_on: [db]
    secrets: [api_key]
  worker:
    image: localhost/bench:1
    command: sh -c 'trap "exit 0" TERM; while true; do hostname >> /data/log; sleep 1 & wait $$!; done'
    volumes: ["data:/data"]
    deploy:
      mode: replicated
      replicas: 3
  db:
    image: localhost/bench:1
    command: sh -c 'echo ready > /ready; trap "exit 0" TERM; while true; do sleep 1 & wait $$!; done'
    healthcheck:
      test: ["CMD", "test", "-f", "/ready"]
      interval: 1s
volumes:
  data:
secrets:
  api_key:
    file: ./api_key.txt
"#;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    assert!(nix::unistd::geteuid().is_root(), "compose-bench needs root");
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare --net");
    ok(Command::new("ip").args(["link", "set", "lo", "up"]));
    let work = tempfile::tempdir_in("/tmp").unwrap();
    let w = work.path();
    let kiln = Kiln::new(w.join("store"));
    let archive = kiln.busybox(w, "RUN mkdir /www /data && echo hi > /www/index.html\n");
    let project = w.join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("compose.yaml"), PROJECT).unwrap();
    std::fs::write(project.join("api_key.txt"), "s3cr3t\n").unwrap();
    let k = |args: &[&str]| {
        let mut c = kiln.cmd(&["compose"]);
        c.args(args).current_dir(&project);
        c
    };
    let proot = w.join("podman");
    ok(&mut containers::podman(
        &proot,
        &["load", "-q", "-i", archive.to_str().unwrap()],
    ));
    let podman_args = format!(
        "--podman-args=--root={} --runroot={} --cgroup-manager=cgroupfs --events-backend=none --runtime=runc",
        proot.join("root").display(),
        proot.join("run").display()
    );
    let pc = |args: &[&str]| {
        let mut c = Command::new("podman-compose");
        c.env("PODMAN_COMPOSE_DOCKER_COMPOSE_COMPAT", "1")
            .arg(&podman_args)
            .arg("--podman-run-args=--ulimit=nofile=1024:1024 --ulimit=nproc=4096:4096")
            .args(args)
            .current_dir(&project);
        c
    };
    let (mut kiln_up, mut kiln_down, mut pc_up, mut pc_down) =
        (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..rounds {
        kiln_up = kiln_up.min(per_run(1, || k(&["up", "-d"])));
        let running = ok(&mut k(&["ps", "-q"])).lines().count();
        assert_eq!(running, 5, "kiln: five containers");
        kiln_down = kiln_down.min(per_run(1, || k(&["down", "-v"])));
        pc_up = pc_up.min(per_run(1, || pc(&["up", "-d"])));
        pc_down = pc_down.min(per_run(1, || pc(&["down", "-v"])));
    }
    println!("compose project (front, 3 workers, db, a volume, a secret), best of {rounds}:");
    println!(
        "  up -d   kiln {kiln_up:>7.0} ms   podman-compose {pc_up:>7.0} ms   podman-compose / kiln {:.1}x",
        pc_up / kiln_up
    );
    println!(
        "  down -v kiln {kiln_down:>7.0} ms   podman-compose {pc_down:>7.0} ms   podman-compose / kiln {:.1}x",
        pc_down / kiln_down
    );
    println!("goal: >= 3x faster than podman-compose for both");
}
