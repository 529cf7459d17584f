//! Container start: `kiln run --rm --network none IMG true` (image → root → exit, the supervisor and the
//! state included) against `crun run`/`runc run` of a bundle of the same image (the runtime
//! alone) and `podman run --rm --network none` of the same image (private storage), N
//! times each in the same run; then 50 `kiln run -d` at once: the time to start them all,
//! and each supervisor's resident memory. Prints milliseconds and ratios.
//! Usage (root; crun, runc, podman from Debian): run-bench [N]   (default 50)

mod containers;
mod oci;

use std::process::{Command, Stdio};
use std::time::Instant;

use containers::{ok, per_run, podman, Kiln};

/// `podman run` of the image: the caller's rlimits (root here lacks CAP_SYS_RESOURCE to
/// raise them as podman's defaults would).
const PODMAN_RUN: [&str; 10] = [
    "run",
    "--rm",
    "--network",
    "none",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=4096:4096",
    "localhost/bench:1",
    "true",
];

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    assert!(nix::unistd::geteuid().is_root(), "run-bench needs root");
    let work = tempfile::tempdir_in("/tmp").unwrap();
    let w = work.path();
    let kiln = Kiln::new(w.join("store"));
    let store = kiln.store.clone();
    let k = |args: &[&str]| kiln.cmd(args);
    let archive = kiln.busybox(w, "");
    // The same image's root, for the bundle of crun and runc.
    let rootfs = w.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    ok(Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(w));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .replace(':', "/");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.join("blobs").join(&manifest_digest)).unwrap())
            .unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        let blob = w
            .join("blobs")
            .join(layer["digest"].as_str().unwrap().replace(':', "/"));
        ok(Command::new("tar")
            .arg("-xf")
            .arg(&blob)
            .arg("-C")
            .arg(&rootfs));
    }

    // The start alone, as podman's is measured (`net-bench` measures networks).
    let kiln_run = [
        "run",
        "--rm",
        "--network",
        "none",
        "localhost/bench:1",
        "true",
    ];
    k(&kiln_run).output().unwrap(); // warm
    let kiln_ms = per_run(n, || k(&kiln_run));
    let runtime = ["crun", "runc"]
        .iter()
        .find_map(|r| oci::oci_runtime(r, w, &rootfs, n).map(|ms| (*r, ms)));

    let proot = w.join("podman");
    let podman = |args: &[&str]| podman(&proot, args);
    let podman_ms = if Command::new("podman").arg("--version").output().is_ok() {
        ok(&mut podman(&[
            "load",
            "-q",
            "-i",
            archive.to_str().unwrap(),
        ]));
        podman(&PODMAN_RUN).output().unwrap();
        let runs = n.min(20);
        Some(per_run(runs, || podman(&PODMAN_RUN)))
    } else {
        println!("podman: not installed (apt-get install podman)");
        None
    };

    // 50 detached containers at once, then each supervisor's memory.
    let start = Instant::now();
    let children: Vec<_> = (0..50)
        .map(|i| {
            k(&[
                "run",
                "-d",
                "--name",
                &format!("c{i}"),
                "--network",
                "none",
                "localhost/bench:1",
                "sleep",
                "60",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let fifty = start.elapsed().as_secs_f64();
    // Per supervisor: resident (VmRSS, the kiln binary's pages included, which all 50
    // share), proportional (Pss: shared pages divided among their users) and anonymous
    // (the memory each one adds), from /proc/PID/smaps_rollup.
    let mut rss = Vec::new();
    let mut pss = Vec::new();
    let mut anon = Vec::new();
    for entry in std::fs::read_dir(store.join("containers"))
        .unwrap()
        .flatten()
    {
        let Ok(state) = std::fs::read(entry.path().join("state.json")) else {
            continue;
        };
        let state: serde_json::Value = serde_json::from_slice(&state).unwrap();
        let pid = state["supervisor"].as_u64().unwrap_or(0);
        let rollup =
            std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        let field = |name: &str| {
            rollup
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        };
        if let (Some(r), Some(p), Some(a)) = (field("Rss:"), field("Pss:"), field("Anonymous:")) {
            rss.push(r);
            pss.push(p);
            anon.push(a);
        }
    }
    let names: Vec<String> = (0..50).map(|i| format!("c{i}")).collect();
    let mut rm = k(&["rm", "-f"]);
    rm.args(&names).stdout(Stdio::null());
    ok(&mut rm);

    println!("container start to exit, `true`, {n} runs each:");
    println!("  kiln run --rm            {kiln_ms:>8.1} ms");
    if let Some((name, ms)) = runtime {
        println!(
            "  {name} run (bundle)       {ms:>8.1} ms   kiln / {name}: {:.2}x",
            kiln_ms / ms
        );
    }
    if let Some(ms) = podman_ms {
        println!(
            "  podman run --rm          {ms:>8.1} ms   podman / kiln: {:.1}x",
            ms / kiln_ms
        );
    }
    let median = |v: &mut Vec<u64>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    println!(
        "50 kiln run -d at once: {fifty:.2} s; per supervisor (median): RSS {} KiB, PSS {} KiB, anonymous {} KiB",
        median(&mut rss),
        median(&mut pss),
        median(&mut anon)
    );
    println!("goals: start-to-exit within 1.5x crun's (runc's where crun refuses), >= 10x faster than podman; supervisor <= 2 MiB RSS");
}
