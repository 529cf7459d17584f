//! The sandbox tests' kit: a busybox root, Docker's default spec for a process, running it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;

use kiln_runtime::{default_spec, spawn, ProcessSpec, Rootfs};

/// A lower layer with busybox and a link for each of its applets.
pub fn busybox_lower(dir: &Path) -> PathBuf {
    let lower = dir.join("lower");
    std::fs::create_dir_all(lower.join("bin")).unwrap();
    std::fs::copy(kiln_testkit::busybox(), lower.join("bin/busybox")).unwrap();
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", lower.join("bin").join(applet)).unwrap();
        }
    }
    lower
}

/// What a test runs: Docker's default spec for the process, on busybox.
pub struct Config {
    pub process: ProcessSpec,
    pub root: Rootfs,
}

pub fn config(dir: &Path, args: &[&str]) -> Config {
    let lower = busybox_lower(dir);
    Config {
        process: ProcessSpec {
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec!["PATH=/bin".into(), "HOME=/root".into()],
            cwd: "/".into(),
            hostname: "kiln-test".into(),
            ..Default::default()
        },
        root: Rootfs {
            lower: vec![lower],
            upper: dir.join("upper"),
            work: dir.join("work"),
            merged: dir.join("merged"),
            snapshotter: kiln_runtime::Snapshotter::Overlay,
        },
    }
}

pub fn start(
    config: &Config,
    stdout: Stdio,
    stderr: Stdio,
) -> Result<kiln_runtime::Sandboxed, kiln_runtime::Error> {
    let spec = default_spec(&config.process).unwrap();
    spawn(&spec, &config.root, Stdio::null(), stdout, stderr)
}

pub fn run(config: &Config) -> (i32, String, String) {
    let sandboxed = start(config, Stdio::piped(), Stdio::piped()).unwrap();
    let mut child = sandboxed;
    let mut out = String::new();
    let mut err = String::new();
    use std::io::Read;
    child
        .child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), out, err)
}
