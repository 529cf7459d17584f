//! `kiln lint [-f FILE]... [PATH...] [--format text|json|sarif|checkstyle|gitlab]
//! [--ignore RULE]... [--failure-threshold error|warning|info|style]`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use kiln_builder::lint::report::{self, Report};
use kiln_builder::lint::{self, Finding, Severity};

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
    /// Exit with 1 when a finding is at least this severe.
    #[arg(long, default_value = "info", value_name = "error|warning|info|style")]
    failure_threshold: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let threshold = Severity::parse(&args.failure_threshold).with_context(|| {
        format!(
            "--failure-threshold {}: use error, warning, info or style",
            args.failure_threshold
        )
    })?;
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
        let findings: Vec<Finding> = lint::lint(&df)
            .into_iter()
            .filter(|f| !args.ignore.iter().any(|i| i == f.rule))
            .collect();
        failed |= findings.iter().any(|f| f.severity >= threshold);
        linted.push((name, findings));
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
                            "url": lint::rule(f.rule).map(|r| r.url),
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
