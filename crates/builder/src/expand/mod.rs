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
    /// The value of `name`, or None when it is not set.
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
/// Dockerfile's escape character. Errors name the instruction's position.
pub fn instruction(
    instr: &Instruction,
    escape: char,
    vars: &dyn Variables,
) -> Result<Instruction, Error> {
    let x = Expander {
        escape,
        vars,
        at: instr.span.start,
    };
    let mut out = instr.clone();
    match &mut out.command {
        Command::From(f) => {
            x.one(&mut f.image)?;
            x.opt(&mut f.platform)?;
        }
        Command::Env(kvs) | Command::Label(kvs) => {
            for kv in kvs {
                x.one(&mut kv.key)?;
                x.one(&mut kv.value)?;
            }
        }
        Command::Arg(decls) => {
            for d in decls {
                x.opt(&mut d.default)?;
            }
        }
        Command::Expose(ports) => {
            let mut expanded = Vec::new();
            for p in ports.iter() {
                expanded.extend(words(p, escape, vars).map_err(|m| x.fail(m))?);
            }
            *ports = expanded;
        }
        Command::Volume(v) => x.all(&mut v.paths)?,
        Command::User(s) | Command::Workdir(s) | Command::StopSignal(s) => x.one(s)?,
        Command::Copy(c) => {
            x.opt(&mut c.from)?;
            x.copy(&mut c.spec)?;
        }
        Command::Add(a) => {
            x.opt(&mut a.checksum)?;
            x.copy(&mut a.spec)?;
        }
        Command::Run(r) => {
            for m in &mut r.mounts {
                for field in [
                    &mut m.target,
                    &mut m.source,
                    &mut m.from,
                    &mut m.id,
                    &mut m.env,
                ] {
                    x.opt(field)?;
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
    if matches!(
        out.command,
        Command::From(_) | Command::Copy(_) | Command::Add(_) | Command::Run(_)
    ) {
        for flag in &mut out.flags {
            if let Some((name, value)) = flag.split_once('=') {
                let mut value = value.to_string();
                x.one(&mut value)?;
                *flag = format!("{name}={value}");
            }
        }
    }
    if matches!(out.command, Command::Copy(_) | Command::Add(_)) {
        for h in out.heredocs.iter_mut().filter(|h| h.expand) {
            h.content = heredoc(&h.content, vars).map_err(|m| x.fail(m))?;
        }
    }
    Ok(out)
}

/// Expands fields in place, failing at one instruction's position.
struct Expander<'a> {
    escape: char,
    vars: &'a dyn Variables,
    at: crate::ast::Position,
}

impl Expander<'_> {
    fn fail(&self, message: String) -> Error {
        Error::Expand {
            at: self.at,
            message,
        }
    }

    fn one(&self, s: &mut String) -> Result<(), Error> {
        *s = word(s, self.escape, self.vars).map_err(|m| self.fail(m))?;
        Ok(())
    }

    fn opt(&self, s: &mut Option<String>) -> Result<(), Error> {
        s.as_mut().map_or(Ok(()), |s| self.one(s))
    }

    fn all(&self, list: &mut [String]) -> Result<(), Error> {
        list.iter_mut().try_for_each(|s| self.one(s))
    }

    fn copy(&self, spec: &mut crate::ast::CopySpec) -> Result<(), Error> {
        for src in &mut spec.sources {
            // A heredoc source names its body; it is not a path to expand.
            if spec.json || !crate::ast::is_heredoc_word(src) {
                self.one(src)?;
            }
        }
        self.one(&mut spec.dest)?;
        self.opt(&mut spec.chown)?;
        self.opt(&mut spec.chmod)?;
        self.all(&mut spec.exclude)
    }
}

/// Expands a whole Dockerfile the way a build walks it, for `kiln parse --expand`:
/// ARGs before the first FROM are visible to FROM lines only; inside a stage, an ARG
/// takes its value from `build_args`, else its default, else the global ARG of the same
/// name; ENV values are visible to the instructions after them. The base image's own
/// environment is not known here (no image is read), so it is taken as empty.
pub fn dockerfile(
    df: &Dockerfile,
    build_args: &BTreeMap<String, String>,
) -> Result<Vec<Instruction>, Error> {
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
                    let value = build_args
                        .get(&d.name)
                        .cloned()
                        .or_else(|| d.default.clone())
                        .or(inherited);
                    if let Some(v) = value {
                        stage
                            .as_mut()
                            .unwrap_or(&mut global)
                            .insert(d.name.clone(), v);
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
