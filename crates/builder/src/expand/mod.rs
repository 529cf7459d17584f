//! Variable expansion, applied as BuildKit applies it: to the arguments of ADD, COPY, ENV,
//! EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR and ARG, to `RUN --mount`
//! options, and to the bodies of COPY/ADD heredocs whose delimiter is unquoted. The shell
//! text of RUN, CMD, ENTRYPOINT and HEALTHCHECK (and RUN heredocs) is left to the shell,
//! which expands it when the command runs.

mod lexer;

use std::collections::{BTreeMap, HashMap};

pub use lexer::{heredoc, word, words};

use crate::ast::{Command, Dockerfile, Instruction};
use crate::Error;

/// Where expansion looks variables up.
pub trait Variables {
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl Variables for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Variables for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// Returns `instr` with its expandable arguments expanded against `vars`, using the
/// Dockerfile's escape character. Errors name the instruction's line.
pub fn instruction(instr: &Instruction, escape: char, vars: &dyn Variables) -> Result<Instruction, Error> {
    let fail = |message: String| Error::Expand { at: instr.span.start, message };
    let one = |s: &str| word(s, escape, vars).map_err(fail);
    let opt = |s: &Option<String>| s.as_deref().map(one).transpose();
    let mut out = instr.clone();
    match &mut out.command {
        Command::From(f) => {
            f.image = one(&f.image)?;
            f.platform = opt(&f.platform)?;
        }
        Command::Env(kvs) | Command::Label(kvs) => {
            for kv in kvs {
                kv.key = one(&kv.key)?;
                kv.value = one(&kv.value)?;
            }
        }
        Command::Arg(decls) => {
            for d in decls {
                d.default = opt(&d.default)?;
            }
        }
        Command::Expose(ports) => {
            let mut expanded = Vec::new();
            for p in ports.iter() {
                expanded.extend(words(p, escape, vars).map_err(fail)?);
            }
            *ports = expanded;
        }
        Command::Volume(paths) => {
            for p in paths {
                *p = one(p)?;
            }
        }
        Command::User(s) | Command::Workdir(s) | Command::StopSignal(s) => *s = one(s)?,
        Command::Copy(c) => {
            c.from = opt(&c.from)?;
            expand_copy(&mut c.spec, &one, &opt)?;
        }
        Command::Add(a) => {
            a.checksum = opt(&a.checksum)?;
            expand_copy(&mut a.spec, &one, &opt)?;
        }
        Command::Run(r) => {
            for m in &mut r.mounts {
                for field in [&mut m.target, &mut m.source, &mut m.from, &mut m.id, &mut m.env] {
                    *field = opt(field)?;
                }
            }
        }
        Command::Cmd(_)
        | Command::Entrypoint(_)
        | Command::Shell(_)
        | Command::Healthcheck(_)
        | Command::Maintainer(_)
        | Command::Onbuild(_) => {}
    }
    // Flag values are expanded where BuildKit expands them; the flag words shown to tools
    // follow, so they agree with the typed fields.
    if matches!(out.command, Command::From(_) | Command::Copy(_) | Command::Add(_) | Command::Run(_)) {
        for flag in &mut out.flags {
            if let Some((name, value)) = flag.split_once('=') {
                *flag = format!("{name}={}", one(value)?);
            }
        }
    }
    if matches!(out.command, Command::Copy(_) | Command::Add(_)) {
        for h in out.heredocs.iter_mut().filter(|h| h.expand) {
            h.content = heredoc(&h.content, vars).map_err(fail)?;
        }
    }
    Ok(out)
}

fn expand_copy(
    spec: &mut crate::ast::CopySpec,
    one: &dyn Fn(&str) -> Result<String, Error>,
    opt: &dyn Fn(&Option<String>) -> Result<Option<String>, Error>,
) -> Result<(), Error> {
    for src in &mut spec.sources {
        // A heredoc source names its body; it is not a path to expand.
        if !(!spec.json && crate::ast::is_heredoc_word(src)) {
            *src = one(src)?;
        }
    }
    spec.dest = one(&spec.dest)?;
    spec.chown = opt(&spec.chown)?;
    spec.chmod = opt(&spec.chmod)?;
    for e in &mut spec.exclude {
        *e = one(e)?;
    }
    Ok(())
}

/// Expands a whole Dockerfile the way a build walks it, for `kiln parse --expand`:
/// ARGs before the first FROM are visible to FROM lines only; inside a stage, an ARG
/// takes its value from `build_args`, else its default, else the global ARG of the same
/// name; ENV values are visible to the instructions after them. The base image's own
/// environment is not known here (no image is read), so it is taken as empty.
pub fn dockerfile(df: &Dockerfile, build_args: &BTreeMap<String, String>) -> Result<Vec<Instruction>, Error> {
    let mut global: BTreeMap<String, String> = BTreeMap::new();
    let mut stage: Option<BTreeMap<String, String>> = None;
    let mut out = Vec::with_capacity(df.instructions.len());
    for instr in &df.instructions {
        let expanded = instruction(instr, df.escape, stage.as_ref().unwrap_or(&global))?;
        match &expanded.command {
            Command::From(_) => stage = Some(BTreeMap::new()),
            Command::Arg(decls) => {
                for d in decls {
                    let inherited = stage.as_ref().and_then(|_| global.get(&d.name)).cloned();
                    let value = build_args.get(&d.name).cloned().or_else(|| d.default.clone()).or(inherited);
                    if let Some(v) = value {
                        stage.as_mut().unwrap_or(&mut global).insert(d.name.clone(), v);
                    }
                }
            }
            Command::Env(kvs) => {
                if let Some(env) = stage.as_mut() {
                    env.extend(kvs.iter().map(|kv| (kv.key.clone(), kv.value.clone())));
                }
            }
            _ => {}
        }
        out.push(expanded);
    }
    Ok(out)
}
