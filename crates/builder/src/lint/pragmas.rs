//! Ignore pragmas in comments: hadolint's (`# hadolint ignore=DL3008,DL3015` for the next
//! instruction, `# hadolint global ignore=...` for the file) and kiln's, which take a
//! reason and a scope:
//!
//! ```text
//! # kiln ignore=DL3008 the base image's snapshot pins every package     (next instruction)
//! # kiln ignore-stage=DL3059 steps kept apart for the layer cache         (its stage)
//! # kiln ignore-file=DL3003 upstream build scripts expect cd               (the file)
//! ```
//!
//! and BuildKit's `# check=skip=A,B` in the comments right above an instruction, for that
//! instruction (added to the file's `# check=` directive, as BuildKit merges them).

use super::{rule, Finding, Rule, Severity, Source};
use crate::ast::{Command, Dockerfile};

pub const INVALID_IGNORE_PRAGMA: Rule = Rule {
    id: "InvalidIgnorePragma",
    source: Source::Kiln,
    severity: Severity::Warning,
    description: "A `# kiln ignore=RULE reason` pragma names rules kiln knows and says why",
    url: None,
};

/// Lines `from..=to` are exempt from `rules`.
struct Ignore {
    rules: Vec<String>,
    from: usize,
    to: usize,
}

pub struct Pragmas {
    ignores: Vec<Ignore>,
    /// Findings about the pragmas themselves.
    pub findings: Vec<Finding>,
}

impl Pragmas {
    pub fn read(df: &Dockerfile) -> Pragmas {
        let mut pragmas = Pragmas {
            ignores: Vec::new(),
            findings: Vec::new(),
        };
        let whole = (1, usize::MAX);
        for comment in &df.comments {
            let mut words = comment.text.split_whitespace();
            let Some(tool) = words.next() else {
                continue;
            };
            let Some(directive) = words.next() else {
                continue;
            };
            let (scope, list) = match (tool, directive) {
                ("hadolint", "global") => {
                    match words.next().and_then(|w| w.strip_prefix("ignore=")) {
                        Some(list) => (Some(whole), list),
                        None => continue,
                    }
                }
                ("hadolint", d) => match d.strip_prefix("ignore=") {
                    Some(list) => (next_instruction(df, comment.line), list),
                    None => continue,
                },
                ("kiln", d) => {
                    let Some((kind, list)) = d.split_once('=') else {
                        continue;
                    };
                    let scope = match kind {
                        "ignore" => next_instruction(df, comment.line),
                        "ignore-stage" => stage_after(df, comment.line),
                        "ignore-file" => Some(whole),
                        _ => continue,
                    };
                    let reason = words.clone().next().is_some();
                    pragmas.check(comment.line, list, reason);
                    (scope, list)
                }
                _ => continue,
            };
            if let Some((from, to)) = scope {
                pragmas.ignores.push(Ignore {
                    rules: list
                        .split(',')
                        .map(|r| r.trim().to_string())
                        .filter(|r| !r.is_empty())
                        .collect(),
                    from,
                    to,
                });
            }
        }
        pragmas
    }

    /// A kiln pragma names known rules and gives a reason.
    fn check(&mut self, line: usize, list: &str, reason: bool) {
        let unknown: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|r| rule(r).is_none())
            .collect();
        let mut problems = Vec::new();
        if !unknown.is_empty() {
            problems.push(format!("no such rule: {}", unknown.join(", ")));
        }
        if !reason {
            problems.push(
                "say why after the rule list: `# kiln ignore=DL3008 pinned by the base image`"
                    .to_string(),
            );
        }
        if !problems.is_empty() {
            self.findings.push(Finding {
                rule: INVALID_IGNORE_PRAGMA.id,
                severity: INVALID_IGNORE_PRAGMA.severity,
                message: problems.join("; "),
                line,
                column: 1,
                end_line: line,
            });
        }
    }

    pub fn ignores(&self, finding: &Finding) -> bool {
        self.ignores.iter().any(|i| {
            (i.from..=i.to).contains(&finding.line) && i.rules.iter().any(|r| r == finding.rule)
        })
    }
}

/// BuildKit's `# check=skip=...` comments right above instructions.
pub struct CheckSkips(Vec<Ignore>);

impl CheckSkips {
    pub fn read(df: &Dockerfile) -> CheckSkips {
        let mut skips = Vec::new();
        for comment in &df.comments {
            let Some((key, value)) = comment.text.split_once('=') else {
                continue;
            };
            if !key.trim().eq_ignore_ascii_case("check") {
                continue;
            }
            let Some((from, to)) = directly_above(df, comment.line) else {
                continue;
            };
            for part in value.split(';') {
                if let Some(("skip", list)) = part.trim().split_once('=') {
                    skips.push(Ignore {
                        rules: list.split(',').map(|r| r.trim().to_string()).collect(),
                        from,
                        to,
                    });
                }
            }
        }
        CheckSkips(skips)
    }

    /// `all` is every BuildKit check, as in the file's directive.
    pub fn skips(&self, finding: &Finding) -> bool {
        let buildkit = rule(finding.rule).is_some_and(|r| r.source == Source::BuildKit);
        self.0.iter().any(|i| {
            (i.from..=i.to).contains(&finding.line)
                && i.rules
                    .iter()
                    .any(|r| r == finding.rule || (r == "all" && buildkit))
        })
    }
}

/// The lines of the instruction that `line` is in the comment block of: only comment
/// lines between them.
fn directly_above(df: &Dockerfile, line: usize) -> Option<(usize, usize)> {
    let (from, to) = next_instruction(df, line)?;
    let comment_lines: std::collections::BTreeSet<usize> =
        df.comments.iter().map(|c| c.line).collect();
    (line + 1..from)
        .all(|l| comment_lines.contains(&l))
        .then_some((from, to))
}

/// The lines of the first instruction after `line`.
fn next_instruction(df: &Dockerfile, line: usize) -> Option<(usize, usize)> {
    df.instructions
        .iter()
        .find(|i| i.span.start.line > line)
        .map(|i| (i.span.start.line, i.span.end.line))
}

/// The lines of the stage that holds the first instruction after `line`: from its FROM
/// to the line before the next FROM.
fn stage_after(df: &Dockerfile, line: usize) -> Option<(usize, usize)> {
    let (from, _) = next_instruction(df, line)?;
    let froms: Vec<usize> = df
        .instructions
        .iter()
        .filter(|i| matches!(i.command, Command::From(_)))
        .map(|i| i.span.start.line)
        .collect();
    let start = froms
        .iter()
        .rev()
        .find(|&&l| l <= from)
        .copied()
        .unwrap_or(1);
    let end = froms
        .iter()
        .find(|&&l| l > from)
        .map(|l| l - 1)
        .unwrap_or(usize::MAX);
    Some((start, end))
}
