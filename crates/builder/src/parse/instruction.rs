//! One joined logical line → a typed [`Command`], with BuildKit's per-instruction rules.

use pest::iterators::Pair;
use pest::Parser;

use super::flags::Flags;
use crate::ast::{
    Add, ArgDecl, Command, CommandLine, Copy, CopySpec, From, Healthcheck, Instruction, KeyValue,
    Run, Span, Volume,
};
use crate::grammar::{DockerfileGrammar, Rule};

/// A refusal: the byte offset in the logical line, and the message.
pub(super) type Fail = (usize, String);

/// A heredoc as its marker declares it; the body is read from the lines that follow.
pub(super) struct HeredocMarker {
    pub name: String,
    pub expand: bool,
    pub chomp: bool,
    pub fd: Option<u32>,
}

pub(super) struct Parsed {
    pub command: Command,
    pub flags: Vec<String>,
    pub heredocs: Vec<HeredocMarker>,
}

const KEYWORDS: [&str; 18] = [
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

pub(super) fn parse_logical(text: &str, escape: char) -> Result<Parsed, Fail> {
    let rule = if escape == '`' {
        Rule::instruction_backtick
    } else {
        Rule::instruction_backslash
    };
    let pair = DockerfileGrammar::parse(rule, text)
        .map_err(|e| {
            let at = match e.location {
                pest::error::InputLocation::Pos(p) => p,
                pest::error::InputLocation::Span((p, _)) => p,
            };
            (
                at,
                format!("cannot parse this instruction ({})", e.variant.message()),
            )
        })?
        .next()
        .ok_or((0, "empty instruction".to_string()))?;
    convert(pair)
}

fn convert(pair: Pair<'_, Rule>) -> Result<Parsed, Fail> {
    let rule = pair.as_rule();
    let start = pair.as_span().start();
    let keyword_text = pair
        .as_str()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let mut inner = pair.into_inner();
    if rule == Rule::unknown {
        return Err((start, unknown_instruction(&keyword_text)));
    }
    let keyword = keyword_text.to_ascii_lowercase();
    let flags = Flags::read(
        inner
            .next()
            .expect("every instruction rule starts with flags"),
        &keyword,
    )?;
    let args = inner.next();
    let mut heredocs = Vec::new();
    let upper = keyword.to_uppercase();
    let command = match rule {
        Rule::from => from(args, &flags, start)?,
        Rule::run => {
            let command = command_line(args, &mut heredocs)?;
            Command::Run(Run {
                command,
                mounts: flags.mounts()?,
                network: flags.network()?,
                security: flags.security()?,
            })
        }
        Rule::cmd => Command::Cmd(command_line(args, &mut heredocs)?),
        Rule::entrypoint => Command::Entrypoint(command_line(args, &mut heredocs)?),
        Rule::shell => {
            match command_line(args, &mut heredocs)? {
                CommandLine::Exec(argv) if !argv.is_empty() => Command::Shell(argv),
                CommandLine::Exec(_) => {
                    return Err((start, "SHELL requires at least one argument".into()))
                }
                CommandLine::Shell(_) => return Err((
                    start,
                    "SHELL requires the arguments to be in JSON form: SHELL [\"/bin/sh\", \"-c\"]"
                        .into(),
                )),
            }
        }
        Rule::label => Command::Label(name_values(args, &upper, start)?),
        Rule::env => Command::Env(name_values(args, &upper, start)?),
        Rule::arg => Command::Arg(arg_decls(args, start)?),
        Rule::maintainer | Rule::user | Rule::workdir | Rule::stopsignal => {
            let value = args.map(|a| a.as_str().to_string()).unwrap_or_default();
            if value.is_empty() {
                return Err((start, format!("{upper} requires exactly one argument")));
            }
            match rule {
                Rule::maintainer => Command::Maintainer(value),
                Rule::user => Command::User(value),
                Rule::workdir => Command::Workdir(value),
                _ => Command::StopSignal(value),
            }
        }
        Rule::expose => {
            let ports = list(args, &mut heredocs)?;
            if ports.is_empty() {
                return Err((start, "EXPOSE requires at least one argument".into()));
            }
            Command::Expose(ports)
        }
        Rule::volume => {
            let json = args
                .as_ref()
                .is_some_and(|a| a.as_rule() == Rule::exec_form);
            let paths = list(args, &mut heredocs)?;
            if paths.is_empty() {
                return Err((start, "VOLUME requires at least one argument".into()));
            }
            if paths.iter().any(|p| p.trim().is_empty()) {
                return Err((start, "VOLUME specified can not be an empty string".into()));
            }
            Command::Volume(Volume { paths, json })
        }
        Rule::copy | Rule::add => {
            let json = args
                .as_ref()
                .is_some_and(|a| a.as_rule() == Rule::exec_form);
            let mut sources = list(args, &mut heredocs)?;
            if sources.len() < 2 {
                return Err((
                    start,
                    format!("{upper} requires at least two arguments, but only one was provided. Destination could not be determined."),
                ));
            }
            let dest = sources.pop().unwrap_or_default();
            let spec = CopySpec {
                sources,
                dest,
                chown: flags.text("chown"),
                chmod: flags.text("chmod"),
                link: flags.bool("link"),
                exclude: flags.list("exclude"),
                json,
            };
            if rule == Rule::copy {
                Command::Copy(Copy {
                    spec,
                    from: flags.text("from"),
                    parents: flags.bool("parents"),
                })
            } else {
                Command::Add(Add {
                    spec,
                    checksum: flags.text("checksum"),
                    keep_git_dir: flags.bool("keep-git-dir"),
                })
            }
        }
        Rule::healthcheck => healthcheck(args, &flags, start, &mut heredocs)?,
        Rule::onbuild => {
            let Some(trigger) = args else {
                return Err((start, "ONBUILD requires at least one argument".into()));
            };
            let trigger_start = trigger.as_span().start();
            if trigger.as_rule() == Rule::nested_onbuild {
                return Err((
                    trigger_start,
                    "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into(),
                ));
            }
            let text = trigger.as_str().to_string();
            let parsed = convert(trigger)?;
            match parsed.command {
                Command::From(_) | Command::Maintainer(_) => {
                    let kw = parsed.command.keyword().to_uppercase();
                    return Err((
                        trigger_start,
                        format!("{kw} isn't allowed as an ONBUILD trigger"),
                    ));
                }
                _ => {}
            }
            heredocs = parsed.heredocs;
            let zero = crate::ast::Position { line: 0, column: 0 };
            Command::Onbuild(Box::new(Instruction {
                // The caller places the trigger at its ONBUILD's span.
                span: Span {
                    start: zero,
                    end: zero,
                },
                original: text,
                flags: parsed.flags,
                heredocs: Vec::new(),
                command: parsed.command,
            }))
        }
        _ => unreachable!("grammar rule {rule:?} is not an instruction"),
    };
    Ok(Parsed {
        command,
        flags: flags.words(),
        heredocs,
    })
}

fn from(args: Option<Pair<'_, Rule>>, flags: &Flags, start: usize) -> Result<Command, Fail> {
    let args = args.expect("from has from_args");
    let mut image = None;
    let mut stage = None;
    for part in args.into_inner() {
        match part.as_rule() {
            Rule::from_image => image = Some(part.as_str().to_string()),
            Rule::stage_name => {
                let name = part.as_str().to_ascii_lowercase();
                if !valid_stage_name(&name) {
                    return Err((
                        part.as_span().start(),
                        format!("invalid name for build stage: {name:?}, name can't start with a number or contain symbols"),
                    ));
                }
                stage = Some(name);
            }
            Rule::bad_args => return Err((
                start,
                "FROM requires either one or three arguments: FROM [--platform=P] IMAGE [AS NAME]"
                    .into(),
            )),
            _ => {}
        }
    }
    Ok(Command::From(From {
        image: image.unwrap_or_default(),
        stage,
        platform: flags.text("platform"),
    }))
}

/// BuildKit's `^[a-z][a-z0-9-_.]*$`, applied after lower-casing.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

fn command_line(
    args: Option<Pair<'_, Rule>>,
    heredocs: &mut Vec<HeredocMarker>,
) -> Result<CommandLine, Fail> {
    let Some(args) = args else {
        return Ok(CommandLine::Shell(String::new()));
    };
    match args.as_rule() {
        Rule::exec_form => Ok(CommandLine::Exec(json_strings(args)?)),
        Rule::heredoc_shell_form => {
            let text = args.as_str().to_string();
            heredoc_markers(args, heredocs);
            Ok(CommandLine::Shell(text))
        }
        _ => {
            refuse_json_of_other_values(&args)?;
            Ok(CommandLine::Shell(args.as_str().to_string()))
        }
    }
}

/// A JSON array that is not all strings is an error, not a shell command (BuildKit).
fn refuse_json_of_other_values(args: &Pair<'_, Rule>) -> Result<(), Fail> {
    let text = args.as_str();
    if text.starts_with('[') && serde_json::from_str::<Vec<serde_json::Value>>(text).is_ok() {
        return Err((
            args.as_span().start(),
            "when using JSON array syntax, arrays must be comprised of strings only".into(),
        ));
    }
    Ok(())
}

/// Exec form or whitespace-separated fields (COPY, ADD, VOLUME, EXPOSE).
fn list(
    args: Option<Pair<'_, Rule>>,
    heredocs: &mut Vec<HeredocMarker>,
) -> Result<Vec<String>, Fail> {
    let Some(args) = args else {
        return Ok(Vec::new());
    };
    if args.as_rule() == Rule::exec_form {
        return json_strings(args);
    }
    refuse_json_of_other_values(&args)?;
    let mut out = Vec::new();
    for part in args.into_inner() {
        if part.as_rule() == Rule::heredoc {
            heredocs.push(heredoc_marker(part.clone()));
        }
        out.push(part.as_str().to_string());
    }
    Ok(out)
}

fn json_strings(exec_form: Pair<'_, Rule>) -> Result<Vec<String>, Fail> {
    let array = exec_form
        .into_inner()
        .next()
        .expect("exec_form holds json_array");
    array
        .into_inner()
        .map(|value| {
            serde_json::from_str::<String>(value.as_str())
                .map_err(|e| (value.as_span().start(), format!("invalid JSON string: {e}")))
        })
        .collect()
}

fn heredoc_markers(args: Pair<'_, Rule>, heredocs: &mut Vec<HeredocMarker>) {
    heredocs.extend(
        args.into_inner()
            .filter(|p| p.as_rule() == Rule::heredoc)
            .map(heredoc_marker),
    );
}

fn heredoc_marker(pair: Pair<'_, Rule>) -> HeredocMarker {
    let mut marker = HeredocMarker {
        name: String::new(),
        expand: true,
        chomp: false,
        fd: None,
    };
    for part in pair.into_inner() {
        match part.as_rule() {
            Rule::heredoc_fd => marker.fd = part.as_str().parse().ok(),
            Rule::heredoc_chomp => marker.chomp = true,
            _ => {
                let (name, quoted) = unquote_shell_word(part.as_str());
                marker.name = name;
                marker.expand = !quoted;
            }
        }
    }
    marker
}

/// Removes shell quoting from a word; reports whether any part was quoted (which makes a
/// heredoc literal, as in BuildKit).
fn unquote_shell_word(raw: &str) -> (String, bool) {
    let mut out = String::with_capacity(raw.len());
    let mut quoted = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    out.push(c);
                }
            }
            '"' => {
                quoted = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' if matches!(chars.peek(), Some('"' | '\\' | '$')) => {
                            out.extend(chars.next())
                        }
                        c => out.push(c),
                    }
                }
            }
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    (out, quoted)
}

fn name_values(
    args: Option<Pair<'_, Rule>>,
    upper: &str,
    start: usize,
) -> Result<Vec<KeyValue>, Fail> {
    let args = args.expect("name_values");
    let Some(form) = args.into_inner().next() else {
        return Err((start, format!("{upper} requires at least one argument")));
    };
    let mut out = Vec::new();
    match form.as_rule() {
        Rule::pairs => {
            for part in form.into_inner().filter(|p| p.as_rule() != Rule::EOI) {
                if part.as_rule() == Rule::word_without_eq {
                    return Err((
                        part.as_span().start(),
                        format!(
                            "Syntax error - can't find = in {:?}. Must be of the form: name=value",
                            part.as_str()
                        ),
                    ));
                }
                let at = part.as_span().start();
                let mut kv = part.into_inner();
                let key = kv
                    .next()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default();
                let value = kv
                    .next()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default();
                if key.is_empty() {
                    return Err((at, format!("{upper} names can not be blank")));
                }
                out.push(KeyValue { key, value });
            }
        }
        _ => {
            let mut kv = form.into_inner().filter(|p| p.as_rule() != Rule::EOI);
            let key = kv
                .next()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            let Some(value) = kv.next() else {
                return Err((start, format!("{upper} must have two arguments: {upper} KEY=VALUE (or the legacy {upper} KEY VALUE)")));
            };
            out.push(KeyValue {
                key,
                value: value.as_str().to_string(),
            });
        }
    }
    Ok(out)
}

fn arg_decls(args: Option<Pair<'_, Rule>>, start: usize) -> Result<Vec<ArgDecl>, Fail> {
    let decls: Vec<ArgDecl> = args
        .into_iter()
        .flat_map(|a| a.into_inner())
        .map(|decl| {
            let mut parts = decl.into_inner();
            let name = parts
                .next()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            // `ARG NAME=` declares an empty default, not a missing one.
            let default = parts.next().map(|p| p.as_str().to_string());
            ArgDecl { name, default }
        })
        .collect();
    if decls.is_empty() {
        return Err((start, "ARG requires at least one argument".into()));
    }
    Ok(decls)
}

fn healthcheck(
    args: Option<Pair<'_, Rule>>,
    flags: &Flags,
    start: usize,
    heredocs: &mut Vec<HeredocMarker>,
) -> Result<Command, Fail> {
    let form = args
        .and_then(|a| a.into_inner().next())
        .expect("health_args");
    match form.as_rule() {
        Rule::health_none => Ok(Command::Healthcheck(Healthcheck::None)),
        Rule::health_cmd => {
            let command = command_line(form.into_inner().next(), heredocs)?;
            let empty = match &command {
                CommandLine::Exec(argv) => argv.is_empty(),
                CommandLine::Shell(s) => s.is_empty(),
            };
            if empty {
                return Err((start, "Missing command after HEALTHCHECK CMD".into()));
            }
            Ok(Command::Healthcheck(Healthcheck::Cmd {
                command,
                interval: flags.duration("interval")?,
                timeout: flags.duration("timeout")?,
                start_period: flags.duration("start-period")?,
                start_interval: flags.duration("start-interval")?,
                retries: flags.retries()?,
            }))
        }
        _ => {
            let text = form.as_str();
            let first = text.split_whitespace().next().unwrap_or_default();
            let message = if text.is_empty() {
                "HEALTHCHECK requires at least one argument: HEALTHCHECK [flags] CMD command, or HEALTHCHECK NONE".into()
            } else if first.eq_ignore_ascii_case("none") {
                "HEALTHCHECK NONE takes no arguments".into()
            } else {
                format!("Unknown type {first:?} in HEALTHCHECK (try CMD)")
            };
            Err((form.as_span().start(), message))
        }
    }
}

/// "unknown instruction: FOO", with the closest keyword when one is near.
fn unknown_instruction(word: &str) -> String {
    match crate::suggest::closest(word, KEYWORDS) {
        Some(k) => format!("unknown instruction: {word} (did you mean {k}?)"),
        None => format!("unknown instruction: {word}"),
    }
}
