//! The sandbox against the real kernel: namespaces, overlay, mounts, users, exit codes.
//! Needs root (CI runs as root) and Debian's busybox-static for the root filesystem.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

mod support;

use kiln_runtime::{bind_mount, tmpfs_mount};
use kiln_testkit::{require_root, wait_for};
use support::{config, run, start};

fn upper_entries(upper: &Path) -> Vec<String> {
    let mut v: Vec<String> = walk(upper)
        .into_iter()
        .map(|p| p.strip_prefix(upper).unwrap().display().to_string())
        .collect();
    v.sort();
    v
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.clone());
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walk(&p));
        }
    }
    out
}

#[test]
fn a_program_runs_as_pid_1_with_its_own_hostname_and_its_changes_land_in_upper() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &["/bin/sh", "-c", "echo hello > /out; echo pid=$$; hostname; id -u; ls /proc/1/exe >/dev/null && echo proc"]);
    let (code, out, err) = run(&cfg);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "pid=1\nkiln-test\n0\nproc\n");
    assert_eq!(
        std::fs::read_to_string(cfg.root.upper.join("out")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        upper_entries(&cfg.root.upper),
        ["out"],
        "no /proc, /dev or /sys stub is left in the layer"
    );
    assert!(
        std::fs::read_dir(&cfg.root.merged)
            .unwrap()
            .next()
            .is_none(),
        "the root was mounted in the sandbox only"
    );
}

#[test]
fn exit_codes_and_signals_reach_the_caller() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(run(&config(tmp.path(), &["/bin/sh", "-c", "exit 7"])).0, 7);
    // A program killed from outside (PID 1 cannot be killed from inside its namespace).
    let tmp = tempfile::tempdir().unwrap();
    let sandboxed = start(
        &config(tmp.path(), &["/bin/sleep", "30"]),
        Stdio::null(),
        Stdio::null(),
    )
    .unwrap();
    let middle = sandboxed.child.id();
    let children = format!("/proc/{middle}/task/{middle}/children");
    let first_child = || -> Option<i32> {
        std::fs::read_to_string(&children)
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    wait_for("the sandbox's PID 1", || first_child().is_some());
    let pid = first_child().expect("PID 1 stays until it is killed");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(sandboxed.wait().unwrap().code(), Some(128 + 9));
    let tmp = tempfile::tempdir().unwrap();
    let err = start(
        &config(tmp.path(), &["/no/such/program"]),
        Stdio::null(),
        Stdio::null(),
    )
    .err()
    .expect("refused");
    assert!(
        err.to_string().contains("No such file or directory"),
        "{err}"
    );
}

#[test]
fn a_loopback_network_has_only_lo_and_it_is_up() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = run(&config(tmp.path(), &["/bin/sh", "-c", "cat /proc/net/dev | tail -n +3 | cut -d: -f1; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags"]));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines[0], "lo", "{out}");
    assert_eq!(lines.len(), 3, "only lo: {out}");
    let flags = u32::from_str_radix(lines[2].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is up: {out}");
}

#[test]
fn programs_are_found_on_path_and_run_as_the_configured_user() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(
        tmp.path(),
        &[
            "sh",
            "-c",
            "id -u; id -g; touch /denied 2>/dev/null || echo denied; pwd",
        ],
    );
    cfg.process.uid = 1000;
    cfg.process.gid = 1001;
    cfg.process.cwd = "/work/dir".into();
    let (code, out, err) = run(&cfg);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1000\n1001\ndenied\n/work/dir\n");
    assert_eq!(
        upper_entries(&cfg.root.upper),
        ["work", "work/dir"],
        "the working directory is created, as Docker does"
    );
}

#[test]
fn deletions_are_overlay_whiteouts_and_mounts_leave_no_trace() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let host = tmp.path().join("context");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("input"), "from the host").unwrap();
    let mut cfg = config(tmp.path(), &["/bin/sh", "-c", "rm /bin/cat.missing 2>/dev/null; rm /bin/ls; cp=$(/bin/busybox cat /ctx/input); echo \"$cp\" > /copied; touch /ctx/x 2>/dev/null || echo read-only; echo t > /scratch/t"]);
    cfg.process
        .mounts
        .push(bind_mount(Path::new("/ctx"), &host, true));
    cfg.process
        .mounts
        .push(tmpfs_mount(Path::new("/scratch"), Some(1 << 20)));
    let (code, out, err) = run(&cfg);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "read-only\n");
    assert_eq!(
        std::fs::read_to_string(cfg.root.upper.join("copied")).unwrap(),
        "from the host\n"
    );
    let ls = std::fs::symlink_metadata(cfg.root.upper.join("bin/ls")).unwrap();
    assert!(
        ls.file_type().is_char_device() && ls.rdev() == 0,
        "a deletion is a 0/0 character device in upper"
    );
    assert_eq!(upper_entries(&cfg.root.upper), ["bin", "bin/ls", "copied"]);
    assert_eq!(
        std::fs::read_dir(&host).unwrap().count(),
        1,
        "the read-only bind mount was not written"
    );
}
