//! Guards for tests that need root or a peer tool: off CI a missing one skips the test,
//! loudly; on CI (`CI` set, as `.ci/run` sets it) it fails the test, since CI runs as root
//! and `scripts/setup` installs every tool.

use std::process::Command;

/// Whether the test runs as root; off CI it says it skips, on CI it panics.
pub fn root_or_skip() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root and must run every test that needs it"
        );
        eprintln!("skipped: this test needs root");
    }
    root
}

/// Whether a peer tool is installed; off CI it says it skips, on CI it panics.
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is not installed, and CI must run every test (scripts/setup installs it)"
        );
        eprintln!("skipped: {tool} is not installed (scripts/setup installs it)");
    }
    found
}

/// Returns from the test unless it runs as root (see [`root_or_skip`]).
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::root_or_skip() {
            return;
        }
    };
}

/// Returns from the test unless every named tool is installed (see [`have`]).
#[macro_export]
macro_rules! require_tool {
    ($($tool:expr),+ $(,)?) => {
        if !(true $(&& $crate::have($tool))+) {
            return;
        }
    };
}
