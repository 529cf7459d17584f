//! `kiln lint`: each rule against a case that must trigger it and one that must not
//! (`testdata/lint/<Rule>/`), per-rule counts on the corpus kept from drifting silently,
//! `docs/lint-rules.md` kept in step with the rules and their cases, and the command's
//! formats, thresholds and exit codes.
//! `KILN_BLESS=1 cargo test --test lint` rewrites the expectations; read the diff.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_builder::lint;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The findings on a file, with the `.dockerignore` of its directory (the context) and
/// the trusted registries of a `.hadolint.yaml` there (config-driven rules).
fn findings(path: &Path) -> Vec<lint::Finding> {
    let text = std::fs::read_to_string(path).unwrap();
    let df = kiln_builder::parse(&path.display().to_string(), &text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dir = path.parent().unwrap();
    let ignore = kiln_builder::context::dockerignore_for(path, dir).unwrap();
    let config = kiln_builder::lint::config::find(dir)
        .map(|c| kiln_builder::lint::config::Config::load(&c).unwrap())
        .unwrap_or_default();
    lint::lint_with(
        &df,
        lint::Options {
            dockerignore: Some(&ignore),
            trusted_registries: &config.trusted_registries,
            labels: &config.label_schema(),
            ..Default::default()
        },
    )
}

/// Compares `actual` with the file, or writes it under KILN_BLESS.
fn expect(path: &Path, actual: &str) {
    if std::env::var_os("KILN_BLESS").is_some() {
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path)
        .unwrap_or_else(|_| panic!("{} is missing: KILN_BLESS=1 writes it", path.display()));
    assert_eq!(
        expected,
        actual,
        "{} differs (KILN_BLESS=1 rewrites it)",
        path.display()
    );
}

#[test]
fn every_rule_has_a_case_that_triggers_it_and_one_that_must_not() {
    for rule in lint::rules() {
        let dir = root().join("testdata/lint").join(rule.id);
        let bad = findings(&dir.join("bad.Dockerfile"));
        let ours: Vec<String> = bad
            .iter()
            .filter(|f| f.rule == rule.id)
            .map(|f| {
                format!(
                    "{}:{} {} {}: {}\n",
                    f.line,
                    f.column,
                    f.rule,
                    f.severity.name(),
                    f.message
                )
            })
            .collect();
        assert!(
            !ours.is_empty(),
            "{}: bad.Dockerfile does not trigger it",
            rule.id
        );
        expect(&dir.join("bad.expected"), &ours.concat());
        let good: Vec<lint::Finding> = findings(&dir.join("good.Dockerfile"))
            .into_iter()
            .filter(|f| f.rule == rule.id)
            .collect();
        assert!(
            good.is_empty(),
            "{}: good.Dockerfile must not trigger it, got {good:?}",
            rule.id
        );
    }
}

#[test]
fn the_corpus_lints_and_per_rule_counts_do_not_drift() {
    let mut counts: BTreeMap<&str, usize> = lint::rules().map(|r| (r.id, 0)).collect();
    for file in kiln_testkit::corpus_files() {
        for f in findings(&file) {
            *counts.get_mut(f.rule).expect("a known rule") += 1;
        }
    }
    let text: String = counts.iter().map(|(r, n)| format!("{r} {n}\n")).collect();
    expect(&root().join("testdata/lint/corpus-counts.txt"), &text);
}

/// The line that ends the page's hand-written part; the rules below it are generated.
const GENERATED: &str =
    "<!-- Below: written by tests/lint.rs from the rules and testdata/lint/ (KILN_BLESS=1 cargo test --test lint). -->\n";

#[test]
fn the_rules_page_has_every_rule_with_its_examples() {
    let path = root().join("docs/lint-rules.md");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    let mut doc = match current.find(GENERATED) {
        Some(at) => current[..at].to_string(),
        None => "# kiln lint rules\n\n".to_string(),
    };
    doc.push_str(GENERATED);
    for (source, title) in [
        (lint::Source::BuildKit, "BuildKit's build checks"),
        (lint::Source::Hadolint, "hadolint's rules"),
        (lint::Source::Kiln, "kiln's rules"),
    ] {
        doc.push_str(&format!("\n## {title}\n\n"));
        for rule in lint::rules().filter(|r| r.source == source) {
            let dir = root().join("testdata/lint").join(rule.id);
            let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
            doc.push_str(&format!(
                "### {}\n\n{} ({}; {})\n\nBad:\n\n```dockerfile\n{}```\n\n```text\n{}```\n\nGood:\n\n```dockerfile\n{}```\n\n",
                rule.id,
                rule.description,
                rule.severity.name(),
                rule.url.unwrap_or("kiln's own rule"),
                read("bad.Dockerfile"),
                read("bad.expected"),
                read("good.Dockerfile"),
            ));
        }
    }
    expect(&path, &doc);
}

/// `kiln ARGS` with no store (none is made: a lint never makes one).
fn kiln(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .env(
            "KILN_ROOT",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("lint-no-store"),
        )
        .output()
        .unwrap()
}

#[test]
fn the_command_reports_and_exits_by_threshold() {
    let bad = root().join("testdata/lint/MaintainerDeprecated/bad.Dockerfile");
    let bad = bad.to_str().unwrap();
    let out = kiln(&["lint", bad]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text,
        format!("{bad}:2:1 DL4000 error: MAINTAINER is deprecated\n{bad}:2:1 MaintainerDeprecated warning: Maintainer instruction is deprecated in favor of using label\n")
    );
    let threshold = |extra: &[&str]| {
        let mut args = vec!["lint", "--failure-threshold", "error"];
        args.extend(extra);
        args.push(bad);
        kiln(&args).status.code()
    };
    assert_eq!(threshold(&[]), Some(1));
    assert_eq!(threshold(&["--ignore", "DL4000"]), Some(0));
    let ignored = kiln(&[
        "lint",
        "--ignore",
        "MaintainerDeprecated",
        "--ignore",
        "DL4000",
        bad,
    ]);
    assert_eq!((ignored.status.code(), ignored.stdout.len()), (Some(0), 0));
    let json: serde_json::Value =
        serde_json::from_slice(&kiln(&["lint", "--format", "json", bad]).stdout).unwrap();
    assert_eq!(json[1]["rule"], "MaintainerDeprecated");
    assert_eq!(json[1]["line"], 2);
    assert_eq!(
        json[1]["url"],
        "https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/"
    );
    let unknown = kiln(&["lint", "--ignore", "NoSuchRule", bad]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no such rule"));
    // A file that does not parse is reported with its place, and fails.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("Dockerfile");
    std::fs::write(&broken, "FROM alpine\nFRM x\n").unwrap();
    let out = kiln(&["lint", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":2:1"));
}

#[test]
fn the_check_directive_skips_rules_and_makes_findings_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Dockerfile");
    std::fs::write(
        &path,
        "# check=skip=MaintainerDeprecated,JSONArgsRecommended,DL4000;error=true\nFROM alpine:3.20\nMAINTAINER x\nCMD echo\nWORKDIR app\n",
    )
    .unwrap();
    // The directive is BuildKit's: `error=true` and `all` reach BuildKit's checks, a
    // skip list may name any rule.
    let found: Vec<(&str, lint::Severity)> = findings(&path)
        .iter()
        .map(|f| (f.rule, f.severity))
        .collect();
    assert_eq!(
        found,
        [
            ("DL3025", lint::Severity::Warning),
            ("DL3000", lint::Severity::Error),
            ("WorkdirRelativePath", lint::Severity::Error)
        ]
    );
    std::fs::write(&path, "# check=skip=all\nFROM alpine:3.20\nMAINTAINER x\n").unwrap();
    let found: Vec<&str> = findings(&path).iter().map(|f| f.rule).collect();
    assert_eq!(found, ["DL4000"]);
}

#[test]
fn sarif_output_validates_against_the_sarif_2_1_0_schema_and_other_formats_hold_the_findings() {
    let schema_path = std::env::var_os("KILN_SARIF_SCHEMA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/kiln-sarif/sarif-2.1.0.json"));
    let Ok(schema) = std::fs::read_to_string(&schema_path) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing: scripts/setup fetches it",
            schema_path.display()
        );
        eprintln!(
            "skipped: no SARIF schema at {} (scripts/setup fetches it)",
            schema_path.display()
        );
        return;
    };
    let schema: serde_json::Value = serde_json::from_str(&schema).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the SARIF schema compiles");
    assert!(
        !validator.is_valid(&serde_json::json!({"version": "2.1.0", "runs": [{"results": []}]})),
        "the validator refuses a log without a tool"
    );
    let files: Vec<String> = [
        "SecretsUsedInArgOrEnv",
        "ExposeInvalidFormat",
        "MaintainerDeprecated",
    ]
    .iter()
    .map(|r| {
        root()
            .join("testdata/lint")
            .join(r)
            .join("bad.Dockerfile")
            .display()
            .to_string()
    })
    .collect();
    let mut args = vec!["lint", "--format", "sarif"];
    args.extend(files.iter().map(String::as_str));
    let out = kiln(&args);
    assert_eq!(out.status.code(), Some(1));
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let expected: usize = files.iter().map(|f| findings(Path::new(f)).len()).sum();
    assert_eq!(results.len(), expected);
    let last = &results[expected - 1];
    assert_eq!(last["ruleId"], "MaintainerDeprecated");
    assert_eq!(
        last["locations"][0]["physicalLocation"]["region"]["startLine"],
        2
    );
    // A clean file gives a valid log with no results.
    let good = root().join("testdata/lint/MaintainerDeprecated/good.Dockerfile");
    let clean: serde_json::Value = serde_json::from_slice(
        &kiln(&["lint", "--format", "sarif", good.to_str().unwrap()]).stdout,
    )
    .unwrap();
    assert!(validator.is_valid(&clean));
    assert_eq!(clean["runs"][0]["results"], serde_json::json!([]));

    let mut args = vec!["lint", "--format", "gitlab"];
    args.extend(files.iter().map(String::as_str));
    let gitlab: serde_json::Value = serde_json::from_slice(&kiln(&args).stdout).unwrap();
    let issues = gitlab.as_array().unwrap();
    assert_eq!(issues.len(), expected);
    let prints: std::collections::HashSet<&str> = issues
        .iter()
        .map(|i| i["fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(prints.len(), expected, "fingerprints are distinct");
    assert_eq!(issues[expected - 1]["location"]["lines"]["begin"], 2);
    let mut args = vec!["lint", "--format", "checkstyle"];
    args.extend(files.iter().map(String::as_str));
    let xml = String::from_utf8(kiln(&args).stdout).unwrap();
    assert_eq!(xml.matches("<error ").count(), expected);
    assert!(xml.contains("message=\"Do not use ARG or ENV instructions for sensitive data (ENV &quot;DB_PASSWORD&quot;)\""), "{xml}");
}

#[test]
fn build_check_runs_the_checks_and_builds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nMAINTAINER x\n").unwrap();
    let store = dir.path().join("store");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(["build", "--check"])
            .arg(&ctx)
            .env("KILN_ROOT", &store)
            .output()
            .unwrap()
    };
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "warnings do not fail the check: {err}"
    );
    assert!(err.contains("WARNING: MaintainerDeprecated - "), "{err}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Check complete: 1 finding(s), 0 error(s)")
    );
    assert!(!store.join("index.json").exists(), "nothing was built");
    std::fs::write(
        ctx.join("Dockerfile"),
        "# check=error=true\nFROM scratch\nMAINTAINER x\n",
    )
    .unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(1), "an error fails it");
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR: MaintainerDeprecated"));
}

/// (line, rule) of each finding of `kiln lint` on `text` with `extra` arguments, run in
/// `dir` (where a `.hadolint.yaml` may wait).
fn lint_in(dir: &Path, text: &str, extra: &[&str]) -> (Option<i32>, Vec<(u64, String)>) {
    std::fs::write(dir.join("Dockerfile"), text).unwrap();
    let mut args = vec!["lint", "--format", "json"];
    args.extend(extra);
    args.push("Dockerfile");
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(&args)
        .current_dir(dir)
        .env("KILN_ROOT", dir.join("store"))
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let found = json
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["line"].as_u64().unwrap(),
                f["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (out.status.code(), found)
}

fn pairs(list: &[(u64, &str)]) -> Vec<(u64, String)> {
    list.iter().map(|(l, r)| (*l, r.to_string())).collect()
}

#[test]
fn ignore_pragmas_cover_a_line_a_stage_or_the_file_and_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\
FROM alpine:3.20 AS build
# hadolint ignore=DL3018,DL3003
RUN cd /tmp && apk add --no-cache curl
RUN cd /tmp && apk add --no-cache git
# kiln ignore-stage=DL3018 the stage's packages come from a pinned mirror
FROM alpine:3.20
RUN apk add --no-cache make
# kiln ignore=DL3059
RUN apk add --no-cache gcc
";
    let (_, found) = lint_in(dir.path(), text, &[]);
    assert_eq!(
        found,
        pairs(&[
            (4, "DL3003"),
            (4, "DL3018"),
            (4, "DL3059"),
            (8, "InvalidIgnorePragma")
        ])
    );
    let (_, all) = lint_in(dir.path(), text, &["--no-ignore-pragmas"]);
    assert_eq!(
        all,
        pairs(&[
            (3, "DL3003"),
            (3, "DL3018"),
            (4, "DL3003"),
            (4, "DL3018"),
            (4, "DL3059"),
            (7, "DL3018"),
            (9, "DL3018"),
            (9, "DL3059")
        ])
    );
    let global = format!("# hadolint global ignore=DL3059,DL3003\n{text}");
    let (_, found) = lint_in(dir.path(), &global, &[]);
    assert_eq!(found, pairs(&[(5, "DL3018"), (9, "InvalidIgnorePragma")]));
}

#[test]
fn a_hadolint_config_file_ignores_overrides_and_sets_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let text = "FROM alpine:3.20\nRUN cd /tmp && apk add --no-cache curl\nMAINTAINER x\n";
    let (code, found) = lint_in(dir.path(), text, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        found,
        pairs(&[
            (2, "DL3003"),
            (2, "DL3018"),
            (3, "DL4000"),
            (3, "MaintainerDeprecated")
        ])
    );
    // Found in the current directory, as hadolint finds it.
    std::fs::write(
        dir.path().join(".hadolint.yaml"),
        "ignored: [DL3018, SC2086]\noverride:\n  info: [DL4000]\nfailure-threshold: error\nlabel-schema:\n  author: text\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["lint", "Dockerfile"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "no error is left");
    let text_out = String::from_utf8_lossy(&out.stdout);
    assert!(
        text_out.contains("DL4000 info: MAINTAINER is deprecated"),
        "{text_out}"
    );
    assert!(!text_out.contains("DL3018"), "{text_out}");
    // --config names another file; the command line's threshold wins.
    let other = dir.path().join("strict.yaml");
    std::fs::write(&other, "ignored: [MaintainerDeprecated]\n").unwrap();
    let (code, found) = lint_in(
        dir.path(),
        text,
        &[
            "--config",
            other.to_str().unwrap(),
            "--failure-threshold",
            "warning",
        ],
    );
    assert_eq!(code, Some(1));
    assert_eq!(found, pairs(&[(2, "DL3003"), (2, "DL3018"), (3, "DL4000")]));
    // A config that names no rule kiln knows, or does not parse, is refused by name.
    let refused = |config: &str| {
        std::fs::write(&other, config).unwrap();
        let out = kiln(&[
            "lint",
            "--config",
            other.to_str().unwrap(),
            "-f",
            "/dev/null",
        ]);
        assert_ne!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused("ignored: [DL9999]\n");
    assert!(
        err.contains("strict.yaml") && err.contains("no such rule: DL9999"),
        "{err}"
    );
    assert!(refused("ignored: [unclosed\n").contains("strict.yaml"));
}

#[test]
fn a_target_reports_the_stages_it_does_not_need() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\
FROM alpine:3.20 AS base
FROM base AS build
FROM alpine:3.20 AS test
COPY --from=build /x /x
FROM alpine:3.20
COPY --from=build /x /x
";
    // Without --target, named stages may be targets: nothing to say.
    let (_, found) = lint_in(dir.path(), text, &[]);
    assert_eq!(found, pairs(&[]));
    let (_, found) = lint_in(dir.path(), text, &["--target", "build"]);
    assert_eq!(
        found,
        pairs(&[(3, "UnreachableStage"), (5, "UnreachableStage")])
    );
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["lint", "--target", "nope", "Dockerfile"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--target nope") && err.contains("base, build, test"),
        "{err}"
    );
}

#[test]
fn trusted_registries_come_from_the_config_and_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = "FROM quay.io/team/app:1.0\n";
    // No trusted list: DL3026 says nothing, as in hadolint.
    let (_, found) = lint_in(dir.path(), text, &[]);
    assert!(!found.iter().any(|(_, r)| r == "DL3026"), "{found:?}");
    std::fs::write(
        dir.path().join(".hadolint.yaml"),
        "trustedRegistries: [docker.io]\n",
    )
    .unwrap();
    let (code, found) = lint_in(dir.path(), text, &[]);
    assert_eq!(code, Some(1));
    assert!(found.contains(&(1, "DL3026".to_string())), "{found:?}");
    let (_, found) = lint_in(dir.path(), text, &["--trusted-registry", "quay.io"]);
    assert!(!found.iter().any(|(_, r)| r == "DL3026"), "{found:?}");
    // hadolint reads the kebab-case spelling too.
    std::fs::write(
        dir.path().join(".hadolint.yaml"),
        "trusted-registries: [quay.io]\n",
    )
    .unwrap();
    let (_, found) = lint_in(dir.path(), text, &[]);
    assert!(!found.iter().any(|(_, r)| r == "DL3026"), "{found:?}");
}

#[test]
fn a_check_skip_comment_right_above_an_instruction_skips_the_check_for_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Dockerfile");
    let found = |text: &str| -> Vec<(usize, &'static str)> {
        std::fs::write(&path, text).unwrap();
        findings(&path).iter().map(|f| (f.line, f.rule)).collect()
    };
    // BuildKit (0.26) reads `# check=skip=` in the comments right above an instruction
    // for that instruction; a blank line breaks the block.
    assert_eq!(
        found("FROM alpine:3.20\n# the init of the base reads the shell form\n# check=skip=JSONArgsRecommended\nCMD echo a\nENTRYPOINT echo b\n# check=skip=all\n\nMAINTAINER x\n"),
        [
            (4, "DL3025"),
            (5, "DL3025"),
            (5, "JSONArgsRecommended"),
            (8, "DL4000"),
            (8, "MaintainerDeprecated")
        ]
    );
    assert_eq!(
        found("FROM alpine:3.20\n# check=skip=all\nMAINTAINER x\nMAINTAINER y\n"),
        [(3, "DL4000"), (4, "DL4000"), (4, "MaintainerDeprecated")]
    );
}

#[test]
fn undefined_var_knows_the_variables_of_a_base_image_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let text = "FROM base:1\nWORKDIR $APP_HOME\nWORKDIR $UNSET_ONE\n";
    let lint = || {
        std::fs::write(dir.path().join("Dockerfile"), text).unwrap();
        Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(["lint", "--format", "json", "Dockerfile"])
            .current_dir(dir.path())
            .env("KILN_ROOT", dir.path().join("store"))
            .output()
            .unwrap()
    };
    let undefined = |out: &std::process::Output| -> Vec<(u64, String)> {
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json.as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "UndefinedVar")
            .map(|f| {
                (
                    f["line"].as_u64().unwrap(),
                    f["message"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    // The base is unknown: nothing certain to say, and kiln says why.
    let out = lint();
    assert_eq!(undefined(&out), []);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not in the store: base:1"), "{err}");
    assert!(!dir.path().join("store").exists(), "a lint makes no store");

    // With the base in the store, its ENV is known and every other name is reported.
    let tar_path = dir.path().join("root.tar");
    let mut tar = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
    let mut header = tar::Header::new_gnu();
    header.set_size(2);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "hello", &b"hi"[..]).unwrap();
    tar.finish().unwrap();
    let imported = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["import", "-c", "ENV APP_HOME=/srv"])
        .arg(&tar_path)
        .arg("base:1")
        .env("KILN_ROOT", dir.path().join("store"))
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let out = lint();
    assert_eq!(
        undefined(&out),
        [(3, "Usage of undefined variable '$UNSET_ONE'".to_string())]
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn label_schemas_from_the_command_line_or_the_config_as_hadolint_takes_them() {
    let dir = tempfile::tempdir().unwrap();
    let text = "FROM alpine:3.20\nLABEL version=v1 team=web\n";
    let (_, found) = lint_in(
        dir.path(),
        text,
        &[
            "--require-label",
            "version:semver",
            "--require-label",
            "maintainer:email",
            "--strict-labels",
        ],
    );
    assert_eq!(found, pairs(&[(1, "DL3049"), (2, "DL3050"), (2, "DL3056")]));
    let refused = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(args)
            .current_dir(dir.path())
            .env("KILN_ROOT", dir.path().join("store"))
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused(&["lint", "--require-label", "version:number", "Dockerfile"]);
    assert!(
        err.contains("--require-label version:number: use LABEL:FORMAT"),
        "{err}"
    );
    std::fs::write(
        dir.path().join(".hadolint.yaml"),
        "label-schema:\n  version: number\n",
    )
    .unwrap();
    let err = refused(&["lint", "Dockerfile"]);
    assert!(
        err.contains(".hadolint.yaml")
            && err.contains("label-schema: version: number: use one of text, url"),
        "{err}"
    );
}
