//! RUN: the step handed to the executor, and users resolved in the image.

use std::path::{Path, PathBuf};

use super::resolve_user;
use super::{cache, step_error, Builder, Event, State, Step, Views};
use crate::ast::{CommandLine, MountKind, Security};
use crate::build::copy;
use crate::build::{RunMount, RunMountKind, RunStep};
use crate::Error;

const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];
/// A RUN step's host name, BuildKit's.
const HOSTNAME: &str = "buildkitsandbox";

/// `/etc/hosts` (with `--add-host`'s names) and `/etc/resolv.conf` (the host's) for every
/// RUN step, written once per build into `dir` and mounted read-only, as BuildKit mounts
/// them (a step that writes them fails as it does under BuildKit).
pub(super) fn network_files(
    dir: &Path,
    extra_hosts: &[(String, String)],
    resolv_conf: Option<&str>,
) -> Result<Vec<RunMount>, Error> {
    let mut hosts =
        format!("127.0.0.1\tlocalhost {HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (name, ip) in extra_hosts {
        hosts.push_str(&format!("{ip}\t{name}\n"));
    }
    let resolv = match resolv_conf {
        Some(text) => text.to_string(),
        None => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::Io {
        op: "create directory",
        path: dir.to_path_buf(),
        source: e,
    })?;
    [("hosts", hosts), ("resolv.conf", resolv)]
        .into_iter()
        .map(|(name, content)| {
            let path = dir.join(name);
            std::fs::write(&path, content).map_err(|e| Error::Io {
                op: "write",
                path: path.clone(),
                source: e,
            })?;
            Ok(RunMount {
                destination: Path::new("/etc").join(name),
                kind: RunMountKind::Bind {
                    source: path,
                    readonly: true,
                },
            })
        })
        .collect()
}

pub(super) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Builder<'_> {
    pub(super) fn run_step(
        &self,
        step: &Step,
        run: &crate::ast::Run,
        state: &State,
        scratch: &Path,
        upper: &Path,
    ) -> Result<(), Error> {
        let Step {
            instr,
            config,
            args,
            done,
            id,
            progress,
        } = *step;
        let mut argv = match &run.command {
            CommandLine::Exec(argv) => argv.clone(),
            CommandLine::Shell(s) => {
                let mut v = config.shell();
                v.push(s.clone());
                v
            }
        };
        let mut mounts = Vec::new();
        if let CommandLine::Shell(s) = &run.command {
            if let Some(script) = heredoc_script(s, &instr.heredocs) {
                argv = match script {
                    Script::Shell(text) => {
                        let mut v = config.shell();
                        v.push(text);
                        v
                    }
                    // A lone heredoc whose body starts with `#!` is a program of its own:
                    // written to a file and run, as BuildKit runs it.
                    Script::Program { name, body } => {
                        let file = scratch.join(format!("heredoc-{name}"));
                        std::fs::write(&file, body)
                            .and_then(|()| {
                                std::fs::set_permissions(
                                    &file,
                                    std::os::unix::fs::PermissionsExt::from_mode(0o755),
                                )
                            })
                            .map_err(|e| Error::Io {
                                op: "set permissions of",
                                path: file.clone(),
                                source: e,
                            })?;
                        let at = format!("/dev/pipes/{name}");
                        mounts.push(RunMount {
                            destination: PathBuf::from(&at),
                            kind: RunMountKind::Bind {
                                source: file,
                                readonly: true,
                            },
                        });
                        vec![at]
                    }
                };
            }
        }
        let mut env: Vec<(String, String)> = config.env();
        let mut ssh_mounts = 0;
        for (k, v) in args {
            if !env.iter().any(|(ek, _)| ek == k) {
                env.push((k.clone(), v.clone()));
            }
        }
        // Docker's predefined proxy ARGs reach RUN without a declaration, and stay out of
        // the cache key and the history.
        for name in PROXY_ARGS {
            if let Some(v) = self.opts.build_args.get(name) {
                if !env.iter().any(|(k, _)| k == name) {
                    env.push((name.to_string(), v.clone()));
                }
            }
        }
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.push(("PATH".into(), DEFAULT_PATH.into()));
        }
        let user = resolve_user(&config.str("User").unwrap_or_default(), &state.layers)
            .map_err(|m| step_error(instr, m))?;
        // As runc sets it: the image's HOME, else the user's from passwd.
        if !env.iter().any(|(k, _)| k == "HOME") {
            env.push(("HOME".into(), user.home.clone()));
        }
        let mut views = Views {
            exec: self.exec,
            at: Vec::new(),
        };
        for m in &run.mounts {
            let destination = PathBuf::from(
                m.target
                    .clone()
                    .unwrap_or_else(|| config.str("WorkingDir").unwrap_or_else(|| "/".into())),
            );
            match m.kind {
                MountKind::Cache => {
                    let id_name =
                        m.id.clone()
                            .unwrap_or_else(|| destination.display().to_string());
                    let base = self
                        .opts
                        .cache_mount_dir
                        .clone()
                        .unwrap_or_else(|| self.root.join("cachemounts"));
                    let dir = base.join(cache::key(&[&id_name]).to_string());
                    std::fs::create_dir_all(&dir).map_err(|e| Error::Io {
                        op: "create directory",
                        path: dir.clone(),
                        source: e,
                    })?;
                    mounts.push(RunMount {
                        destination,
                        kind: RunMountKind::Bind {
                            source: dir,
                            readonly: false,
                        },
                    });
                }
                MountKind::Tmpfs => mounts.push(RunMount {
                    destination,
                    kind: RunMountKind::Tmpfs { size: m.size },
                }),
                MountKind::Bind => {
                    let (root, place) = match &m.from {
                        None => (self.opts.context.clone(), "the build context".to_string()),
                        Some(name) => match self.context_dir(name) {
                            Some(dir) => (dir.to_path_buf(), format!("build context {name:?}")),
                            None => {
                                let at = self.view_of(instr, self.source_name(name), done)?;
                                views.at.push(at.clone());
                                (at, format!("{name:?}"))
                            }
                        },
                    };
                    let rel = m.source.clone().unwrap_or_default();
                    let source = copy::resolve_in(&root, Path::new(rel.trim_start_matches('/')))
                        .map_err(|e| step_error(instr, format!("--mount: {e}")))?;
                    let meta = std::fs::metadata(&source).map_err(|_| {
                        step_error(instr, format!("--mount source {rel:?} is not in {place}"))
                    })?;
                    let kind = if m.readonly == Some(false) {
                        // Writes to a read-write bind mount are thrown away with the step, as
                        // in BuildKit: they go to an overlay upper (or a copy, for a file)
                        // in the step's scratch directory.
                        let own = scratch.join(format!("mount-{}", mounts.len()));
                        let made = if meta.is_dir() {
                            std::fs::create_dir_all(own.join("upper"))
                                .and_then(|_| std::fs::create_dir_all(own.join("work")))
                        } else {
                            std::fs::create_dir_all(&own)
                                .and_then(|_| std::fs::copy(&source, own.join("file")).map(drop))
                        };
                        made.map_err(|e| Error::Io {
                            op: "copy into",
                            path: own.clone(),
                            source: e,
                        })?;
                        if meta.is_dir() {
                            RunMountKind::Overlay {
                                lower: source,
                                upper: own.join("upper"),
                                work: own.join("work"),
                            }
                        } else {
                            RunMountKind::Bind {
                                source: own.join("file"),
                                readonly: false,
                            }
                        }
                    } else {
                        RunMountKind::Bind {
                            source,
                            readonly: true,
                        }
                    };
                    mounts.push(RunMount { destination, kind });
                }
                MountKind::Secret => {
                    // The secret's id defaults to its target's name, as in BuildKit. It is
                    // mounted read-only (or put in an environment variable) for this step
                    // only: never in a layer, the cache key or the history.
                    let id =
                        m.id.clone()
                            .or_else(|| {
                                m.target
                                    .as_deref()
                                    .and_then(|t| Path::new(t).file_name())
                                    .map(|n| n.to_string_lossy().into_owned())
                            })
                            .unwrap_or_default();
                    let Some(source) = self.opts.secrets.get(&id) else {
                        if m.required == Some(true) {
                            return Err(step_error(instr, format!("secret {id:?} is required but was not given: kiln build --secret id={id},src=FILE")));
                        }
                        continue;
                    };
                    if let Some(var) = &m.env {
                        let value = std::fs::read_to_string(source).map_err(|e| Error::Io {
                            op: "read",
                            path: source.clone(),
                            source: e,
                        })?;
                        env.push((var.clone(), value));
                    }
                    if m.env.is_none() || m.target.is_some() {
                        let target = m
                            .target
                            .clone()
                            .unwrap_or_else(|| format!("/run/secrets/{id}"));
                        mounts.push(RunMount {
                            destination: PathBuf::from(target),
                            kind: RunMountKind::Bind {
                                source: source.clone(),
                                readonly: true,
                            },
                        });
                    }
                }
                MountKind::Ssh => {
                    // The agent's socket alone, for this step only, where BuildKit puts
                    // it; the first one is SSH_AUTH_SOCK.
                    let id = m.id.clone().unwrap_or_else(|| "default".into());
                    let Some(socket) = self.opts.ssh.get(&id) else {
                        if m.required == Some(true) {
                            return Err(step_error(instr, format!("ssh agent {id:?} is required but was not given: kiln build --ssh {id}")));
                        }
                        continue;
                    };
                    let target = m
                        .target
                        .clone()
                        .unwrap_or_else(|| format!("/run/buildkit/ssh_agent.{ssh_mounts}"));
                    if ssh_mounts == 0 {
                        env.push(("SSH_AUTH_SOCK".into(), target.clone()));
                    }
                    ssh_mounts += 1;
                    mounts.push(RunMount {
                        destination: PathBuf::from(target),
                        kind: RunMountKind::Bind {
                            source: socket.clone(),
                            readonly: false,
                        },
                    });
                }
            }
        }
        mounts.extend(self.network_files.iter().cloned());
        // `build` refused the step before anything ran unless it is allowed.
        let insecure = run.security == Some(Security::Insecure);
        let network = run.network.unwrap_or(self.opts.network);
        let step = RunStep {
            argv,
            env: env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            uid: user.uid,
            gid: user.gid,
            groups: user.groups,
            cwd: config.str("WorkingDir").unwrap_or_else(|| "/".into()),
            lowers: state
                .layers
                .iter()
                .rev()
                .map(|l| l.snapshot.clone())
                .chain([self.snapshots.mount_points()])
                .collect(),
            upper: upper.to_path_buf(),
            work: scratch.join("work"),
            merged: self.snapshots.root_mount_point(),
            network,
            hostname: HOSTNAME.into(),
            mounts,
            insecure,
            ulimits: self.opts.ulimits.clone(),
            shm_size: self.opts.shm_size,
        };
        let mut tail: Vec<String> = Vec::new();
        let code = self.exec.run(&step, &mut |line| {
            progress(Event::Output { id, line });
            tail.push(line.to_string());
            if tail.len() > 20 {
                tail.remove(0);
            }
        })?;
        if code != 0 {
            return Err(step_error(
                instr,
                format!(
                    "the command exited with code {code}; its last output:\n{}",
                    tail.join("\n")
                ),
            ));
        }
        Ok(())
    }
}

/// What a RUN with heredocs runs.
#[derive(Debug, PartialEq, Eq)]
enum Script {
    /// Shell text for the shell's `-c`.
    Shell(String),
    /// A lone heredoc with a `#!` line: the body, run as a file.
    Program { name: String, body: String },
}

/// The script of a shell-form RUN with heredocs, as BuildKit makes it: a lone heredoc
/// (`RUN <<EOF`) is the script itself (a program when it starts with `#!`); otherwise
/// the command line and every body with its terminator go to the shell, which feeds the
/// bodies to the command's here-documents (`RUN <<EOF bash`, `RUN cat > f <<EOF && ...`).
/// None without heredocs.
fn heredoc_script(command: &str, heredocs: &[crate::ast::Heredoc]) -> Option<Script> {
    let first = heredocs.first()?;
    let lone = heredocs.len() == 1 && {
        let word = command.trim();
        let marker = word.trim_start_matches("<<").trim_start_matches('-');
        let bare = marker.trim_matches(|c| c == '"' || c == '\'');
        word.starts_with("<<") && bare == first.name
    };
    if lone {
        return Some(if first.content.starts_with("#!") {
            Script::Program {
                name: first.name.clone(),
                body: first.content.clone(),
            }
        } else {
            Script::Shell(first.content.clone())
        });
    }
    let mut text = command.to_string();
    text.push('\n');
    for doc in heredocs {
        text.push_str(&doc.content);
        if !doc.content.is_empty() && !doc.content.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&doc.name);
        text.push('\n');
    }
    Some(Script::Shell(text))
}

#[cfg(test)]
mod tests {
    use super::{heredoc_script, Script};
    use crate::ast::Heredoc;

    fn doc(name: &str, content: &str) -> Heredoc {
        Heredoc {
            name: name.into(),
            content: content.into(),
            expand: true,
            chomp: false,
            fd: None,
        }
    }

    #[test]
    fn heredocs_become_the_script_buildkit_runs() {
        assert_eq!(heredoc_script("echo", &[]), None);
        assert_eq!(
            heredoc_script("<<EOF", &[doc("EOF", "echo hi\n")]),
            Some(Script::Shell("echo hi\n".into()))
        );
        assert_eq!(
            heredoc_script(
                "<<'EOF'",
                &[doc("EOF", "#!/usr/bin/env python3\nprint(1)\n")]
            ),
            Some(Script::Program {
                name: "EOF".into(),
                body: "#!/usr/bin/env python3\nprint(1)\n".into()
            })
        );
        assert_eq!(
            heredoc_script("<<EOF bash", &[doc("EOF", "echo hi\n")]),
            Some(Script::Shell("<<EOF bash\necho hi\nEOF\n".into()))
        );
        assert_eq!(
            heredoc_script(
                "cat > /a <<A && cat > /b <<B",
                &[doc("A", "1\n"), doc("B", "2")]
            ),
            Some(Script::Shell(
                "cat > /a <<A && cat > /b <<B\n1\nA\n2\nB\n".into()
            ))
        );
    }
}
