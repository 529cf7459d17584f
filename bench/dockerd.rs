//! A private dockerd for the benchmarks that run BuildKit beside kiln (Debian's docker.io),
//! as DEVELOPERS.md describes it.

use std::path::Path;
use std::process::Command;

/// A private dockerd (Debian's docker.io, whose builder is BuildKit) in a network
/// namespace with only loopback, with its own data, exec root and socket under the
/// benchmark's directory; stopped when dropped.
pub struct Dockerd {
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl Dockerd {
    pub fn start(work: &Path) -> Option<Dockerd> {
        if !Path::new("/usr/sbin/dockerd").exists() {
            return None;
        }
        let dir = work.join("dockerd");
        std::fs::create_dir_all(&dir).unwrap();
        let script = format!(
            "ip link set lo up && exec dockerd --iptables=false --ip6tables=false --bridge=none --data-root {d}/data --exec-root {d}/exec --pidfile {d}/pid -H unix://{d}/sock",
            d = dir.display()
        );
        let child = Command::new("unshare")
            .args(["--net", "--fork", "--kill-child", "sh", "-c", &script])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .expect("unshare");
        let d = Dockerd { child, dir };
        for _ in 0..600 {
            if d.docker(&["info"])
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return Some(d);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("dockerd did not start: see {}", d.dir.join("log").display());
    }

    /// Debian's docker CLI (a newer one on PATH would refuse BuildKit without buildx).
    pub fn docker(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("/usr/bin/docker");
        cmd.arg("-H")
            .arg(format!("unix://{}/sock", self.dir.display()))
            .args(args);
        cmd
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM lets dockerd stop its containerd; then its mounts can go.
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let _ = self.child.wait();
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.join("data"))
            .output();
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.join("exec"))
            .output();
    }
}
