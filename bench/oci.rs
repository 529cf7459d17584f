//! OCI runtimes (Debian's runc and crun) run as the benchmarks measure them.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Milliseconds per `RUNTIME run` of a bundle whose root is an overlay mounted for each
/// run (as a builder does), with Docker's default spec (`RUNTIME spec`, made non-terminal).
pub fn oci_runtime(runtime: &str, work: &Path, lower: &Path, n: usize) -> Option<f64> {
    if Command::new(runtime).arg("--version").output().is_err() {
        println!("{runtime}: not installed (apt-get install {runtime})");
        return None;
    }
    let bundle = work.join(format!("bundle-{runtime}"));
    std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
    let status = Command::new(runtime)
        .args(["spec", "--bundle"])
        .arg(&bundle)
        .status()
        .unwrap();
    assert!(status.success());
    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["/bin/true"]);
    config["root"]["readonly"] = false.into();
    std::fs::write(&path, config.to_string()).unwrap();
    let state = work.join(format!("state-{runtime}"));
    let start = Instant::now();
    for i in 0..n {
        let dir = work.join(format!("{runtime}-{i}"));
        for d in ["upper", "work"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            dir.join("upper").display(),
            dir.join("work").display()
        );
        nix::mount::mount(
            Some("overlay"),
            &bundle.join("rootfs"),
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(options.as_str()),
        )
        .unwrap();
        let mut cmd = Command::new(runtime);
        if runtime == "crun" {
            // crun refuses this machine's hybrid cgroup layout otherwise; kiln's sandbox
            // makes no cgroup either.
            cmd.arg("--cgroup-manager=disabled");
        }
        let status = cmd
            .arg("--root")
            .arg(&state)
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(format!("bench-{i}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        nix::mount::umount2(&bundle.join("rootfs"), nix::mount::MntFlags::MNT_DETACH).unwrap();
        if !status.status.success() {
            println!(
                "{runtime}: not measured: {}",
                String::from_utf8_lossy(&status.stderr).trim()
            );
            return None;
        }
    }
    Some(start.elapsed().as_secs_f64() * 1000.0 / n as f64)
}
