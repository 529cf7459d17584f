//! kiln's own rules about how stages connect: what no single-instruction linter sees.

use std::collections::BTreeSet;

use super::buildkit_scope::expands_variables;
use super::stages::File;
use super::{Finding, Rule, Severity, Source};
use crate::ast::{Command, Instruction};

rule_table! {
    Kiln;
    STAGE_CYCLE "StageCycle" Error "A stage must not need itself, through COPY --from or RUN --mount from";
    UNREACHABLE_STAGE "UnreachableStage" Info "A stage the target does not use is never built (without --target: only unnamed stages, as named ones may be targets)";
    COPY_FROM_MUTABLE_IMAGE "CopyFromMutableImage" Warning "COPY --from and RUN --mount from an image should name a tag other than latest, or a digest";
    GLOBAL_ARG_NOT_IN_STAGE "GlobalArgNotInStage" Warning "An ARG declared before the first FROM is empty inside a stage until the stage declares it again";
    ROOT_FINAL_STAGE "RootFinalStage" Warning "An image built from scratch with a command to run runs it as root unless it sets a USER";
    SECRET_IN_IMAGE "SecretInImage" Error "A secret in an ENV (or an ARG a RUN uses) of the exported image is kept in its configuration or history";
}

/// The stages an instruction takes files from: COPY --from and RUN --mount from.
fn sources(instr: &Instruction) -> Vec<&str> {
    match &instr.command {
        Command::Copy(c) => c.from.iter().map(String::as_str).collect(),
        Command::Run(r) => r.mounts.iter().filter_map(|m| m.from.as_deref()).collect(),
        _ => Vec::new(),
    }
}

/// `explicit_target`: the `--target` asked for, if any.
pub fn check(file: &File, explicit_target: Option<&str>) -> Vec<Finding> {
    let mut out = Vec::new();
    let index_of = |name: &str| -> Option<usize> {
        file.stages
            .iter()
            .position(|s| {
                s.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .or_else(|| {
                name.parse::<usize>()
                    .ok()
                    .filter(|&i| i < file.stages.len())
            })
    };
    // What each stage needs: its base and the stages it copies or mounts from.
    let needs: Vec<Vec<(usize, &Instruction)>> = file
        .stages
        .iter()
        .map(|stage| {
            let mut n: Vec<(usize, &Instruction)> =
                stage.base.map(|b| (b, stage.from)).into_iter().collect();
            for instr in &stage.instructions {
                for s in sources(instr) {
                    if let Some(i) = index_of(s) {
                        n.push((i, *instr));
                    }
                }
            }
            n
        })
        .collect();

    // Cycles: a stage that reaches itself.
    for (i, stage_needs) in needs.iter().enumerate() {
        for &(first, instr) in stage_needs {
            let mut seen = BTreeSet::new();
            let mut todo = vec![first];
            let mut cycle = false;
            while let Some(s) = todo.pop() {
                if s == i {
                    cycle = true;
                    break;
                }
                if seen.insert(s) {
                    todo.extend(needs[s].iter().map(|(n, _)| *n));
                }
            }
            if cycle {
                let name = file.stages[i].name.clone().unwrap_or_else(|| i.to_string());
                out.push(Finding::at(
                    &STAGE_CYCLE,
                    instr,
                    format!("stage {name} needs itself through this instruction: take the files from an earlier stage"),
                ));
            }
        }
    }

    // Stages the target does not reach. Without --target, only unnamed ones: a named
    // stage may be another target.
    if let Some(target) = file.target {
        let mut reached = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(s) = todo.pop() {
            if reached.insert(s) {
                todo.extend(needs[s].iter().map(|(n, _)| *n));
            }
        }
        for (i, stage) in file.stages.iter().enumerate() {
            if reached.contains(&i) {
                continue;
            }
            let message = match (&stage.name, explicit_target) {
                (Some(name), Some(t)) => format!("stage {name} is not needed to build target {t}"),
                (None, Some(t)) => format!("stage {i} is not needed to build target {t}"),
                (None, None) => format!("stage {i} has no name and the final stage does not use it: remove it, or name it to build it with --target"),
                (Some(_), None) => continue,
            };
            out.push(Finding::at(&UNREACHABLE_STAGE, stage.from, message));
        }
    }

    for (i, stage) in file.stages.iter().enumerate() {
        for instr in &stage.instructions {
            for s in sources(instr) {
                if index_of(s).is_some() || s.contains('$') {
                    continue;
                }
                let last = s.rsplit('/').next().unwrap_or(s);
                let tag = last.split_once(':').map(|(_, t)| t);
                if !s.contains('@') && matches!(tag, None | Some("latest")) {
                    out.push(Finding::at(
                        &COPY_FROM_MUTABLE_IMAGE,
                        instr,
                        format!("{s} may change under the build: name a release tag or a digest (name:1.2 or name@sha256:...)"),
                    ));
                }
            }
        }
        global_args_in_stage(file, i, &mut out);
    }

    let exported = file.exported();
    if let Some(last) = file.target {
        let lineage = file.lineage(last);
        let root = *lineage.last().unwrap();
        let has = |f: fn(&Command) -> bool| {
            lineage
                .iter()
                .any(|&s| file.stages[s].instructions.iter().any(|i| f(&i.command)))
        };
        let sets_user = has(|c| matches!(c, Command::User(_)));
        // An image without a command only carries files (an `--output` stage).
        let runs = has(|c| matches!(c, Command::Cmd(_) | Command::Entrypoint(_)));
        if file.stages[root].image.as_deref() == Some("scratch") && runs && !sets_user {
            out.push(Finding::at(
                &ROOT_FINAL_STAGE,
                file.stages[last].from,
                "the image runs as uid 0: add `USER 65534` (or another unprivileged id) to the final stage".into(),
            ));
        }
    }
    for &s in &exported {
        for instr in &file.stages[s].instructions {
            let names: Vec<&str> = match &instr.command {
                Command::Env(pairs) => pairs.iter().map(|p| p.key.as_str()).collect(),
                Command::Arg(decls) => decls
                    .iter()
                    .map(|d| d.name.as_str())
                    .filter(|n| used_by_a_run(file, s, n))
                    .collect(),
                _ => continue,
            };
            for name in names
                .into_iter()
                .filter(|n| super::buildkit::looks_secret(n))
            {
                out.push(Finding::at(
                    &SECRET_IN_IMAGE,
                    instr,
                    format!("{name} is kept in the image: pass it with RUN --mount=type=secret,id={},env={name} instead", name.to_lowercase()),
                ));
            }
        }
    }
    out
}

/// Whether a RUN of stage `s` names `$name` (an ARG is then recorded in its history).
fn used_by_a_run(file: &File, s: usize, name: &str) -> bool {
    file.stages[s]
        .instructions
        .iter()
        .any(|i| matches!(i.command, Command::Run(_)) && mentions(&i.original, name))
}

/// `$NAME` or `${NAME...}` in `text`.
fn mentions(text: &str, name: &str) -> bool {
    text.match_indices('$').any(|(at, _)| {
        let rest = &text[at + 1..];
        let rest = rest.strip_prefix('{').unwrap_or(rest);
        rest.starts_with(name)
            && !rest[name.len()..].starts_with(|c: char| c == '_' || c.is_ascii_alphanumeric())
    })
}

/// A global ARG the shell of a stage that does not declare it again reads (RUN, CMD, ...;
/// UndefinedVar covers the instructions kiln expands), in a stage whose every variable is
/// known (built from scratch): there it is certainly empty. On other bases the image may
/// set a variable of that name, and the rule stays silent.
fn global_args_in_stage(file: &File, i: usize, out: &mut Vec<Finding>) {
    let lineage = file.lineage(i);
    let root = *lineage.last().unwrap();
    if file.stages[root].image.as_deref() != Some("scratch") {
        return;
    }
    let declared = |name: &str| {
        lineage.iter().any(|&s| {
            file.stages[s]
                .instructions
                .iter()
                .any(|instr| match &instr.command {
                    Command::Arg(d) => d.iter().any(|d| d.name == name),
                    Command::Env(p) => p.iter().any(|p| p.key == name),
                    _ => false,
                })
        })
    };
    for instr in &file.stages[i].instructions {
        if expands_variables(instr) {
            continue;
        }
        for name in file.global_args.keys() {
            if mentions(&instr.original, name) && !declared(name) {
                out.push(Finding::at(
                    &GLOBAL_ARG_NOT_IN_STAGE,
                    instr,
                    format!("{name} is declared before the first FROM only, so it is empty here: add `ARG {name}` to this stage"),
                ));
            }
        }
    }
}
