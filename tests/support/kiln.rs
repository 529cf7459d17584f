//! Running the kiln binary against a store of a test's own, and making base images.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A kiln store in a temporary directory, removed with the value.
pub struct Kiln {
    pub dir: tempfile::TempDir,
}

/// The store's containers go with it, even when the test failed before removing them:
/// a supervisor (and its network) does not outlive the test that made it.
impl Drop for Kiln {
    fn drop(&mut self) {
        if !self.root().join("containers").is_dir() {
            return;
        }
        let Ok(out) = self.cmd(&["ps", "-aq"]).output() else {
            return;
        };
        let ids = String::from_utf8_lossy(&out.stdout).into_owned();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids);
            let _ = self.cmd(&args).output();
        }
    }
}

impl Kiln {
    pub fn new() -> Kiln {
        Kiln {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.env("KILN_ROOT", self.root()).args(args);
        cmd
    }

    /// Runs kiln; panics with its output when it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().expect("run kiln");
        assert!(
            out.status.success(),
            "kiln {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kiln; panics with its output when it fails; returns standard output and
    /// standard error together (a build's progress goes to standard error, as docker's).
    pub fn log(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().expect("run kiln");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "kiln {args:?} failed:\n{text}");
        text
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run kiln")
    }
}

/// Every test process that runs kiln is in a network namespace of its own, made before
/// `main` (so every thread, server, peer and kiln the test starts is in it too), with
/// `lo` up: kiln's bridges, veths, NAT rules and DNS live and die there, never on the
/// machine's own network. Without root there is none to make: the tests that need root
/// skip then (and fail on CI, which runs as root).
#[used]
#[link_section = ".init_array"]
static PRIVATE_NETWORK: extern "C" fn() = {
    extern "C" fn private_network() {
        use nix::libc;
        // SAFETY: unshare(2), socket(2), ioctl(2) on a zeroed ifreq naming "lo", close(2):
        // before main, one thread, no memory shared.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNET) != 0 {
                return;
            }
            let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return;
            }
            let mut req: libc::ifreq = std::mem::zeroed();
            for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
                *dst = *src as libc::c_char;
            }
            if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) == 0 {
                req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
                libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
            }
            libc::close(fd);
        }
    }
    private_network
};

/// Waits (up to 20 s) until `done` holds; fails naming `what` if it never does.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

impl Kiln {
    /// Kills the supervisor of container `id` with SIGKILL, as a crash would.
    pub fn kill_supervisor(&self, id: &str) {
        let path = self.root().join("containers").join(id).join("state.json");
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(state["supervisor"].as_u64().unwrap() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
}

/// A root filesystem tarball with a static busybox and a few of its links (from Debian's
/// busybox-static), plus `extra_bytes` of incompressible data in `/data` when asked.
pub fn busybox_rootfs(dir: &Path, extra_bytes: usize) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy(busybox(), root.join("bin/busybox")).unwrap();
    for link in ["sh", "ls", "cat", "echo"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(link)).unwrap();
    }
    if extra_bytes > 0 {
        let mut state = 0x9e3779b97f4a7c15u64;
        let data: Vec<u8> = (0..extra_bytes)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(root.join("data"), data).unwrap();
    }
    let tarball = dir.join("rootfs.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["-cf"])
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    tarball
}

pub fn busybox() -> PathBuf {
    let path = PathBuf::from("/bin/busybox");
    assert!(
        path.exists(),
        "/bin/busybox is missing: install busybox-static (scripts/setup does)"
    );
    path
}

/// Whether a peer tool is installed. Off CI a missing tool skips the test, loudly; on CI
/// (`CI` set) it is a failure, since scripts/setup installs every one.
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is not installed, and CI must run every test"
        );
        eprintln!("skipped: {tool} is not installed (scripts/setup installs it)");
    }
    found
}

pub fn run_tool(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every blob in the store hashes to its name: nothing partial is visible.
pub fn assert_blobs_intact(root: &Path) {
    use sha2::Digest;
    for entry in std::fs::read_dir(root.join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let hex = format!("{:x}", sha2::Sha256::digest(&data));
        assert_eq!(
            path.file_name().unwrap().to_string_lossy(),
            hex,
            "blob {} does not match its name",
            path.display()
        );
    }
}

/// Whether the test runs as root, as `kiln build` needs; off CI it skips loudly.
pub fn root_or_skip() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root and must run the tests that build"
        );
        eprintln!("skipped: kiln build needs root");
    }
    root
}

pub fn context(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir.to_path_buf()
}

/// `FROM scratch`, `COPY busybox`, `RUN busybox --install`: the base the other tests use.
pub fn build_busybox(k: &Kiln) {
    let ctx = context(&k.dir.path().join("base"), &[("Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n")]);
    std::fs::copy(busybox(), ctx.join("busybox")).unwrap();
    k.ok(&["build", "-t", "busybox:kiln", ctx.to_str().unwrap()]);
}

/// The image's layers applied in order onto a fresh directory.
pub fn flatten(k: &Kiln, image: &str) -> PathBuf {
    let store = kiln_image::store::Store::open(k.root()).unwrap();
    let resolved = store.resolve(image).unwrap();
    let out = k
        .dir
        .path()
        .join(format!("flat-{}", image.replace([':', '/'], "-")));
    std::fs::create_dir_all(&out).unwrap();
    for layer in resolved.manifest.layers() {
        kiln_image::layer::apply(store.open_blob(layer.digest()).unwrap(), &out).unwrap();
    }
    out
}

/// Runs `git` in `dir` as a fixed committer; its standard output, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=kiln", "-c", "user.email=kiln@example.com"])
        .args(args)
        .output()
        .expect("git (scripts/setup installs it)");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
