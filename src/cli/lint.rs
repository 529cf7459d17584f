//! `kiln lint [-f FILE]... [PATH...] [--format text|json|sarif|checkstyle|gitlab]
//! [--ignore RULE]... [--failure-threshold error|warning|info|style|none] [--config FILE]
//! [--no-ignore-pragmas] [--trusted-registry R]... [--require-label LABEL:FORMAT]...
//! [--strict-labels]`

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use kiln_builder::lint::config::{self, Config};
use kiln_builder::lint::report::{self, Report};
use kiln_builder::lint::{self, Finding, Severity};
use kiln_image::store::Store;

#[derive(clap::Args)]
pub struct Args {
    /// Dockerfiles to lint (repeatable; `-` for standard input).
    #[arg(short, long = "file")]
    files: Vec<PathBuf>,
    /// More Dockerfiles, or directories (their `Dockerfile`).
    paths: Vec<PathBuf>,
    /// text (FILE:LINE:COL RULE severity: message), json, sarif (2.1.0, for GitHub code
    /// scanning), checkstyle (XML) or gitlab (Code Quality).
    #[arg(long, default_value = "text")]
    format: String,
    /// Rules not to report (repeatable).
    #[arg(long = "ignore", value_name = "RULE")]
    ignore: Vec<String>,
    /// Exit with 1 when a finding is at least this severe (default: the config file's
    /// `failure-threshold`, else info); `none` never fails.
    #[arg(long, value_name = "error|warning|info|style|none")]
    failure_threshold: Option<String>,
    /// A registry FROM images may come from (DL3026; repeatable; adds to the config's
    /// `trustedRegistries`), as hadolint's --trusted-registry.
    #[arg(long = "trusted-registry", value_name = "REGISTRY")]
    trusted_registries: Vec<String>,
    /// A label every stage must have, with its format (text, url, rfc3339, spdx, hash,
    /// semver, email), as hadolint's --require-label (repeatable; adds to the config's
    /// `label-schema`).
    #[arg(long = "require-label", value_name = "LABEL:FORMAT")]
    require_labels: Vec<String>,
    /// No labels but those of the label schema (DL3050), as hadolint's --strict-labels.
    #[arg(long)]
    strict_labels: bool,
    /// hadolint's configuration file (default: `.hadolint.yaml` or `.hadolint.yml` in the
    /// current directory): `ignored`, `override`, `failure-threshold`, `no-fail`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The stage a build would target: stages it does not need are reported, and the
    /// rules about the exported image look at it (default: the last stage).
    #[arg(long)]
    target: Option<String>,
    /// Report what ignore pragmas (`# hadolint ignore=`, `# kiln ignore=`) and BuildKit's
    /// `# check=skip=` would hide.
    #[arg(long)]
    no_ignore_pragmas: bool,
}

/// The store, if there is one: base images in it tell UndefinedVar their variables, and
/// checking a Dockerfile never makes a store where there is none.
pub(crate) fn existing_store() -> Option<Store> {
    let root = Store::default_root();
    if !root.join("index.json").exists() {
        return None;
    }
    Store::open(&root).ok()
}

/// The names of the environment variables `image` sets, if the store has it.
pub(crate) fn base_env(store: Option<&Store>, image: &str) -> Option<Vec<String>> {
    let resolved = store?.resolve(image).ok()?;
    let env = resolved
        .config
        .config()
        .as_ref()
        .and_then(|c| c.env().clone())
        .unwrap_or_default();
    Some(
        env.iter()
            .map(|kv| {
                kv.split_once('=')
                    .map_or(kv.as_str(), |(k, _)| k)
                    .to_string()
            })
            .collect(),
    )
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config_path = args
        .config
        .clone()
        .or_else(|| config::find(std::path::Path::new(".")));
    let config = match &config_path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    // None: never fail.
    let threshold = match args
        .failure_threshold
        .as_deref()
        .or(config.failure_threshold.as_deref())
        .unwrap_or("info")
    {
        "none" | "ignore" => None,
        t => Some(Severity::parse(t).with_context(|| {
            format!("--failure-threshold {t}: use error, warning, info, style or none")
        })?),
    }
    .filter(|_| !config.no_fail);
    let trusted: Vec<String> = config
        .trusted_registries
        .iter()
        .chain(&args.trusted_registries)
        .cloned()
        .collect();
    let mut labels = config.label_schema();
    labels.strict |= args.strict_labels;
    for spec in &args.require_labels {
        let kind = spec
            .split_once(':')
            .and_then(|(label, kind)| Some((label.to_string(), lint::LabelType::parse(kind)?)))
            .with_context(|| {
                format!(
                    "--require-label {spec}: use LABEL:FORMAT, FORMAT one of {}",
                    lint::LabelType::NAMES
                )
            })?;
        labels.labels.retain(|(l, _)| *l != kind.0);
        labels.labels.push(kind);
    }
    let store = existing_store();
    let missing = RefCell::new(BTreeSet::new());
    let base_env = |image: &str| {
        let env = base_env(store.as_ref(), image);
        if env.is_none() {
            missing.borrow_mut().insert(image.to_string());
        }
        env
    };
    let options = lint::Options {
        pragmas: !args.no_ignore_pragmas && !config.disable_ignore_pragma,
        dockerignore: None,
        target: args.target.as_deref(),
        trusted_registries: &trusted,
        labels: &labels,
        base_env: Some(&base_env),
    };
    for id in &args.ignore {
        if lint::rule(id).is_none() {
            bail!(
                "--ignore {id}: no such rule (kiln lint knows {})",
                lint::rules().map(|r| r.id).collect::<Vec<_>>().join(", ")
            );
        }
    }
    let mut targets: Vec<PathBuf> = args.files.clone();
    for p in &args.paths {
        targets.push(if p.is_dir() {
            p.join("Dockerfile")
        } else {
            p.clone()
        });
    }
    if targets.is_empty() {
        targets.push(PathBuf::from("Dockerfile"));
    }
    if !matches!(
        args.format.as_str(),
        "text" | "json" | "sarif" | "checkstyle" | "gitlab"
    ) {
        bail!(
            "--format {}: use text, json, sarif, checkstyle or gitlab",
            args.format
        );
    }
    let mut failed = false;
    let mut linted: Vec<(String, Vec<Finding>)> = Vec::new();
    for path in &targets {
        let name = path.display().to_string();
        let text = if name == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .context("reading standard input")?;
            s
        } else {
            std::fs::read_to_string(path).with_context(|| format!("reading {name}"))?
        };
        let df = match kiln_builder::parse(&name, &text) {
            Ok(df) => df,
            Err(e) => {
                eprintln!("{e}");
                failed = true;
                continue;
            }
        };
        if let Some(t) = &args.target {
            let names: Vec<&str> = df
                .instructions
                .iter()
                .filter_map(|i| match &i.command {
                    kiln_builder::ast::Command::From(f) => f.stage.as_deref(),
                    _ => None,
                })
                .collect();
            if !names.iter().any(|n| n.eq_ignore_ascii_case(t)) {
                bail!(
                    "--target {t}: {name} has no such stage (it has: {})",
                    names.join(", ")
                );
            }
        }
        // The context is the Dockerfile's directory, as `kiln build -f DIR/Dockerfile DIR`.
        let context = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let ignore = (name != "-")
            .then(|| kiln_builder::context::dockerignore_for(path, context))
            .transpose()?;
        let options = lint::Options {
            dockerignore: ignore.as_ref(),
            ..options
        };
        let mut findings = lint::lint_with(&df, options);
        config.apply(&mut findings);
        findings.retain(|f| !args.ignore.iter().any(|i| i == f.rule));
        failed |= threshold.is_some_and(|t| findings.iter().any(|f| f.severity >= t));
        linted.push((name, findings));
    }
    let missing = missing.into_inner();
    if !missing.is_empty() {
        eprintln!(
            "kiln lint: not in the store: {}; UndefinedVar reports in the stages built on them only the variables it is sure of (kiln pull them to check every one)",
            missing.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    let reports: Vec<Report> = linted
        .iter()
        .map(|(file, findings)| Report { file, findings })
        .collect();
    match args.format.as_str() {
        "text" => {
            for r in &reports {
                for f in r.findings {
                    println!(
                        "{}:{}:{} {} {}: {}",
                        r.file,
                        f.line,
                        f.column,
                        f.rule,
                        f.severity.name(),
                        f.message
                    );
                }
            }
        }
        "json" => {
            let all: Vec<serde_json::Value> = reports
                .iter()
                .flat_map(|r| {
                    r.findings.iter().map(|f| {
                        serde_json::json!({
                            "file": r.file, "line": f.line, "column": f.column, "endLine": f.end_line,
                            "rule": f.rule, "severity": f.severity.name(), "message": f.message,
                            "url": lint::rule(f.rule).and_then(|r| r.url),
                        })
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        "sarif" => println!(
            "{}",
            serde_json::to_string_pretty(&report::sarif(&reports))?
        ),
        "checkstyle" => print!("{}", report::checkstyle(&reports)),
        _ => println!(
            "{}",
            serde_json::to_string_pretty(&report::gitlab(&reports))?
        ),
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
