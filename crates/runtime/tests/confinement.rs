//! The sandbox confines as Docker confines a container: each test is an attack that
//! worked before the confinement (a RUN step had every capability, no seccomp filter, a
//! writable `/proc/sys`, device nodes it could open, the caller's descriptors).
//! Needs root (CI runs as root) and Debian's busybox-static.

mod support;

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Stdio;

use kiln_runtime::bind_mount;
use kiln_testkit::{require_root, wait_for};
use support::{config, run, start};

/// `major:minor` of the block device holding the host's `/`, as mknod wants them.
fn host_disk() -> (u64, u64) {
    let dev = std::fs::metadata("/").unwrap().dev();
    (nix::sys::stat::major(dev), nix::sys::stat::minor(dev))
}

fn status_line(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("{key} in {status}"))
        .trim()
        .to_string()
}

#[test]
fn root_gets_dockers_default_capabilities_and_the_seccomp_filter() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = run(&config(tmp.path(), &["cat", "/proc/self/status"]));
    assert_eq!(code, 0, "{err}");
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE
    // NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP: Docker's and BuildKit's mask.
    for key in ["CapEff:", "CapPrm:", "CapBnd:", "CapInh:"] {
        assert_eq!(status_line(&out, key), "00000000a80425fb", "{key}");
    }
    assert_eq!(status_line(&out, "CapAmb:"), "0000000000000000");
    assert_eq!(status_line(&out, "Seccomp:"), "2", "filter mode");
}

#[test]
fn another_user_holds_no_capability() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path(), &["cat", "/proc/self/status"]);
    cfg.process.uid = 1000;
    cfg.process.gid = 1000;
    let (code, out, err) = run(&cfg);
    assert_eq!(code, 0, "{err}");
    assert_eq!(status_line(&out, "CapEff:"), "0000000000000000");
    assert_eq!(status_line(&out, "CapPrm:"), "0000000000000000");
    assert_eq!(status_line(&out, "CapBnd:"), "00000000a80425fb");
}

#[test]
fn the_hosts_disk_cannot_be_mounted_or_read_through_a_device_node() {
    require_root!();
    let (major, minor) = host_disk();
    let tmp = tempfile::tempdir().unwrap();
    let script = format!(
        "mknod /disk b {major} {minor} || exit 10
         mkdir -p /mnt
         mount /disk /mnt 2>/dev/null && exit 11
         head -c 512 /disk >/dev/null 2>&1 && exit 12
         mknod /dev/disk b {major} {minor} && head -c 512 /dev/disk >/dev/null 2>&1 && exit 13
         mknod /tmp/disk b {major} {minor} && head -c 512 /tmp/disk >/dev/null 2>&1 && exit 14
         exit 0"
    );
    let (code, _, err) = run(&config(tmp.path(), &["sh", "-c", &script]));
    assert_eq!(code, 0, "a host disk was reached (exit code {code}): {err}");
}

#[test]
fn a_device_node_shipped_in_a_layer_cannot_be_opened() {
    require_root!();
    let (major, minor) = host_disk();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &["sh", "-c", "head -c 512 /disk > /dev/null"]);
    nix::sys::stat::mknod(
        &cfg.root.lower[0].join("disk"),
        nix::sys::stat::SFlag::S_IFBLK,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(major, minor),
    )
    .unwrap();
    let (code, _, err) = run(&cfg);
    assert_ne!(code, 0, "the layer's device node was read");
    assert!(err.contains("denied"), "{err}");
}

#[test]
fn proc_and_sys_are_masked_and_read_only() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let script = "
        echo kiln > /proc/sys/kernel/domainname 2>/dev/null && exit 10
        echo h > /proc/sysrq-trigger 2>/dev/null && exit 11
        test -s /proc/kcore && exit 12
        test -n \"$(ls /proc/acpi 2>/dev/null)\" && exit 13
        mkdir /sys/kiln 2>/dev/null && exit 14
        mount -o remount,rw /sys 2>/dev/null && exit 15
        mount -t tmpfs none /mnt 2>/dev/null && exit 16
        cat /proc/sys/kernel/ostype >/dev/null || exit 17
        exit 0";
    let (code, _, err) = run(&config(tmp.path(), &["sh", "-c", script]));
    assert_eq!(code, 0, "a confinement failed (exit code {code}): {err}");
}

#[test]
fn descriptors_the_caller_left_open_do_not_reach_the_program() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    // A directory of the host, open without close-on-exec: a way out of the root.
    let leaked = nix::fcntl::open(
        tmp.path(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let fd = leaked.as_raw_fd();
    let script = format!("ls /proc/self/fd/{fd}/ 2>/dev/null && exit 10; ls /proc/self/fd");
    let (code, out, err) = run(&config(tmp.path(), &["sh", "-c", &script]));
    assert_eq!(code, 0, "descriptor {fd} reached the program: {out}{err}");
    // ls's own descriptor for the listing aside, only the standard streams.
    let fds: Vec<&str> = out.split_whitespace().collect();
    assert!(fds.len() <= 4 && fds[..3] == ["0", "1", "2"], "{out}");
}

#[test]
fn a_mount_through_a_symlink_of_the_image_stays_in_the_root() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let host = tmp.path().join("host-etc");
    std::fs::create_dir(&host).unwrap();
    let source = tmp.path().join("hosts");
    std::fs::write(&source, "127.0.0.1 localhost\n").unwrap();
    let mut cfg = config(tmp.path(), &["cat", "/etc/hosts"]);
    // The image's /etc is an absolute link to a directory of the host.
    std::os::unix::fs::symlink(&host, cfg.root.lower[0].join("etc")).unwrap();
    let inside = cfg.root.lower[0].join(host.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&inside).unwrap();
    cfg.process
        .mounts
        .push(bind_mount(Path::new("/etc/hosts"), &source, true));
    let (code, out, err) = run(&cfg);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "127.0.0.1 localhost\n");
    assert!(
        std::fs::read_dir(&host).unwrap().next().is_none(),
        "a mount point was made in the host's directory"
    );
}

/// The PIDs of the processes whose parent is `pid`.
fn children(pid: u32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn alive(pid: i32) -> bool {
    // A zombie is dead: only its exit status is left.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

#[test]
fn stopping_the_sandboxes_kills_every_process_in_them() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    // PID 1 starts a second process in the background and waits.
    let cfg = config(tmp.path(), &["sh", "-c", "sleep 60 & sleep 61 & wait"]);
    let sandboxed = start(&cfg, Stdio::null(), Stdio::null()).unwrap();
    let supervisor = sandboxed.child.id();
    let mut init = None;
    wait_for("the sandbox's PID 1 and its two sleeps", || {
        init = children(supervisor).first().copied();
        init.is_some_and(|pid| children(pid as u32).len() == 2)
    });
    let init = init.expect("found");
    let inner = children(init as u32);
    kiln_runtime::stop_all();
    let status = sandboxed.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 9));
    for pid in std::iter::once(init).chain(inner) {
        wait_for(&format!("process {pid} of the sandbox to be gone"), || {
            !alive(pid)
        });
    }
}
