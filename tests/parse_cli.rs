//! `kiln parse` as a command: where it reads from, how it names what it read, exit codes.

use std::io::Write;
use std::process::{Command, Stdio};

fn kiln() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
}

/// Runs `kiln parse ARGS` in a fresh directory holding `Dockerfile` with `text`.
fn parse_in_dir(name: &str, text: &str, args: &[&str]) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!("kiln-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), text).unwrap();
    let out = kiln()
        .arg("parse")
        .args(args)
        .current_dir(&dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    out
}

#[test]
fn reads_standard_input_and_names_it_in_errors() {
    let run = |text: &str| {
        let mut child = kiln()
            .args(["parse", "--json", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let ok = run("FROM alpine\nRUN true\n");
    assert!(ok.status.success());
    let tree: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(tree["instructions"][1]["cmd"], "run");
    let bad = run("FROM alpine\nRUM true\n");
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr)
        .starts_with("<stdin>:2:1: unknown instruction: RUM (did you mean RUN?)"));
}

#[test]
fn reads_dockerfile_in_the_current_directory_by_default() {
    let out = parse_in_dir("default", "FROM scratch\n", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "      1  FROM [\"scratch\"]\n"
    );
}

#[test]
fn a_missing_file_is_named() {
    let out = kiln()
        .args(["parse", "-f", "/nonexistent/Dockerfile"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("reading /nonexistent/Dockerfile") && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn warnings_go_to_standard_error_and_do_not_fail() {
    let out = parse_in_dir("warn", "FROM a\nRUN a \\\n\n  b\n", &["--json"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("Dockerfile:2:1: warning: empty continuation line"),
        "{err}"
    );
}

#[test]
fn build_args_need_expand() {
    let out = kiln()
        .args(["parse", "--build-arg", "A=1"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap refuses --build-arg without --expand"
    );
}
