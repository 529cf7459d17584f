//! What a RUN step's sandbox costs to start: kiln's runtime (confined as Docker confines,
//! and privileged) against runc and crun (Debian's), each starting `/bin/true` on the same
//! busybox root over overlayfs, N times in a row. The per-step figure that chose kiln's
//! engine (see the README's "Security model").
//! Usage (root): sandbox-bench [N]   (default 100)

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

mod oci;

use kiln_runtime::{default_spec, spawn, ProcessSpec, Rootfs, Snapshotter};
use oci::oci_runtime;

fn busybox_root(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).expect("/bin/busybox (busybox-static)");
    std::os::unix::fs::symlink("busybox", dir.join("bin/true")).unwrap();
    std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
}

fn process(privileged: bool) -> ProcessSpec {
    ProcessSpec {
        args: vec!["/bin/true".into()],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        hostname: "bench".into(),
        privileged,
        ..Default::default()
    }
}

/// Milliseconds per start of kiln's sandbox, each on a fresh upper directory.
fn kiln(work: &Path, lower: &Path, n: usize, privileged: bool) -> f64 {
    let spec = default_spec(&process(privileged)).unwrap();
    let start = Instant::now();
    for i in 0..n {
        let dir = work.join(format!("kiln-{privileged}-{i}"));
        let root = Rootfs {
            lower: vec![lower.to_path_buf()],
            upper: dir.join("upper"),
            work: dir.join("work"),
            merged: dir.join("merged"),
            snapshotter: Snapshotter::Overlay,
        };
        let status = spawn(&spec, &root, Stdio::null(), Stdio::null(), Stdio::inherit())
            .unwrap()
            .wait()
            .unwrap();
        assert!(status.success());
    }
    start.elapsed().as_secs_f64() * 1000.0 / n as f64
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    assert!(nix::unistd::geteuid().is_root(), "sandbox-bench needs root");
    let work = tempfile::tempdir_in("/tmp").unwrap();
    let lower = work.path().join("lower");
    busybox_root(&lower);
    // Warm: the seccomp profile is read and compiled once per process, as in a build.
    kiln(work.path(), &lower, 3, false);
    let confined = kiln(work.path(), &lower, n, false);
    let privileged = kiln(work.path(), &lower, n, true);
    println!("per start of /bin/true on an overlay root, {n} runs:");
    println!("kiln, confined (Docker's defaults)   {confined:6.2} ms");
    println!("kiln, privileged (security.insecure) {privileged:6.2} ms");
    for runtime in ["crun", "runc"] {
        if let Some(ms) = oci_runtime(runtime, work.path(), &lower, n) {
            println!(
                "{runtime:<36} {ms:6.2} ms ({:.1}x kiln confined)",
                ms / confined
            );
        }
    }
}
