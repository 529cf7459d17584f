//! The AST as JSON for tools (`kiln parse --json`); the schema is documented in the README.

use serde_json::{json, Value};

use crate::ast::{Command, CommandLine, Dockerfile, Healthcheck, Instruction, KeyValue, Position};

/// The whole file: directives, escape character, instructions and warnings.
pub fn dockerfile(df: &Dockerfile) -> Value {
    json!({
        "directives": df.directives.iter().map(|d| json!({
            "name": d.name, "value": d.value, "line": d.line,
        })).collect::<Vec<_>>(),
        "escape": df.escape.to_string(),
        "instructions": df.instructions.iter().map(instruction).collect::<Vec<_>>(),
        "warnings": df.warnings.iter().map(|w| json!({
            "line": w.span.start.line, "end_line": w.span.end.line, "message": w.message,
        })).collect::<Vec<_>>(),
    })
}

/// One instruction: `line`, `end_line`, `span`, `cmd`, `flags`, `args`, `json`,
/// `heredocs`, `original`, and for ONBUILD the `trigger`.
pub fn instruction(instr: &Instruction) -> Value {
    let (args, is_json) = args(&instr.command);
    let mut out = json!({
        "line": instr.span.start.line,
        "end_line": instr.span.end.line,
        "span": { "start": position(instr.span.start), "end": position(instr.span.end) },
        "cmd": instr.command.keyword(),
        "flags": instr.flags,
        "args": args,
        "json": is_json,
        "heredocs": instr.heredocs.iter().map(|h| json!({
            "name": h.name, "content": h.content, "expand": h.expand, "chomp": h.chomp, "fd": h.fd,
        })).collect::<Vec<_>>(),
        "original": instr.original,
    });
    if let Command::Onbuild(trigger) = &instr.command {
        out["trigger"] = instruction(trigger);
    }
    out
}

fn position(p: Position) -> Value {
    json!({ "line": p.line, "column": p.column })
}

/// The arguments after continuation joining, and whether they were in exec (JSON) form.
fn args(command: &Command) -> (Value, bool) {
    let strings = |v: &[String]| json!(v);
    let pairs = |kvs: &[KeyValue]| {
        json!(kvs
            .iter()
            .map(|kv| json!({"key": kv.key, "value": kv.value}))
            .collect::<Vec<_>>())
    };
    match command {
        Command::From(f) => {
            let mut v = vec![f.image.clone()];
            if let Some(stage) = &f.stage {
                v.extend(["AS".to_string(), stage.clone()]);
            }
            (json!(v), false)
        }
        Command::Run(r) => command_line(&r.command),
        Command::Cmd(c) | Command::Entrypoint(c) => command_line(c),
        Command::Shell(argv) => (strings(argv), true),
        Command::Label(kvs) | Command::Env(kvs) => (pairs(kvs), false),
        Command::Arg(decls) => (
            json!(decls
                .iter()
                .map(|d| json!({"key": d.name, "value": d.default}))
                .collect::<Vec<_>>()),
            false,
        ),
        Command::Maintainer(s)
        | Command::User(s)
        | Command::Workdir(s)
        | Command::StopSignal(s) => (json!([s]), false),
        Command::Expose(v) => (strings(v), false),
        Command::Volume(v) => (strings(&v.paths), v.json),
        Command::Copy(c) => copy_args(&c.spec),
        Command::Add(a) => copy_args(&a.spec),
        Command::Onbuild(trigger) => (json!([trigger.original]), false),
        Command::Healthcheck(Healthcheck::None) => (json!(["NONE"]), false),
        Command::Healthcheck(Healthcheck::Cmd { command, .. }) => {
            let (rest, is_json) = command_line(command);
            let mut v = vec![json!("CMD")];
            v.extend(rest.as_array().cloned().unwrap_or_default());
            (Value::Array(v), is_json)
        }
    }
}

fn command_line(c: &CommandLine) -> (Value, bool) {
    match c {
        CommandLine::Exec(argv) => (json!(argv), true),
        CommandLine::Shell(text) if text.is_empty() => (json!([]), false),
        CommandLine::Shell(text) => (json!([text]), false),
    }
}

fn copy_args(spec: &crate::ast::CopySpec) -> (Value, bool) {
    let mut v = spec.sources.clone();
    v.push(spec.dest.clone());
    (json!(v), spec.json)
}
