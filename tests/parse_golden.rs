//! Golden tests for `kiln parse`, run through the real binary.
//!
//! Each folder under `testdata/dockerfiles/` holds a `Dockerfile`, optionally `args`
//! (extra flags, e.g. `--expand --build-arg V=1`), and the expected outputs:
//! `expected.json` (`kiln parse --json`) and `expected.txt` (the readable dump). Folders
//! under `invalid/` hold `expected.err`: what `kiln parse` prints on standard error when
//! it refuses the file with exit code 1. Adding a case is adding a folder.
//! `KILN_BLESS=1 cargo test --test parse_golden` rewrites the expectations; read the diff.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("Dockerfile").is_file())
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no cases under {}", dir.display());
    found
}

fn kiln_parse(case: &Path, extra: &[&str]) -> Output {
    let args = std::fs::read_to_string(case.join("args")).unwrap_or_default();
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .current_dir(case)
        .args(["parse", "-f", "Dockerfile"])
        .args(extra)
        .args(args.split_whitespace())
        .output()
        .expect("run kiln")
}

/// Compares `actual` with the file, or writes it when blessing; returns a failure line.
fn check(case: &Path, file: &str, actual: &str) -> Option<String> {
    let path = case.join(file);
    if std::env::var_os("KILN_BLESS").is_some() {
        std::fs::write(&path, actual).expect("bless");
        return None;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    (expected != actual).then(|| {
        format!(
            "{}:\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        )
    })
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/dockerfiles")
}

#[test]
fn valid_dockerfiles_parse_to_the_expected_tree() {
    let mut failures = Vec::new();
    for case in cases(&root()) {
        let json = kiln_parse(&case, &["--json"]);
        let text = kiln_parse(&case, &[]);
        for out in [&json, &text] {
            if !out.status.success() {
                failures.push(format!(
                    "{}: exit {}: {}",
                    case.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        failures.extend(check(
            &case,
            "expected.json",
            &String::from_utf8_lossy(&json.stdout),
        ));
        failures.extend(check(
            &case,
            "expected.txt",
            &String::from_utf8_lossy(&text.stdout),
        ));
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn invalid_dockerfiles_are_refused_with_location() {
    let mut failures = Vec::new();
    for case in cases(&root().join("invalid")) {
        let out = kiln_parse(&case, &["--json"]);
        if out.status.code() != Some(1) {
            failures.push(format!(
                "{}: expected exit code 1, got {}",
                case.display(),
                out.status
            ));
        }
        if !out.stdout.is_empty() {
            failures.push(format!(
                "{}: printed a tree for a refused file",
                case.display()
            ));
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if !err.starts_with("Dockerfile:") {
            failures.push(format!(
                "{}: error does not start with PATH:LINE:COL: {err}",
                case.display()
            ));
        }
        failures.extend(check(&case, "expected.err", &err));
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
