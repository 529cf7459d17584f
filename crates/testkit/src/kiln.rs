//! Running the kiln binary against a store of a test's own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A kiln store in a temporary directory, removed with the value.
pub struct Kiln {
    /// The test's directory: the store is `store` in it, and the test may put anything
    /// else beside it.
    pub dir: tempfile::TempDir,
}

impl Default for Kiln {
    fn default() -> Kiln {
        Kiln::new()
    }
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
    /// A new, empty store.
    pub fn new() -> Kiln {
        Kiln {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// The store's directory (`KILN_ROOT`).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// `kiln args…` on the store, to run as the test likes.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(binary());
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

    /// Runs kiln, whatever its exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run kiln")
    }
}

/// The `kiln` binary cargo built beside the running test: a test binary lives in
/// `target/<profile>/deps`, the package's binaries one directory up.
pub(crate) fn binary() -> PathBuf {
    let test = std::env::current_exe().expect("the test binary's path");
    let path = test
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("kiln"))
        .unwrap_or_default();
    assert!(
        path.is_file(),
        "no kiln binary at {}: run the tests of the kiln package (cargo test or cargo nextest run), which builds it",
        path.display()
    );
    path
}

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
