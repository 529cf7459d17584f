//! `kiln runtime`, kiln's sandbox on runc's command line: driven by podman (through
//! conmon) as its `--runtime`, and directly on a bundle whose `config.json` is runc's own
//! default spec (`runc spec`). Needs root, podman and runc.

kiln_testkit::private_network!();

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kiln_testkit::{build_busybox, have, root_or_skip, run_tool, wait_for, Kiln};

/// A store with busybox:kiln, a state root for the runtime and a wrapper that podman
/// can call as its runtime; None when not root or a peer is missing (outside CI).
struct Setup {
    k: Kiln,
    state: PathBuf,
    wrapper: PathBuf,
}

fn setup(tools: &[&str]) -> Option<Setup> {
    if !root_or_skip() || !tools.iter().all(|t| have(t)) {
        return None;
    }
    let k = Kiln::new();
    build_busybox(&k);
    let state = k.dir.path().join("runtime-state");
    let wrapper = k.dir.path().join("kiln-runtime");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {} runtime --root {} \"$@\"\n",
            env!("CARGO_BIN_EXE_kiln"),
            state.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    Some(Setup { k, state, wrapper })
}

/// podman's overlay driver bind-mounts its store on itself and leaves the mount when the
/// test ends: detached here, so no mount outlives the test's directory. conmon runs
/// `podman container cleanup` once a container exits, after the podman that started it
/// has returned, and that mounts the store again: so first wait (up to 10 s) for every
/// process naming the store to be gone.
impl Drop for Setup {
    fn drop(&mut self) {
        let store = self.k.dir.path().join("podman");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while processes_naming(&store) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut under: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| std::path::Path::new(m).starts_with(&store))
            .collect();
        // The deepest first.
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in under {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Whether a process other than this one has `path` in its command line.
fn processes_naming(path: &Path) -> bool {
    let needle = path.as_os_str().as_encoded_bytes();
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name() != me.as_str())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .any(|cmdline| cmdline.windows(needle.len()).any(|w| w == needle))
}

impl Setup {
    /// podman on a private store, with kiln as its runtime and the image loaded.
    fn podman(&self) -> impl Fn(&[&str]) -> Output + '_ {
        let dir = self.k.dir.path().join("podman");
        move |args: &[&str]| {
            Command::new("podman")
                .arg("--root")
                .arg(dir.join("root"))
                .arg("--runroot")
                .arg(dir.join("run"))
                .args(["--cgroup-manager", "cgroupfs", "--events-backend", "none"])
                .arg("--runtime")
                .arg(&self.wrapper)
                .args(args)
                .output()
                .expect("run podman")
        }
    }

    fn load_into_podman(&self) {
        let archive = self.k.dir.path().join("busybox.tar");
        self.k
            .ok(&["save", "-o", archive.to_str().unwrap(), "busybox:kiln"]);
        let out = (self.podman())(&["load", "-q", "-i", archive.to_str().unwrap()]);
        assert!(out.status.success(), "{out:?}");
    }

    /// podman as [`Setup::podman`] runs it, under a pseudo-terminal of script(1).
    fn podman_at_terminal(&self, args: &[&str]) -> Output {
        let line = format!(
            "podman --root {0}/root --runroot {0}/run --cgroup-manager cgroupfs --events-backend none --runtime {1} {2}",
            self.k.dir.path().join("podman").display(),
            self.wrapper.display(),
            args.join(" ")
        );
        Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .output()
            .expect("script (util-linux)")
    }

    fn left_in_state_root(&self) -> Vec<String> {
        std::fs::read_dir(&self.state)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Root lacks CAP_SYS_RESOURCE on these machines: podman's default rlimits (above the
/// caller's) cannot be set by any runtime here.
const RUN: [&str; 8] = [
    "run",
    "--rm",
    "--network",
    "none",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=4096:4096",
];
const IMAGE: &str = "docker.io/library/busybox:kiln";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn podman_runs_containers_on_kiln_runtime_confined_as_with_runc() {
    let Some(s) = setup(&["podman"]) else { return };
    s.load_into_podman();
    let podman = s.podman();
    let script =
        "echo out; echo err >&2; grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; \
                  cat /proc/sys/net/ipv4/ping_group_range; exit 3";
    let out = podman(&[&RUN[..], &[IMAGE, "sh", "-c", script]].concat());
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("out\n"),
        "{all}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("err"),
        "{all}"
    );
    // podman's default capabilities (11 of them: 0x800405fb) and its seccomp filter,
    // and the sysctl its spec asks for — applied by kiln's runtime, not dropped.
    assert!(all.contains("CapEff:\t00000000800405fb"), "{all}");
    assert!(all.contains("Seccomp:\t2"), "{all}");
    assert!(all.contains("0\t0"), "{all}");
    // A program that is not there: create fails, podman says 127, nothing stays.
    let out = podman(&[&RUN[..], &[IMAGE, "no-such-program"]].concat());
    assert_eq!(out.status.code(), Some(127), "{}", text(&out));
    assert_eq!(s.left_in_state_root(), Vec::<String>::new());
}

#[test]
fn podman_exec_stop_and_a_terminal_work_on_kiln_runtime() {
    let Some(s) = setup(&["podman", "script"]) else {
        return;
    };
    s.load_into_podman();
    let podman = s.podman();
    let trap = "trap 'exit 7' TERM; while true; do sleep 0.1; done";
    let run_d = [
        &["run", "-d", "--name", "svc"],
        &RUN[2..],
        &[IMAGE, "sh", "-c", trap],
    ];
    let out = podman(&run_d.concat());
    assert!(out.status.success(), "{}", text(&out));
    let out = podman(&["exec", "svc", "sh", "-c", "echo in-$(hostname); exit 5"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("in-"));
    // The runtime's own view while it runs.
    let id = String::from_utf8_lossy(&podman(&["inspect", "--format", "{{.Id}}", "svc"]).stdout)
        .trim()
        .to_string();
    let state = Command::new(&s.wrapper)
        .args(["state", &id])
        .output()
        .unwrap();
    let state: serde_json::Value = serde_json::from_slice(&state.stdout).unwrap();
    assert_eq!(state["status"], "running", "{state}");
    // stop: SIGTERM through `kiln runtime kill`; the trap's code comes back.
    let out = podman(&["stop", "-t", "10", "svc"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = podman(&["inspect", "--format", "{{.State.ExitCode}}", "svc"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "7");
    assert!(podman(&["rm", "svc"]).status.success());
    assert_eq!(s.left_in_state_root(), Vec::<String>::new());

    // -t: the terminal is the container's own (/dev/pts/0 of its devpts), as with runc;
    // exec -t too (through --console-socket), its code passed through.
    let out = s.podman_at_terminal(&[&RUN[..], &["-t", IMAGE, "tty"]].concat());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/dev/pts/0"),
        "{}",
        text(&out)
    );
    let run_d = [
        &["run", "-d", "--name", "shell"],
        &RUN[2..],
        &[IMAGE, "sleep", "60"],
    ];
    assert!(podman(&run_d.concat()).status.success());
    let out = s.podman_at_terminal(&["exec", "-t", "shell", "sh", "-c", "'tty; exit 6'"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/dev/pts/0"),
        "{}",
        text(&out)
    );
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(podman(&["rm", "-f", "-t", "0", "shell"]).status.success());
    assert_eq!(s.left_in_state_root(), Vec::<String>::new());
}

/// `runc spec`'s default config.json, run by kiln's runtime on a busybox root: the
/// lifecycle and states of the runtime spec.
#[test]
fn runc_default_spec_goes_through_the_runtime_spec_lifecycle() {
    let Some(s) = setup(&["runc"]) else { return };
    let bundle = s.k.dir.path().join("bundle");
    let rootfs = kiln_testkit::flatten(&s.k, "busybox:kiln");
    std::fs::create_dir_all(&bundle).unwrap();
    std::os::unix::fs::symlink(&rootfs, bundle.join("rootfs")).unwrap();
    run_tool("runc", &["spec", "--bundle", bundle.to_str().unwrap()]);
    let config = bundle.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["sh", "-c", "echo started > /mark; sleep 30"]);
    spec["root"]["readonly"] = false.into();
    std::fs::write(&config, spec.to_string()).unwrap();

    // The container's standard streams are the creating process's (runc's pass-through
    // mode): files, since a pipe would stay open as long as the container runs.
    let log = s.k.dir.path().join("runtime.log");
    let rt = |args: &[&str]| {
        let file = || std::fs::File::create(&log).unwrap();
        let status = Command::new(&s.wrapper)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(file())
            .stderr(file())
            .status()
            .unwrap();
        let output = std::fs::read(&log).unwrap();
        Output {
            status,
            stdout: output.clone(),
            stderr: output,
        }
    };
    let status = |id: &str| -> String {
        let out = rt(&["state", id]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["status"].as_str().unwrap_or("").to_string()
    };
    let pid_file = s.k.dir.path().join("pid");
    let b = bundle.to_str().unwrap();
    let out = rt(&[
        "create",
        "--bundle",
        b,
        "--pid-file",
        pid_file.to_str().unwrap(),
        "c1",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(status("c1"), "created");
    // Created: PID 1 waits; the program has not run.
    assert!(!rootfs.join("mark").exists());
    let pid: u32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    // The same ID twice is refused.
    let out = rt(&["create", "--bundle", b, "c1"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("exists already"), "{}", text(&out));

    assert!(rt(&["start", "c1"]).status.success());
    assert_eq!(status("c1"), "running");
    wait_for("the container's mark", || rootfs.join("mark").exists());
    // Running: delete refused without --force; start again refused.
    assert!(!rt(&["delete", "c1"]).status.success());
    assert!(!rt(&["start", "c1"]).status.success());
    let out = rt(&["exec", "c1", "cat", "/mark"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "started\n",
        "{}",
        text(&out)
    );

    assert!(rt(&["kill", "c1", "KILL"]).status.success());
    wait_for("c1 to stop", || status("c1") == "stopped");
    let list = String::from_utf8_lossy(&rt(&["list", "-q"]).stdout).into_owned();
    assert_eq!(list, "c1\n");
    assert!(rt(&["delete", "c1"]).status.success());
    assert_eq!(s.left_in_state_root(), Vec::<String>::new());
    let out = rt(&["state", "c1"]);
    assert!(text(&out).contains("does not exist"), "{}", text(&out));

    // `run`: create, start, wait, delete; the program's code.
    spec["process"]["args"] = serde_json::json!(["sh", "-c", "exit 9"]);
    std::fs::write(&config, spec.to_string()).unwrap();
    assert_eq!(rt(&["run", "--bundle", b, "c2"]).status.code(), Some(9));
    assert_eq!(s.left_in_state_root(), Vec::<String>::new());
}
