//! BuildKit's build checks that need more than one instruction: the variables in scope
//! (UndefinedVar), the build context's `.dockerignore` (CopyIgnoredFile) and the comments
//! above a definition (InvalidDefinitionDescription, experimental in BuildKit and so only
//! on when `# check=experimental=...` asks for it).

use std::collections::BTreeMap;

use super::buildkit::PREDEFINED_ARGS;
use super::stages::{File, Recorder};
use super::{Finding, Rule, Severity, Source};
use crate::ast::{Command, Instruction};
use crate::context::Dockerignore;

buildkit_rule!(
    UNDEFINED_VAR,
    "UndefinedVar",
    "Variables should be defined before their use",
    "undefined-var"
);
buildkit_rule!(
    COPY_IGNORED_FILE,
    "CopyIgnoredFile",
    "Attempting to Copy file that is excluded by .dockerignore",
    "copy-ignored-file"
);
buildkit_rule!(
    INVALID_DEFINITION_DESCRIPTION,
    "InvalidDefinitionDescription",
    "Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.",
    "invalid-definition-description"
);

pub static RULES: [Rule; 3] = [
    UNDEFINED_VAR,
    COPY_IGNORED_FILE,
    INVALID_DEFINITION_DESCRIPTION,
];

/// The names of a base image's environment variables, when known (`FROM` as written,
/// expanded with the global ARGs).
pub type BaseEnv<'a> = &'a dyn Fn(&str) -> Option<Vec<String>>;

pub fn check(
    file: &File,
    ignore: Option<&Dockerignore>,
    experimental: &[String],
    base_env: Option<BaseEnv>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    undefined_vars(file, base_env, &mut out);
    if let Some(ignore) = ignore {
        copied_but_ignored(file, ignore, &mut out);
    }
    if experimental
        .iter()
        .any(|e| e == "all" || e == INVALID_DEFINITION_DESCRIPTION.id)
    {
        descriptions(file, &mut out);
    }
    out
}

/// Whether kiln expands the instruction's variables itself (the others are the shell's:
/// RUN, CMD, ENTRYPOINT, HEALTHCHECK, SHELL and ONBUILD's trigger).
pub(super) fn expands_variables(instr: &Instruction) -> bool {
    !matches!(
        instr.command,
        Command::Run(_)
            | Command::Cmd(_)
            | Command::Entrypoint(_)
            | Command::Healthcheck(_)
            | Command::Shell(_)
            | Command::Onbuild(_)
    )
}

/// UndefinedVar: a variable an instruction expands that no ARG or ENV before it defines,
/// nor the base image (when `base_env` knows it, as BuildKit knows it) — a global ARG
/// too, unless the stage declares it again. Where the base image's variables are unknown
/// the rule speaks only where it is sure: a global ARG, or a near miss of a defined name
/// (a typo).
fn undefined_vars(file: &File, base_env: Option<BaseEnv>, out: &mut Vec<Finding>) {
    for (i, stage) in file.stages.iter().enumerate() {
        let lineage = file.lineage(i);
        let image = file.stages[*lineage.last().unwrap()].image.as_deref();
        let scratch = image == Some("scratch");
        let from_image = image
            .filter(|_| !scratch)
            .and_then(|image| base_env.and_then(|env| env(image)));
        let certain = scratch || from_image.is_some();
        // Defined by the base image and in the stages this one is built on.
        let mut defined: Vec<String> = from_image.unwrap_or_default();
        defined.extend(
            lineage[1..]
                .iter()
                .flat_map(|&s| file.stages[s].instructions.iter().flat_map(|i| defines(i))),
        );
        for instr in &stage.instructions {
            if expands_variables(instr) {
                let empty = BTreeMap::new();
                let rec = Recorder::new(&empty);
                let _ = crate::expand::instruction(instr, file.df.escape, &rec);
                let own = defines(instr);
                let asked: std::collections::BTreeSet<String> =
                    rec.asked.into_inner().into_iter().collect();
                for name in asked {
                    if defined.contains(&name)
                        || own.contains(&name)
                        || PREDEFINED_ARGS.contains(&name.as_str())
                    {
                        continue;
                    }
                    let global = file.global_args.contains_key(&name);
                    let hint = match crate::suggest::closest(&name, defined.iter().map(String::as_str)) {
                        Some(h) => Some(format!(" (did you mean ${h}?)")),
                        None if global => Some(format!(
                            " (an ARG before the first FROM is not in a stage's scope: add `ARG {name}` to this stage)"
                        )),
                        None => None,
                    };
                    if certain || hint.is_some() {
                        out.push(Finding::at(
                            &UNDEFINED_VAR,
                            instr,
                            format!(
                                "Usage of undefined variable '${name}'{}",
                                hint.unwrap_or_default()
                            ),
                        ));
                    }
                }
            }
            defined.extend(defines(instr));
        }
    }
}

/// The names an ARG or ENV defines.
fn defines(instr: &Instruction) -> Vec<String> {
    match &instr.command {
        Command::Arg(d) => d.iter().map(|d| d.name.clone()).collect(),
        Command::Env(p) => p.iter().map(|p| p.key.clone()).collect(),
        _ => Vec::new(),
    }
}

/// CopyIgnoredFile: a COPY or ADD source from the context that `.dockerignore` leaves out.
fn copied_but_ignored(file: &File, ignore: &Dockerignore, out: &mut Vec<Finding>) {
    for instr in &file.df.instructions {
        let (spec, from) = match &instr.command {
            Command::Copy(c) => (&c.spec, c.from.is_some()),
            Command::Add(a) => (&a.spec, false),
            _ => continue,
        };
        if from {
            continue;
        }
        for source in &spec.sources {
            if source.contains(['$', '*', '?', '['])
                || source.contains("://")
                || crate::ast::is_heredoc_word(source)
            {
                continue;
            }
            let path = source
                .trim_start_matches("./")
                .trim_start_matches('/')
                .trim_end_matches('/');
            if !path.is_empty() && path != "." && ignore.excludes(path) {
                let kw = instr.command.keyword().to_uppercase();
                out.push(Finding::at(
                    &COPY_IGNORED_FILE,
                    instr,
                    format!(
                        "Attempting to {kw} file \"{source}\" that is excluded by .dockerignore"
                    ),
                ));
            }
        }
    }
}

/// InvalidDefinitionDescription: the comment right above a named FROM or an ARG starts
/// with the name it describes.
fn descriptions(file: &File, out: &mut Vec<Finding>) {
    let comments = &file.df.comments;
    for instr in &file.df.instructions {
        let (names, kind) = match &instr.command {
            Command::From(f) => match &f.stage {
                Some(s) => (vec![s.clone()], "Stage"),
                None => continue,
            },
            Command::Arg(d) => (d.iter().map(|d| d.name.clone()).collect(), "ARG"),
            _ => continue,
        };
        // The block of comment lines that ends on the line above.
        let mut first = None;
        let mut line = instr.span.start.line;
        while let Some(c) = comments.iter().find(|c| c.line + 1 == line) {
            first = Some(c);
            line = c.line;
        }
        let Some(first) = first else {
            continue;
        };
        let word = first.text.split_whitespace().next().unwrap_or("");
        if !names.iter().any(|n| n == word) {
            out.push(Finding::at(
                &INVALID_DEFINITION_DESCRIPTION,
                instr,
                format!(
                    "Comment for {kind} \"{}\" should follow the format: `# {} <description>`",
                    names[0], names[0]
                ),
            ));
        }
    }
}
