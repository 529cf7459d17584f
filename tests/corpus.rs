//! Every Dockerfile in the shared corpus of real Dockerfiles (`../shared/corpus/dockerfiles`,
//! or `KILN_CORPUS`) parses with `kiln parse --json`, and the output is the same on two runs.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn every_corpus_dockerfile_parses_the_same_twice() {
    let files = kiln_testkit::corpus_files();
    let parse = |file: &PathBuf| {
        Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(["parse", "--json", "-f"])
            .arg(file)
            .output()
            .expect("run kiln")
    };
    let mut failures = Vec::new();
    for file in &files {
        let (first, second) = (parse(file), parse(file));
        if !first.status.success() {
            failures.push(format!("{}", String::from_utf8_lossy(&first.stderr)));
        } else if first.stdout != second.stdout {
            failures.push(format!(
                "{}: two runs printed different trees",
                file.display()
            ));
        } else {
            let tree: serde_json::Value =
                serde_json::from_slice(&first.stdout).expect("valid JSON");
            if tree["instructions"].as_array().is_none_or(|i| i.is_empty()) {
                failures.push(format!("{}: no instructions in the tree", file.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
