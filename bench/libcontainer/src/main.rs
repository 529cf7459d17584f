//! youki's libcontainer starting `/bin/true` on an overlay root, N times, as kiln's
//! `sandbox-bench` measures kiln and runc: the figure behind kiln's choice of its own
//! sandbox (docs/security.md). Root; Debian's runc makes the bundle's config.json.
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let work = Path::new("/tmp/youki-bench-work");
    let _ = std::fs::remove_dir_all(work);
    let lower = work.join("lower");
    std::fs::create_dir_all(lower.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", lower.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", lower.join("bin/true")).unwrap();
    let bundle = work.join("bundle");
    std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
    assert!(Command::new("runc")
        .args(["spec", "--bundle"])
        .arg(&bundle)
        .status()
        .unwrap()
        .success());
    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["/bin/true"]);
    config["root"]["readonly"] = false.into();
    std::fs::write(&path, config.to_string()).unwrap();
    let state = work.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let start = Instant::now();
    for i in 0..n {
        let dir = work.join(format!("run-{i}"));
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
        let mut container = ContainerBuilder::new(format!("b{i}"), SyscallType::default())
            .with_executor(DefaultExecutor {})
            .with_root_path(&state)
            .unwrap()
            .as_init(&bundle)
            .with_systemd(false)
            .with_detach(false)
            .build()
            .unwrap_or_else(|e| panic!("build: {e}"));
        container.start().unwrap_or_else(|e| panic!("start: {e}"));
        let pid = container.pid().unwrap();
        let _ = nix::sys::wait::waitpid(pid, None);
        container
            .delete(true)
            .unwrap_or_else(|e| panic!("delete: {e}"));
        nix::mount::umount2(&bundle.join("rootfs"), nix::mount::MntFlags::MNT_DETACH).unwrap();
    }
    println!(
        "libcontainer 0.5.7 (youki): {:.2} ms per start, {n} runs",
        start.elapsed().as_secs_f64() * 1000.0 / n as f64
    );
}
