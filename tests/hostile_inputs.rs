//! Inputs made to exhaust the machine — a Dockerfile whose variables double, a registry
//! that answers with a gigabyte — end in a clear error with bounded memory.

#[path = "support/kiln.rs"]
mod support;

use std::process::{Child, Output};
use std::time::{Duration, Instant};

use support::Kiln;

/// Waits for `child`, killing it after `limit`: an input that used to run the machine out
/// of memory must not hang the test run.
fn finish_within(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("still running after {limit:?}: the input was not bounded");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn variables_that_double_at_each_line_fail_on_the_line_that_grows_too_long() {
    let k = Kiln::new();
    let dir = k.dir.path().join("ctx");
    std::fs::create_dir_all(&dir).unwrap();
    let mut text = String::from("FROM scratch\nENV A0=0123456789abcdef\n");
    for i in 1..=40 {
        text.push_str(&format!("ENV A{i}=$A{}$A{}\n", i - 1, i - 1));
    }
    std::fs::write(dir.join("Dockerfile"), &text).unwrap();
    let dockerfile = dir.join("Dockerfile");
    let file = dockerfile.to_str().unwrap();
    // 16 bytes doubled 17 times is 2 MiB: line 2 + 17 is the first past the 1 MiB bound.
    let run = |args: &[&str]| {
        let child = k
            .cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = finish_within(child, Duration::from_secs(60));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), all)
    };
    // lint reads what it can of expansions and reports findings: it must just finish.
    run(&["lint", file]);
    let mut commands = vec![vec!["parse", "--expand", "-f", file]];
    if support::root_or_skip() {
        commands.push(vec!["build", "--progress", "plain", dir.to_str().unwrap()]);
    }
    for args in commands {
        let (ok, all) = run(&args);
        assert!(!ok, "{args:?}: {all}");
        assert!(
            all.contains("Dockerfile:19:"),
            "{args:?} names the line: {all}"
        );
        assert!(
            all.contains("expands to more than 1048576 bytes"),
            "{args:?}: {all}"
        );
    }
}
