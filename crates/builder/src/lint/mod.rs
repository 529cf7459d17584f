//! `kiln lint`: rules over the typed AST and the stage graph. Each rule has an id, a
//! severity and a message that says how to fix it (`docs/lint-rules.md` has a bad and a
//! good example of each). BuildKit's build checks keep BuildKit's names and messages, so
//! `# check=skip=...` lists carry over.

/// A BuildKit check: a warning, documented under its slug on docs.docker.com.
macro_rules! buildkit_rule {
    ($name:ident, $id:literal, $desc:literal, $slug:literal) => {
        pub const $name: Rule = Rule {
            id: $id,
            source: Source::BuildKit,
            severity: Severity::Warning,
            description: $desc,
            url: Some(concat!(
                "https://docs.docker.com/go/dockerfile/rule/",
                $slug,
                "/"
            )),
        };
    };
}

/// A table of rules from one source, as `NAME "Id" Severity "description";` lines, and
/// `RULES` listing them. `rule_table! { Hadolint, "https://…/wiki/"; … }`: each rule's page
/// is the prefix followed by its id; `rule_table! { Kiln; … }`: no page but ours.
macro_rules! rule_table {
    ($source:ident, $prefix:literal; $($rules:tt)*) => {
        rule_table!(@emit $source [$prefix] $($rules)*);
    };
    ($source:ident; $($rules:tt)*) => {
        rule_table!(@emit $source [] $($rules)*);
    };
    (@emit $source:ident $url:tt $( $name:ident $id:literal $sev:ident $desc:literal; )*) => {
        $(
            pub const $name: Rule = Rule {
                id: $id,
                source: Source::$source,
                severity: Severity::$sev,
                description: $desc,
                url: rule_table!(@url $url $id),
            };
        )*
        pub static RULES: &[Rule] = &[$($name),*];
    };
    (@url [$prefix:literal] $id:literal) => { Some(concat!($prefix, $id)) };
    (@url [] $id:literal) => { None };
}

mod buildkit;
mod buildkit_scope;
pub mod config;
mod hadolint;
mod pragmas;
pub mod report;
mod shell;
mod stages;
mod stages_rules;

pub use buildkit_scope::BaseEnv;
pub use hadolint::labels::{LabelSchema, LabelType};

use crate::ast::{Dockerfile, Instruction};
use crate::context::Dockerignore;

/// How bad breaking a rule is, hadolint's scale (least first); BuildKit's checks are
/// warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Style only.
    Style,
    /// Worth knowing.
    Info,
    /// Likely a mistake.
    Warning,
    /// Breaks the build or the image.
    Error,
}

impl Severity {
    /// The name hadolint uses (`style`, `info`, `warning`, `error`).
    pub fn name(self) -> &'static str {
        match self {
            Severity::Style => "style",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// Reads a name [`Severity::name`] gives.
    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "style" => Some(Severity::Style),
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

/// Whose rule it is: the name and meaning come from there, so existing skip and ignore
/// lists carry over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// BuildKit's build checks: what `docker build` prints, and what `kiln build` prints.
    BuildKit,
    /// hadolint's DL rules.
    Hadolint,
    /// kiln's own rules.
    Kiln,
}

/// A rule: what it is called, how bad breaking it is, and what it checks.
pub struct Rule {
    /// Its name: `DL3008`, `JSONArgsRecommended`, `KL001`.
    pub id: &'static str,
    /// Whose rule it is.
    pub source: Source,
    /// Its default severity (a configuration may change it).
    pub severity: Severity,
    /// What it checks, in a sentence.
    pub description: &'static str,
    /// The rule's page upstream; kiln's own rules are documented in docs/lint-rules.md.
    pub url: Option<&'static str>,
}

/// One finding of one rule, at a place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule's id.
    pub rule: &'static str,
    /// The severity, after the configuration's overrides.
    pub severity: Severity,
    /// What is wrong here.
    pub message: String,
    /// The first line of the instruction (or directive) at fault, from 1.
    pub line: usize,
    /// The column, from 1.
    pub column: usize,
    /// The last line of the instruction.
    pub end_line: usize,
}

impl Finding {
    fn at(rule: &Rule, instr: &Instruction, message: String) -> Finding {
        Finding {
            rule: rule.id,
            severity: rule.severity,
            message,
            line: instr.span.start.line,
            column: instr.span.start.column,
            end_line: instr.span.end.line,
        }
    }
}

/// Every rule kiln knows.
pub fn rules() -> impl Iterator<Item = &'static Rule> {
    buildkit::RULES
        .iter()
        .chain(&buildkit_scope::RULES)
        .chain(hadolint::RULES)
        .chain(stages_rules::RULES)
        .chain([&pragmas::INVALID_IGNORE_PRAGMA])
}

/// The rule named `id`.
pub fn rule(id: &str) -> Option<&'static Rule> {
    rules().find(|r| r.id == id)
}

/// How `kiln lint` runs.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// Honour ignore pragmas (`# hadolint ignore=`, `# kiln ignore=`) and the skip list of
    /// BuildKit's `# check=` directive. CI may turn them off to see everything.
    pub pragmas: bool,
    /// The build context's `.dockerignore`, when the context is known (CopyIgnoredFile).
    pub dockerignore: Option<&'a Dockerignore>,
    /// The stage the build targets (`--target`); default: the last.
    pub target: Option<&'a str>,
    /// hadolint's `trustedRegistries` (`--trusted-registry`): DL3026 checks FROM images
    /// against them when there are any.
    pub trusted_registries: &'a [String],
    /// hadolint's `label-schema` and `strict-labels` (DL3049–DL3058).
    pub labels: &'a LabelSchema,
    /// The environment variable names of base images kiln has (UndefinedVar checks every
    /// variable of the stages built on them, as BuildKit does).
    pub base_env: Option<BaseEnv<'a>>,
}

static NO_LABELS: LabelSchema = LabelSchema::EMPTY;

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            pragmas: true,
            dockerignore: None,
            target: None,
            trusted_registries: &[],
            labels: &NO_LABELS,
            base_env: None,
        }
    }
}

/// The findings of every rule on `df`, in file order (`kiln lint`).
pub fn lint(df: &Dockerfile) -> Vec<Finding> {
    lint_with(df, Options::default())
}

/// The findings of every rule on `df` under `options`, in file order, with pragmas and
/// BuildKit's `# check=` skips applied when `options.pragmas`.
pub fn lint_with(df: &Dockerfile, options: Options) -> Vec<Finding> {
    let file = stages::File::new(df, options.target);
    let directive = check_directive(df);
    let mut findings = buildkit_checks(&file, options.dockerignore, &directive, options.base_env);
    findings.extend(hadolint::check(
        &file,
        options.trusted_registries,
        options.labels,
    ));
    findings.extend(stages_rules::check(&file, options.target));
    if options.pragmas {
        let pragmas = pragmas::Pragmas::read(df);
        findings.retain(|f| !pragmas.ignores(f));
        findings.extend(pragmas.findings);
    }
    finish(df, findings, options.pragmas, &directive)
}

/// The findings of BuildKit's build checks only: what a build prints, as `docker build`
/// does.
pub fn build_checks(
    df: &Dockerfile,
    dockerignore: &Dockerignore,
    base_env: BaseEnv,
) -> Vec<Finding> {
    let file = stages::File::new(df, None);
    let directive = check_directive(df);
    let findings = buildkit_checks(&file, Some(dockerignore), &directive, Some(base_env));
    finish(df, findings, true, &directive)
}

fn buildkit_checks(
    file: &stages::File,
    dockerignore: Option<&Dockerignore>,
    directive: &CheckDirective,
    base_env: Option<BaseEnv>,
) -> Vec<Finding> {
    let mut findings = buildkit::check(file);
    findings.extend(buildkit_scope::check(
        file,
        dockerignore,
        &directive.experimental,
        base_env,
    ));
    findings
}

/// Applies BuildKit's `# check=` directive (and its `# check=skip=` comments above
/// instructions) and sorts. `skip=Rule,Rule` leaves rules out (`skip=all`: every BuildKit
/// check), `error=true` makes the BuildKit checks' findings errors.
fn finish(
    df: &Dockerfile,
    mut findings: Vec<Finding>,
    pragmas: bool,
    directive: &CheckDirective,
) -> Vec<Finding> {
    let buildkit = |f: &Finding| rule(f.rule).is_some_and(|r| r.source == Source::BuildKit);
    if pragmas {
        let skips = pragmas::CheckSkips::read(df);
        findings.retain(|f| {
            !skips.skips(f)
                && !directive
                    .skip
                    .iter()
                    .any(|s| s == f.rule || (s == "all" && buildkit(f)))
        });
    }
    if directive.error {
        for f in findings.iter_mut().filter(|f| buildkit(f)) {
            f.severity = Severity::Error;
        }
    }
    findings.sort_by_key(|f| (f.line, f.column, f.rule));
    findings
}

/// BuildKit's `# check=skip=A,B;error=true;experimental=C` directive.
#[derive(Default)]
struct CheckDirective {
    skip: Vec<String>,
    error: bool,
    experimental: Vec<String>,
}

fn check_directive(df: &Dockerfile) -> CheckDirective {
    let mut out = CheckDirective::default();
    let list = |rules: &str| {
        rules
            .split(',')
            .map(|r| r.trim().to_string())
            .collect::<Vec<_>>()
    };
    for d in df
        .directives
        .iter()
        .filter(|d| d.name.eq_ignore_ascii_case("check"))
    {
        for part in d.value.split(';') {
            match part.trim().split_once('=') {
                Some(("skip", rules)) => out.skip.extend(list(rules)),
                Some(("error", v)) => out.error = v.trim().eq_ignore_ascii_case("true"),
                Some(("experimental", rules)) => out.experimental.extend(list(rules)),
                _ => {}
            }
        }
    }
    out
}

/// The keyword of an instruction as written (`FROM`, `from`, `From`).
fn keyword_as_written(instr: &Instruction) -> &str {
    instr
        .original
        .trim_start()
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap_or("")
}

/// The words of an instruction's arguments as written (continuations joined).
fn words_as_written(instr: &Instruction) -> Vec<String> {
    let joined = instr
        .original
        .lines()
        .map(|l| l.trim_end().trim_end_matches('\\'))
        .collect::<Vec<_>>()
        .join(" ");
    joined
        .split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect()
}
