//! The file as lint rules see it: global ARGs, then stages, each with its FROM, its
//! instructions, the stage it is built on, and its RUN commands read as shell with the
//! variables known at that point.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};

use super::shell::{self, Script};
use crate::ast::{Command, CommandLine, Dockerfile, Instruction, MountKind};
use crate::expand::Variables;

pub struct Stage<'a> {
    pub from: &'a Instruction,
    /// The name as written (BuildKit keys stages by the lower-cased name).
    pub name: Option<String>,
    pub instructions: Vec<&'a Instruction>,
    /// The earlier stage this one is built FROM, if any.
    pub base: Option<usize>,
    /// The base image as written, expanded with the global ARGs; None when a variable
    /// in it has no known value.
    pub image: Option<String>,
}

/// A RUN as shell: the commands it runs, with what is known around it.
pub struct Run<'a> {
    pub stage: usize,
    pub instr: &'a Instruction,
    pub script: Script,
    /// Targets of its cache mounts.
    pub caches: Vec<String>,
    /// The stage's SHELL sets `-o pipefail`.
    pub shell_pipefail: bool,
}

pub struct File<'a> {
    pub df: &'a Dockerfile,
    /// ARGs before the first FROM: name → default.
    pub global_args: BTreeMap<String, Option<String>>,
    /// The global ARGs that have a default, with it expanded.
    pub global_values: BTreeMap<String, String>,
    pub stages: Vec<Stage<'a>>,
    /// Every RUN whose shell is a POSIX one, read when a rule first asks (`runs`): the
    /// build checks `kiln build` runs never do.
    runs: std::cell::OnceCell<Vec<Run<'a>>>,
    /// The stage the build makes an image of: `--target`, else the last one.
    pub target: Option<usize>,
}

/// Records every variable an expansion asks for, answering from `known`.
pub struct Recorder<'a> {
    pub known: &'a BTreeMap<String, String>,
    pub asked: RefCell<Vec<String>>,
}

impl<'a> Recorder<'a> {
    pub fn new(known: &'a BTreeMap<String, String>) -> Recorder<'a> {
        Recorder {
            known,
            asked: RefCell::new(Vec::new()),
        }
    }

    /// Whether every variable asked for so far had a value.
    pub fn all_known(&self) -> bool {
        self.asked
            .borrow()
            .iter()
            .all(|n| self.known.contains_key(n))
    }
}

impl Variables for Recorder<'_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.asked.borrow_mut().push(name.to_string());
        self.known.get(name).map(String::as_str)
    }
}

/// What a stage passes on to the stages built FROM it.
#[derive(Clone, Default)]
struct Environment {
    vars: BTreeMap<String, String>,
    posix: bool,
    pipefail: bool,
}

impl<'a> File<'a> {
    /// The file's stages; `target` names the stage built (default: the last).
    pub fn new(df: &'a Dockerfile, target: Option<&str>) -> File<'a> {
        let mut global_args = BTreeMap::new();
        let globals = global_values(df);
        // The build's own split into stages: lint sees the stages a build would.
        let plan = crate::build::Plan::new(df);
        for instr in &plan.global_args {
            if let Command::Arg(decls) = &instr.command {
                for d in decls {
                    global_args.insert(d.name.clone(), d.default.clone());
                }
            }
        }
        let mut stages: Vec<Stage<'a>> = Vec::new();
        for planned in plan.stages {
            let Command::From(from) = &planned.from.command else {
                unreachable!("a stage starts with FROM")
            };
            let words = super::words_as_written(planned.from);
            let name = match words.iter().position(|w| w.eq_ignore_ascii_case("as")) {
                Some(i) => words.get(i + 1).cloned(),
                None => None,
            };
            let rec = Recorder::new(&globals);
            let image = crate::expand::word(&from.image, df.escape, &rec)
                .ok()
                .filter(|_| rec.all_known());
            let base = image.as_deref().and_then(|i| {
                stages.iter().position(|s| {
                    s.name.as_deref().map(str::to_lowercase) == Some(i.to_lowercase())
                })
            });
            stages.push(Stage {
                from: planned.from,
                name,
                instructions: planned.instructions,
                base,
                image,
            });
        }
        File {
            df,
            global_args,
            global_values: globals,
            runs: std::cell::OnceCell::new(),
            target: match target {
                Some(t) => stages
                    .iter()
                    .position(|s| s.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(t))),
                None => stages.len().checked_sub(1),
            },
            stages,
        }
    }

    /// Every RUN whose shell is a POSIX one (not PowerShell or cmd), in file order.
    pub fn runs(&self) -> &[Run<'a>] {
        self.runs.get_or_init(|| self.read_runs())
    }

    /// The stages whose files end up in the image: the target and the stages it is built
    /// on.
    pub fn exported(&self) -> HashSet<usize> {
        let mut out = HashSet::new();
        let mut at = self.target;
        while let Some(i) = at {
            if !out.insert(i) {
                break;
            }
            at = self.stages[i].base;
        }
        out
    }

    /// Stage `i` and the stages it is built on, nearest first.
    pub fn lineage(&self, i: usize) -> Vec<usize> {
        let mut out = vec![i];
        while let Some(b) = self.stages[*out.last().unwrap()].base {
            if out.contains(&b) {
                break;
            }
            out.push(b);
        }
        out
    }

    fn read_runs(&self) -> Vec<Run<'a>> {
        let globals = &self.global_values;
        let mut envs: Vec<Environment> = Vec::new();
        let mut runs = Vec::new();
        for (index, stage) in self.stages.iter().enumerate() {
            let mut env = match stage.base {
                Some(b) => envs[b].clone(),
                None => Environment {
                    posix: !stage.image.as_deref().is_some_and(is_windows_image),
                    ..Environment::default()
                },
            };
            for instr in &stage.instructions {
                match &instr.command {
                    Command::Arg(decls) => {
                        for d in decls {
                            let value = match &d.default {
                                Some(v) => self.expand(v, &env.vars),
                                None => globals.get(&d.name).cloned(),
                            };
                            set(&mut env.vars, &d.name, value);
                        }
                    }
                    Command::Env(pairs) => {
                        for p in pairs {
                            let value = self.expand(&p.value, &env.vars);
                            set(&mut env.vars, &p.key, value);
                        }
                    }
                    Command::Shell(words) => {
                        let exe = words.first().map(|w| basename(w)).unwrap_or_default();
                        env.posix = is_posix_shell(exe);
                        env.pipefail = words.windows(2).any(|w| {
                            w[0].starts_with('-') && w[0].contains('o') && w[1] == "pipefail"
                        });
                    }
                    Command::Run(run) if env.posix => {
                        let Some(text) = shell_text(&run.command, instr) else {
                            continue;
                        };
                        let vars = &env.vars;
                        let script = shell::read(&text, &|n| vars.get(n).cloned());
                        let caches = run
                            .mounts
                            .iter()
                            .filter(|m| m.kind == MountKind::Cache)
                            .filter_map(|m| m.target.clone())
                            .collect();
                        runs.push(Run {
                            stage: index,
                            instr,
                            script,
                            caches,
                            shell_pipefail: env.pipefail,
                        });
                    }
                    _ => {}
                }
            }
            envs.push(env);
        }
        runs
    }

    /// An ARG default or ENV value expanded; None when it uses an unknown variable.
    fn expand(&self, text: &str, vars: &BTreeMap<String, String>) -> Option<String> {
        let rec = Recorder::new(vars);
        let value = crate::expand::word(text, self.df.escape, &rec).ok()?;
        rec.all_known().then_some(value)
    }
}

/// The defaults of the ARGs before the first FROM, quotes removed and variables expanded,
/// each seeing the ones declared before it.
fn global_values(df: &Dockerfile) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for instr in df
        .instructions
        .iter()
        .take_while(|i| !matches!(i.command, Command::From(_)))
    {
        if let Command::Arg(decls) = &instr.command {
            for d in decls {
                if let Some(default) = &d.default {
                    let value = crate::expand::word(default, df.escape, &out)
                        .unwrap_or_else(|_| default.clone());
                    out.insert(d.name.clone(), value);
                }
            }
        }
    }
    out
}

fn set(vars: &mut BTreeMap<String, String>, name: &str, value: Option<String>) {
    match value {
        Some(v) => vars.insert(name.to_string(), v),
        None => vars.remove(name),
    };
}

fn basename(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

fn is_posix_shell(exe: &str) -> bool {
    matches!(
        exe,
        "sh" | "bash" | "ash" | "dash" | "zsh" | "ksh" | "mksh" | "busybox"
    )
}

/// Windows base images run RUN with cmd, not a POSIX shell.
fn is_windows_image(image: &str) -> bool {
    let image = image.to_lowercase();
    image.contains("windows/") || image.contains("nanoserver") || image.contains("servercore")
}

/// The shell text a RUN runs: its command line, or for `RUN <<EOF` (and `RUN bash <<EOF`)
/// the heredoc bodies, which the shell runs as the script. None for a script in another
/// language (`#!/usr/bin/env python3`).
fn shell_text(command: &CommandLine, instr: &Instruction) -> Option<String> {
    match command {
        CommandLine::Exec(words) => {
            let exe = words.first().map(|w| basename(w)).unwrap_or_default();
            if is_posix_shell(exe) && words.get(1).map(String::as_str) == Some("-c") {
                return words.get(2).cloned();
            }
            Some(
                words
                    .iter()
                    .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        }
        CommandLine::Shell(text) => {
            if instr.heredocs.is_empty() {
                return Some(text.clone());
            }
            let mut words = text
                .split_whitespace()
                .filter(|w| !crate::ast::is_heredoc_word(w));
            let body_is_script = match words.next() {
                None => true,
                Some(first) => is_posix_shell(basename(first)) && words.next().is_none(),
            };
            if !body_is_script {
                return Some(text.clone());
            }
            let bodies: Vec<&str> = instr
                .heredocs
                .iter()
                .map(|h| h.content.as_str())
                .filter(|b| match b.strip_prefix("#!") {
                    Some(line) => {
                        let line = line.lines().next().unwrap_or("");
                        line.split_whitespace().any(|w| is_posix_shell(basename(w)))
                    }
                    None => true,
                })
                .collect();
            (!bodies.is_empty()).then(|| bodies.join("\n"))
        }
    }
}
