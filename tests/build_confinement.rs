//! A RUN step cannot reach the build machine: each test is an attack an untrusted
//! Dockerfile or base image made before RUN was confined (see the README's "Security
//! model"), through `kiln build` as CI runs it. Needs root, as `kiln build` does.

kiln_testkit::private_network!();

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use kiln_testkit::{build_busybox, busybox, context, require_root, wait_for, Kiln};

/// `major minor` of the block device holding the host's `/`.
fn host_disk() -> (u64, u64) {
    let dev = std::fs::metadata("/").unwrap().dev();
    (nix::sys::stat::major(dev), nix::sys::stat::minor(dev))
}

fn build(k: &Kiln, dockerfile: &str, extra: &[&str]) -> std::process::Output {
    let ctx = context(
        &k.dir.path().join(format!("ctx-{}", rand_id())),
        &[("Dockerfile", dockerfile)],
    );
    let mut args = vec!["build", "--progress", "plain"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    k.run(&args)
}

fn rand_id() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_run_step_has_dockers_capabilities_and_seccomp_and_cannot_reach_the_hosts_disk() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let (major, minor) = host_disk();
    let dockerfile = format!(
        "FROM busybox:kiln
RUN grep -E '^(CapEff|CapBnd|Seccomp):' /proc/self/status
RUN mknod /disk b {major} {minor} && mkdir -p /mnt && if mount /disk /mnt; then echo MOUNTED; exit 1; fi
RUN if head -c 512 /disk >/dev/null 2>&1; then echo READ; exit 1; fi
RUN if echo kiln > /proc/sys/kernel/domainname; then exit 1; fi
RUN if mount -o remount,rw /sys; then exit 1; fi
"
    );
    let out = build(&k, &dockerfile, &[]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("CapEff:\t00000000a80425fb"), "{log}");
    assert!(log.contains("CapBnd:\t00000000a80425fb"), "{log}");
    assert!(log.contains("Seccomp:\t2"), "{log}");
}

#[test]
fn run_security_insecure_needs_the_entitlement() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let dockerfile =
        "FROM busybox:kiln\nRUN echo ran > /ran\nRUN --security=insecure grep -E '^(CapEff|Seccomp):' /proc/self/status\n";
    let out = build(&k, dockerfile, &[]);
    let log = text(&out);
    assert!(!out.status.success());
    assert!(
        log.contains("line 3: RUN --security=insecure needs the security.insecure entitlement: build with --allow security.insecure"),
        "{log}"
    );
    assert!(
        !log.contains("echo ran"),
        "refused before any step ran: {log}"
    );

    let out = build(&k, dockerfile, &["--allow", "security.insecure"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("Seccomp:\t0"), "{log}");
    // Every capability kiln itself may hold.
    let bounding = caps::read(None, caps::CapSet::Bounding).unwrap();
    let full = format!(
        "{:016x}",
        bounding.iter().fold(0u64, |m, c| m | c.bitmask())
    );
    assert!(log.contains(&format!("CapEff:\t{full}")), "{log}");
}

#[test]
fn a_device_node_in_a_base_image_cannot_be_opened() {
    require_root!();
    let k = Kiln::new();
    let (major, minor) = host_disk();
    let rootfs = k.dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy(busybox(), rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    nix::sys::stat::mknod(
        &rootfs.join("disk"),
        nix::sys::stat::SFlag::S_IFBLK,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(major, minor),
    )
    .unwrap();
    let tar = k.dir.path().join("rootfs.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    k.ok(&["import", tar.to_str().unwrap(), "evil:1"]);
    let out = build(
        &k,
        "FROM evil:1\nRUN [\"/bin/busybox\", \"head\", \"-c\", \"512\", \"/disk\"]\n",
        &[],
    );
    let log = text(&out);
    assert!(
        !out.status.success(),
        "the base image's device node was read: {log}"
    );
    assert!(log.contains("Permission denied"), "{log}");
}

#[test]
fn a_descriptor_left_open_by_the_caller_does_not_reach_run() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(
        &k.dir.path().join("fd"),
        &[(
            "Dockerfile",
            "FROM busybox:kiln\nRUN if ls /proc/self/fd/7/; then exit 1; fi\n",
        )],
    );
    // The caller's shell leaves its / open on descriptor 7.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec 7</ && exec {} build --progress plain {}",
            env!("CARGO_BIN_EXE_kiln"),
            ctx.display()
        ))
        .env("KILN_ROOT", k.root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// The PIDs of processes whose command line is exactly `argv`.
fn processes(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .filter(|pid| {
            // Zombies are dead.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
        })
        .collect()
}

/// Starts a build whose RUN step sleeps with a distinctive argument, and waits until the
/// step runs.
fn build_that_sleeps(k: &Kiln, seconds: &str) -> std::process::Child {
    let ctx = context(
        &k.dir.path().join(format!("sleep-{seconds}")),
        &[(
            "Dockerfile",
            &format!("FROM busybox:kiln\nRUN sleep {seconds} & sleep {seconds}; echo done\n"),
        )],
    );
    let child = k
        .cmd(&[
            "build",
            "--progress",
            "plain",
            "-t",
            "slept:1",
            ctx.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the step's sleeps", || {
        processes(&["sleep", seconds]).len() == 2
    });
    child
}

fn scratch_entries(k: &Kiln) -> Vec<String> {
    std::fs::read_dir(k.root().join("tmp"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("build-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn kill_9_of_kiln_build_kills_its_run_step_and_the_next_build_removes_its_scratch() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let mut child = build_that_sleeps(&k, "6101");
    child.kill().unwrap();
    child.wait().unwrap();
    wait_for("every process of the step to die", || {
        processes(&["sleep", "6101"]).is_empty()
    });
    assert!(
        !scratch_entries(&k).is_empty(),
        "a killed build leaves its scratch directory"
    );
    let out = build(&k, "FROM busybox:kiln\nRUN true\n", &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        scratch_entries(&k),
        Vec::<String>::new(),
        "the dead build's scratch is gone"
    );
}

#[test]
fn sigterm_and_sigint_stop_the_build_cleanly() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    for (signal, seconds) in [
        (nix::sys::signal::Signal::SIGTERM, "6102"),
        (nix::sys::signal::Signal::SIGINT, "6103"),
    ] {
        let child = build_that_sleeps(&k, seconds);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let out = child.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(128 + signal as i32), "{log}");
        assert!(log.contains("interrupted"), "{log}");
        assert!(
            processes(&["sleep", seconds]).is_empty(),
            "the step was killed"
        );
        assert_eq!(scratch_entries(&k), Vec::<String>::new(), "scratch removed");
        let images = k.ok(&["images"]);
        assert!(!images.contains("slept"), "no tag: {images}");
    }
}

#[test]
fn a_context_tar_whose_whiteout_names_the_parent_is_refused_and_removes_nothing() {
    require_root!();
    let k = Kiln::new();
    let tmpdir = k.dir.path().join("tmp");
    std::fs::create_dir(&tmpdir).unwrap();
    std::fs::write(tmpdir.join("canary"), "alive").unwrap();
    std::fs::write(k.dir.path().join("canary"), "alive").unwrap();
    let ctx = context(
        &k.dir.path().join("evil"),
        &[("Dockerfile", "FROM scratch\n"), (".wh...", "")],
    );
    let tar = k.dir.path().join("evil.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&ctx)
        .arg("-cf")
        .arg(&tar)
        .args(["Dockerfile", ".wh..."])
        .status()
        .unwrap();
    assert!(status.success());
    let out = k
        .cmd(&["build", "-"])
        .env("TMPDIR", &tmpdir)
        .stdin(std::fs::File::open(&tar).unwrap())
        .output()
        .unwrap();
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains(".wh...") && log.contains("names no file"),
        "{log}"
    );
    assert_eq!(
        std::fs::read_to_string(tmpdir.join("canary")).unwrap(),
        "alive"
    );
    assert_eq!(
        std::fs::read_to_string(k.dir.path().join("canary")).unwrap(),
        "alive"
    );
}

/// A directory of the host that a context's symlink points at; must stay empty.
fn host_dir(k: &Kiln) -> std::path::PathBuf {
    let dir = k.dir.path().join("host");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn assert_empty(dir: &std::path::Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "written on the host: {left:?}");
}

#[test]
fn copy_never_writes_through_a_symlink_of_the_context() {
    require_root!();
    let k = Kiln::new();
    let host = host_dir(&k);
    // Two sources whose directories merge: a's x is a link to the host, b's x a directory.
    let ctx = context(
        &k.dir.path().join("merge"),
        &[
            ("Dockerfile", "FROM scratch\nCOPY a b /dst/\n"),
            ("b/x/pwned", "pwned"),
        ],
    );
    std::fs::create_dir_all(ctx.join("a")).unwrap();
    std::os::unix::fs::symlink(&host, ctx.join("a/x")).unwrap();
    k.log(&["build", "-t", "merged:1", ctx.to_str().unwrap()]);
    assert_empty(&host);
    let flat = kiln_testkit::flatten(&k, "merged:1");
    assert_eq!(
        std::fs::read_to_string(flat.join("dst/x/pwned")).unwrap(),
        "pwned"
    );

    // An incremental COPY after a symlink of the context became a directory.
    let ctx = context(
        &k.dir.path().join("incremental"),
        &[
            ("Dockerfile", "FROM scratch\nCOPY src /dst\n"),
            ("src/keep", "k"),
        ],
    );
    std::os::unix::fs::symlink(&host, ctx.join("src/x")).unwrap();
    k.log(&["build", "-t", "inc:1", ctx.to_str().unwrap()]);
    std::fs::remove_file(ctx.join("src/x")).unwrap();
    std::fs::create_dir(ctx.join("src/x")).unwrap();
    std::fs::write(ctx.join("src/x/pwned"), "pwned").unwrap();
    k.log(&["build", "-t", "inc:2", ctx.to_str().unwrap()]);
    assert_empty(&host);
    let flat = kiln_testkit::flatten(&k, "inc:2");
    assert_eq!(
        std::fs::read_to_string(flat.join("dst/x/pwned")).unwrap(),
        "pwned"
    );
}

#[test]
fn user_lookups_read_the_images_passwd_never_the_hosts() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    // A file of the host's, named by an absolute link in the image.
    let host_passwd = k.dir.path().join("host-passwd");
    std::fs::write(&host_passwd, "hostonly:x:4242:4242::/:/bin/sh\n").unwrap();
    let out = build(
        &k,
        &format!(
            "FROM busybox:kiln\nRUN mkdir -p /etc && ln -sf {} /etc/passwd\nUSER hostonly\nRUN id -u\n",
            host_passwd.display()
        ),
        &[],
    );
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("unable to find user hostonly"), "{log}");
    // A link to /dev/zero reads nothing (it was read until memory ran out).
    let out = build(
        &k,
        "FROM busybox:kiln\nRUN mkdir -p /etc && ln -sf /dev/zero /etc/passwd\nUSER nobody\nRUN id -u\n",
        &[],
    );
    let log = text(&out);
    assert!(log.contains("unable to find user nobody"), "{log}");
    // A link inside the image is followed as the container follows it.
    let out = build(
        &k,
        "FROM busybox:kiln\nRUN mkdir -p /etc /usr/share && echo 'app:x:1234:1234::/:/bin/sh' > /usr/share/passwd && ln -sf ../usr/share/passwd /etc/passwd\nUSER app\nRUN test \"$(id -u)\" = 1234\n",
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
}
