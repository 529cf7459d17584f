//! Findings in the formats CI systems read: SARIF 2.1.0 (GitHub code scanning),
//! checkstyle XML (Jenkins and most CI dashboards), GitLab Code Quality JSON.

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::{rule, rules, Finding, Severity};

/// One linted file and what was found in it.
pub struct Report<'a> {
    /// The file as the user named it.
    pub file: &'a str,
    /// Its findings, in file order.
    pub findings: &'a [Finding],
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info | Severity::Style => "note",
    }
}

/// A SARIF 2.1.0 log with one run: every rule kiln has, and the results.
pub fn sarif(reports: &[Report]) -> Value {
    let all: Vec<_> = rules().collect();
    let driver_rules: Vec<Value> = all
        .iter()
        .map(|r| {
            let mut rule = json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": {"text": r.description},
                "defaultConfiguration": {"level": sarif_level(r.severity)},
            });
            if let Some(url) = r.url {
                rule["helpUri"] = url.into();
            }
            rule
        })
        .collect();
    let mut results = Vec::new();
    for report in reports {
        for f in report.findings {
            results.push(json!({
                "ruleId": f.rule,
                "ruleIndex": all.iter().position(|r| r.id == f.rule),
                "level": sarif_level(f.severity),
                "message": {"text": f.message},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": report.file},
                    "region": {"startLine": f.line, "startColumn": f.column, "endLine": f.end_line.max(f.line)},
                }}],
            }));
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "kiln",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": driver_rules,
            }},
            "results": results,
        }],
    })
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Checkstyle XML: a `<file>` per file, an `<error>` per finding.
pub fn checkstyle(reports: &[Report]) -> String {
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<checkstyle version=\"4.3\">\n");
    for report in reports {
        out.push_str(&format!("  <file name=\"{}\">\n", xml_escape(report.file)));
        for f in report.findings {
            let severity = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info | Severity::Style => "info",
            };
            out.push_str(&format!(
                "    <error line=\"{}\" column=\"{}\" severity=\"{severity}\" message=\"{}\" source=\"kiln.{}\"/>\n",
                f.line,
                f.column,
                xml_escape(&f.message),
                f.rule
            ));
        }
        out.push_str("  </file>\n");
    }
    out.push_str("</checkstyle>\n");
    out
}

/// GitLab Code Quality: an array of issues, each with a stable fingerprint.
pub fn gitlab(reports: &[Report]) -> Value {
    let mut issues = Vec::new();
    for report in reports {
        for f in report.findings {
            let fingerprint = hex::encode(Sha256::digest(format!(
                "{}:{}:{}:{}",
                report.file, f.line, f.rule, f.message
            )));
            let severity = match f.severity {
                Severity::Error => "critical",
                Severity::Warning => "major",
                Severity::Info => "minor",
                Severity::Style => "info",
            };
            issues.push(json!({
                "description": f.message,
                "check_name": f.rule,
                "fingerprint": fingerprint,
                "severity": severity,
                "location": {"path": report.file, "lines": {"begin": f.line}},
                "url": rule(f.rule).and_then(|r| r.url),
            }));
        }
    }
    Value::Array(issues)
}
