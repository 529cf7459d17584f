//! `kiln compose config` against a table of Compose files (`testdata/compose/<case>/`:
//! the files, optional `args`, and `expected.yaml`, written by hand from Docker Compose's
//! documented behaviour — merge, interpolation, profiles, extends, include, long
//! syntax), compared as YAML values; and bad files (`testdata/compose/errors/<case>/`)
//! refused with the file, the path in it and what was expected (`expected.err`, a part
//! of the message). No root needed.

use std::path::Path;
use std::process::Command;

fn kiln(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .current_dir(dir)
        // The cases' variables come from their .env files alone.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(args)
        .output()
        .expect("run kiln")
}

fn cases(dir: &str) -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("compose.yaml").exists())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {}", root.display());
    cases
}

#[test]
fn config_prints_what_docker_compose_prints_for_each_case() {
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/compose");
    for case in cases("testdata/compose") {
        let extra = std::fs::read_to_string(case.join("args")).unwrap_or_default();
        let mut args: Vec<&str> = vec!["compose"];
        args.extend(extra.split_whitespace());
        args.push("config");
        let out = kiln(&case, &args);
        assert!(
            out.status.success(),
            "{}: {}",
            case.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let got: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&out.stdout).unwrap();
        let expected = std::fs::read_to_string(case.join("expected.yaml"))
            .unwrap()
            .replace("TESTDIR", &testdata.display().to_string());
        let expected: serde_yaml_ng::Value = serde_yaml_ng::from_str(&expected).unwrap();
        assert_eq!(
            got,
            expected,
            "{}: kiln printed\n{}",
            case.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn bad_files_are_refused_naming_the_file_the_path_and_what_was_expected() {
    for case in cases("testdata/compose/errors") {
        let out = kiln(&case, &["compose", "config"]);
        let err = String::from_utf8_lossy(&out.stderr);
        let expected = std::fs::read_to_string(case.join("expected.err")).unwrap();
        assert!(!out.status.success(), "{}: accepted", case.display());
        assert!(
            err.contains(expected.trim()),
            "{}: said {err:?}, not {:?}",
            case.display(),
            expected.trim()
        );
    }
}

#[test]
fn files_are_found_as_docker_compose_finds_them() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("project/deep");
    std::fs::create_dir_all(&sub).unwrap();
    // docker-compose.yml when compose.yaml is absent, found from a directory below.
    std::fs::write(
        dir.path().join("project/docker-compose.yml"),
        "services:\n  a:\n    image: a\n",
    )
    .unwrap();
    let out = kiln(&sub, &["compose", "config", "--services"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\n");
    // compose.yaml wins over docker-compose.yml; the project is named after the directory.
    std::fs::write(
        dir.path().join("project/compose.yaml"),
        "services:\n  b:\n    image: b\n",
    )
    .unwrap();
    let out = kiln(&sub, &["compose", "config"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("name: project\n") && text.contains("  b:"),
        "{text}"
    );
    // -p and -f.
    let out = kiln(
        dir.path(),
        &[
            "compose",
            "-p",
            "other",
            "-f",
            "project/docker-compose.yml",
            "config",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("name: other\n") && text.contains("  a:"),
        "{text}"
    );
    // Nothing to find.
    let empty = tempfile::tempdir().unwrap();
    let out = kiln(empty.path(), &["compose", "config"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Compose file found"));
}

#[test]
fn the_sample_project_reads_with_its_env_file_and_anchors() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/compose");
    let out = kiln(&sample, &["compose", "config"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let project: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&out.stdout).unwrap();
    let services = &project["services"];
    // The build-only service is behind a profile.
    assert!(services.get("base").is_none());
    assert_eq!(services["worker"]["environment"]["MODE"], "batch");
    assert_eq!(services["worker"]["deploy"]["replicas"], 3);
    assert_eq!(services["front"]["image"], "kiln-sample/base:1");
    assert_eq!(
        services["front"]["depends_on"]["db"]["condition"],
        "service_healthy"
    );
    assert_eq!(project["volumes"]["data"]["name"], "sample_data");
}
