//! `kiln parse [-f PATH|-] [--json]`

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use kiln_builder::ast::{Command, CommandLine, Dockerfile, Instruction};

#[derive(clap::Args)]
pub struct Args {
    /// The Dockerfile to read; `-` reads standard input.
    #[arg(short = 'f', long = "file", default_value = "Dockerfile")]
    file: String,
    /// Print the syntax tree as JSON (schema in the README).
    #[arg(long)]
    json: bool,
    /// Expand variables as a build would (ARG defaults, --build-arg, ENV), in the
    /// instructions that BuildKit expands.
    #[arg(long)]
    expand: bool,
    /// A build argument for --expand: NAME=VALUE, or NAME to take it from the environment.
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]", requires = "expand")]
    build_args: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (name, bytes) = if args.file == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading the Dockerfile from standard input")?;
        ("<stdin>".to_string(), buf)
    } else {
        let bytes = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file))?;
        (args.file.clone(), bytes)
    };
    // BuildKit reads bytes; invalid UTF-8 becomes U+FFFD rather than a refusal.
    let text = String::from_utf8_lossy(&bytes);
    let mut df = match kiln_builder::parse(&name, &text) {
        Ok(df) => df,
        Err(err) => {
            eprintln!("{err}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if args.expand {
        let build_args = build_args(&args.build_args);
        match kiln_builder::expand::dockerfile(&df, &build_args) {
            Ok(expanded) => df.instructions = expanded,
            Err(kiln_builder::Error::Expand { at, message }) => {
                eprintln!(
                    "{}",
                    kiln_builder::Diagnostic::new(&name, &text, at, message)
                );
                return Ok(ExitCode::FAILURE);
            }
            Err(err) => return Err(err.into()),
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &kiln_builder::json::dockerfile(&df))?;
        writeln!(out)?;
    } else {
        write_readable(&mut out, &df)?;
    }
    for w in &df.warnings {
        eprintln!(
            "{name}:{}:{}: warning: {}",
            w.span.start.line, w.span.start.column, w.message
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `NAME=VALUE`, or `NAME` alone to take the value from kiln's environment (as docker).
fn build_args(specs: &[String]) -> BTreeMap<String, String> {
    specs
        .iter()
        .filter_map(|spec| match spec.split_once('=') {
            Some((k, v)) => Some((k.to_string(), v.to_string())),
            None => std::env::var(spec).ok().map(|v| (spec.clone(), v)),
        })
        .collect()
}

/// One line per instruction: its lines, keyword, flags and arguments; heredocs beneath.
fn write_readable(out: &mut impl Write, df: &Dockerfile) -> std::io::Result<()> {
    for d in &df.directives {
        writeln!(out, "# {}={}", d.name, d.value)?;
    }
    for instr in &df.instructions {
        write_instruction(out, instr, 0)?;
    }
    Ok(())
}

fn write_instruction(
    out: &mut impl Write,
    instr: &Instruction,
    depth: usize,
) -> std::io::Result<()> {
    let lines = if instr.span.start.line == instr.span.end.line {
        instr.span.start.line.to_string()
    } else {
        format!("{}-{}", instr.span.start.line, instr.span.end.line)
    };
    let indent = "  ".repeat(depth);
    let value = kiln_builder::json::instruction(instr);
    let mut head = format!(
        "{lines:>7}  {indent}{}",
        instr.command.keyword().to_uppercase()
    );
    for flag in &instr.flags {
        head.push(' ');
        head.push_str(flag);
    }
    match &instr.command {
        Command::Onbuild(trigger) => {
            writeln!(out, "{head}")?;
            return write_instruction(out, trigger, depth + 1);
        }
        Command::Run(r) if matches!(r.command, CommandLine::Exec(_)) => head.push_str(" [exec]"),
        Command::Cmd(CommandLine::Exec(_)) | Command::Entrypoint(CommandLine::Exec(_)) => {
            head.push_str(" [exec]")
        }
        _ => {}
    }
    writeln!(out, "{head} {}", value["args"])?;
    for h in &instr.heredocs {
        let mode = if h.expand { "expands" } else { "literal" };
        writeln!(
            out,
            "{:>7}  {indent}  <<{} ({mode}, {} lines)",
            "",
            h.name,
            h.content.lines().count()
        )?;
    }
    Ok(())
}
