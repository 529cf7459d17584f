//! What the container benchmarks share: running commands, timing them, and the busybox
//! image kiln builds FROM scratch (saved as an archive for podman).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

pub fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Milliseconds per run of `cmd`, N times.
pub fn per_run(n: usize, mut cmd: impl FnMut() -> Command) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        ok(&mut cmd());
    }
    start.elapsed().as_secs_f64() * 1000.0 / n as f64
}

/// The release kiln beside this benchmark, run against the store `store`.
pub struct Kiln {
    binary: PathBuf,
    pub store: PathBuf,
}

impl Kiln {
    pub fn new(store: PathBuf) -> Kiln {
        let binary = std::env::current_exe().unwrap().with_file_name("kiln");
        assert!(binary.exists(), "build kiln first: cargo build --release");
        Kiln { binary, store }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.binary);
        c.env("KILN_ROOT", &self.store).args(args);
        c
    }

    /// Builds busybox FROM scratch (Debian's busybox-static) as `localhost/bench:1`,
    /// with the Dockerfile lines `extra` after it, and saves it to `work/image.tar`.
    pub fn busybox(&self, work: &Path, extra: &str) -> PathBuf {
        let ctx = work.join("ctx");
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::copy("/bin/busybox", ctx.join("busybox")).expect("/bin/busybox (busybox-static)");
        std::fs::write(
            ctx.join("Dockerfile"),
            format!("FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n{extra}"),
        )
        .unwrap();
        ok(&mut self.cmd(&[
            "build",
            "-q",
            "-t",
            "localhost/bench:1",
            ctx.to_str().unwrap(),
        ]));
        let archive = work.join("image.tar");
        ok(&mut self.cmd(&["save", "-o", archive.to_str().unwrap(), "localhost/bench:1"]));
        archive
    }
}

/// podman with a private store under `root`, as the benchmarks run it here: cgroupfs,
/// no events, runc (crun refuses this machine's hybrid cgroups).
pub fn podman(root: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("podman");
    c.arg("--root")
        .arg(root.join("root"))
        .arg("--runroot")
        .arg(root.join("run"))
        .args(["--cgroup-manager", "cgroupfs", "--events-backend", "none"])
        .args(["--runtime", "runc"])
        .args(args);
    c
}
