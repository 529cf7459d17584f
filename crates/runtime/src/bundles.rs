//! OCI bundles run as runc runs them — the lifecycle of the runtime spec
//! (create, start, state, kill, delete) and `exec`, which `kiln runtime` offers on runc's
//! command line so that podman (through conmon), containerd's shim or the OCI validation
//! suite can drive kiln's sandbox. Each container is a directory under the state root
//! (runc's `--root`): `state.json`, and until it is started `exec.fifo`, on which its
//! PID 1 waits.

use std::collections::HashMap;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use oci_spec::runtime::{Process, Spec};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::spec::Rootfs;

/// What the runtime keeps of a container it created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The container's ID.
    pub id: String,
    /// PID 1's process id, in the caller's PID namespace.
    pub pid: u32,
    /// PID 1's start time (field 22 of `/proc/PID/stat`): a PID the kernel gave again to
    /// another process is not the container.
    pub start_time: u64,
    /// The bundle directory (`config.json` and the root).
    pub bundle: PathBuf,
    /// The root filesystem, resolved against the bundle.
    pub rootfs: PathBuf,
    /// When it was created, RFC 3339.
    pub created: String,
    /// Its cgroup, when the spec asked for one.
    pub cgroup: Option<PathBuf>,
    /// The spec's annotations.
    #[serde(default)]
    pub annotations: HashMap<String, String>,
}

/// The runtime spec's statuses (`creating` is never seen: `create` returns made).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made, waiting for `start`.
    Created,
    /// PID 1 runs the user's program.
    Running,
    /// PID 1 has exited.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
        })
    }
}

/// The state the runtime spec defines (what `runc state` prints).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// The runtime spec's version.
    pub oci_version: String,
    /// The container's ID.
    pub id: String,
    /// Its status now.
    pub status: Status,
    /// PID 1's process id (0 once stopped).
    pub pid: u32,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The root filesystem.
    pub rootfs: PathBuf,
    /// When it was created, RFC 3339.
    pub created: String,
    /// The user that owns it: empty, as runc leaves it for root.
    pub owner: String,
    /// The spec's annotations.
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// The containers under one state root.
pub struct Bundles {
    root: PathBuf,
}

/// Where the standard streams of a created container go.
pub enum Streams {
    /// The caller's own (runc's "pass-through" mode; conmon passes pipes).
    Inherit,
    /// A new terminal, its master sent to the caller over this socket (`--console-socket`).
    ConsoleSocket(PathBuf),
}

impl Bundles {
    /// The containers under the state root `root` (`--root`), made when the first is
    /// created.
    pub fn new(root: &Path) -> Bundles {
        Bundles {
            root: root.to_path_buf(),
        }
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
        move |source| Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// `create`: the sandbox of `bundle`'s `config.json` made, its PID 1 waiting for
    /// [`Bundles::start`]; its PID written to `pid_file` as runc writes it.
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: Option<&Path>,
        streams: Streams,
    ) -> Result<Record, Error> {
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c))
        {
            return Err(Error::BundleId { id: id.to_string() });
        }
        let bundle = std::path::absolute(bundle).map_err(Self::io("resolve", bundle))?;
        let config = bundle.join("config.json");
        let spec = Spec::load(&config).map_err(|e| Error::BundleConfig {
            path: config.clone(),
            reason: e.to_string(),
        })?;
        if spec.hooks().is_some() {
            return Err(Error::Spec {
                reason: "hooks are not run by kiln's runtime: remove `hooks` from the spec".into(),
            });
        }
        let root_path = spec
            .root()
            .as_ref()
            .map(|r| r.path().clone())
            .ok_or_else(|| Error::Spec {
                reason: "no root.path: name the bundle's root filesystem".into(),
            })?;
        let rootfs = bundle.join(root_path);
        std::fs::create_dir_all(&self.root).map_err(Self::io("create", &self.root))?;
        let dir = self.dir(id);
        match std::fs::create_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::BundleExists { id: id.to_string() })
            }
            other => other.map_err(Self::io("create", &dir))?,
        }
        let made = self.make(id, &spec, &bundle, &rootfs, pid_file, streams);
        if made.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        made
    }

    /// The sandbox of a container whose directory is made.
    fn make(
        &self,
        id: &str,
        spec: &Spec,
        bundle: &Path,
        rootfs: &Path,
        pid_file: Option<&Path>,
        streams: Streams,
    ) -> Result<Record, Error> {
        let dir = self.dir(id);
        let fifo = dir.join("exec.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).map_err(
            |e| Error::Io {
                op: "make",
                path: fifo.clone(),
                source: e.into(),
            },
        )?;
        // Read and write: opening does not wait for a writer, and PID 1 never sees EOF.
        let gate = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .map_err(Self::io("open", &fifo))?;
        let terminal = spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false);
        let console = console(&streams, terminal)?;
        let pid = crate::sandbox::create(
            spec,
            &Rootfs::made(rootfs.to_path_buf()),
            &gate,
            console.as_ref(),
        )?;
        let record = Record {
            id: id.to_string(),
            pid,
            start_time: start_time(pid).unwrap_or(0),
            bundle: bundle.to_path_buf(),
            rootfs: rootfs.to_path_buf(),
            created: humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
            cgroup: spec.linux().as_ref().and_then(|l| l.cgroups_path().clone()),
            annotations: spec.annotations().clone().unwrap_or_default(),
        };
        let saved = self.save(&record).and_then(|()| match pid_file {
            Some(path) => write_atomic(path, pid.to_string().as_bytes()),
            None => Ok(()),
        });
        if let Err(e) = saved {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            if let Some(c) = &record.cgroup {
                wait_gone(&record);
                crate::cgroups::remove_path(c);
            }
            return Err(e);
        }
        Ok(record)
    }

    fn save(&self, record: &Record) -> Result<(), Error> {
        let text = serde_json::to_vec(record).unwrap_or_default();
        write_atomic(&self.dir(&record.id).join("state.json"), &text)
    }

    /// The record of container `id`.
    pub fn load(&self, id: &str) -> Result<Record, Error> {
        let path = self.dir(id).join("state.json");
        let text = match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoSuchBundle { id: id.to_string() })
            }
            other => other.map_err(Self::io("read", &path))?,
        };
        serde_json::from_slice(&text).map_err(|e| Error::Io {
            op: "parse",
            path,
            source: e.into(),
        })
    }

    /// Every container under the root, in no order.
    pub fn list(&self) -> Result<Vec<Record>, Error> {
        let entries = match std::fs::read_dir(&self.root) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            other => other.map_err(Self::io("list", &self.root))?,
        };
        Ok(entries
            .flatten()
            .filter_map(|e| self.load(&e.file_name().to_string_lossy()).ok())
            .collect())
    }

    /// The container's status now: stopped once PID 1 is gone, created while it waits on
    /// its exec FIFO.
    pub fn status(&self, record: &Record) -> Status {
        if !is_alive(record) {
            Status::Stopped
        } else if self.dir(&record.id).join("exec.fifo").exists() {
            Status::Created
        } else {
            Status::Running
        }
    }

    /// What `kiln runtime state ID` prints.
    pub fn state(&self, id: &str) -> Result<State, Error> {
        let record = self.load(id)?;
        let status = self.status(&record);
        Ok(State {
            oci_version: "1.0.2".into(),
            id: record.id,
            status,
            pid: if status == Status::Stopped {
                0
            } else {
                record.pid
            },
            bundle: record.bundle,
            rootfs: record.rootfs,
            created: record.created,
            owner: String::new(),
            annotations: record.annotations,
        })
    }

    /// `start`: the created container's PID 1 execs its program.
    pub fn start(&self, id: &str) -> Result<(), Error> {
        let record = self.load(id)?;
        let status = self.status(&record);
        if status != Status::Created {
            return Err(Error::BundleStatus {
                id: id.to_string(),
                status: status.to_string(),
                wanted: "created",
            });
        }
        let fifo = self.dir(id).join("exec.fifo");
        let open = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&fifo);
        let written = open.and_then(|mut f| std::io::Write::write_all(&mut f, b"0"));
        written.map_err(Self::io("start the container through", &fifo))?;
        std::fs::remove_file(&fifo).map_err(Self::io("remove", &fifo))
    }

    /// `kill`: `signal` to PID 1, or (`all`) to every process of its cgroup.
    pub fn kill(&self, id: &str, signal: nix::sys::signal::Signal, all: bool) -> Result<(), Error> {
        let record = self.load(id)?;
        if self.status(&record) == Status::Stopped {
            return Err(Error::BundleStatus {
                id: id.to_string(),
                status: Status::Stopped.to_string(),
                wanted: "created or running",
            });
        }
        let mut pids = vec![record.pid];
        if all {
            if let Some(c) = &record.cgroup {
                pids.extend(crate::cgroups::pids(c));
            }
        }
        for pid in pids {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).map_err(
                |e| Error::Io {
                    op: "signal",
                    path: PathBuf::from(format!("/proc/{pid}")),
                    source: e.into(),
                },
            )?;
        }
        Ok(())
    }

    /// `delete`: the container's state and cgroup removed; a running one is refused
    /// unless `force`, which kills it first (and takes a missing one as deleted).
    pub fn delete(&self, id: &str, force: bool) -> Result<(), Error> {
        let record = match self.load(id) {
            // runc's: forcing the removal of what is not there is done already (podman
            // deletes after a failed create).
            Err(Error::NoSuchBundle { .. }) if force => {
                let _ = std::fs::remove_dir_all(self.dir(id));
                return Ok(());
            }
            other => other?,
        };
        let status = self.status(&record);
        if status != Status::Stopped {
            if !force {
                return Err(Error::BundleStatus {
                    id: id.to_string(),
                    status: status.to_string(),
                    wanted: "stopped (or --force)",
                });
            }
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(record.pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            wait_gone(&record);
        }
        if let Some(c) = &record.cgroup {
            crate::cgroups::remove_path(c);
        }
        let dir = self.dir(id);
        std::fs::remove_dir_all(&dir).map_err(Self::io("remove", &dir))
    }

    /// `exec`: `process` in the running container's namespaces and cgroup, confined as
    /// its spec confines it (its seccomp filter), with the process's own user,
    /// capabilities and environment. Detached, returns its PID at once; else waits and
    /// returns its exit code.
    pub fn exec(
        &self,
        id: &str,
        process: Process,
        pid_file: Option<&Path>,
        detach: bool,
        streams: Streams,
    ) -> Result<i32, Error> {
        let record = self.load(id)?;
        let status = self.status(&record);
        if status != Status::Running {
            return Err(Error::BundleStatus {
                id: id.to_string(),
                status: status.to_string(),
                wanted: "running",
            });
        }
        let config = record.bundle.join("config.json");
        let mut spec = Spec::load(&config).map_err(|e| Error::BundleConfig {
            path: config.clone(),
            reason: e.to_string(),
        })?;
        let console = console(&streams, process.terminal().unwrap_or(false))?;
        spec.set_process(Some(process));
        if detach {
            let pid = crate::sandbox::exec_detached(&spec, record.pid, console.as_ref())?;
            if let Some(path) = pid_file {
                write_atomic(path, pid.to_string().as_bytes())?;
            }
            return Ok(0);
        }
        let running = match &console {
            Some(console) => crate::sandbox::exec_terminal(&spec, record.pid, console)?,
            None => {
                let inherit = Stdio::inherit;
                crate::sandbox::exec(&spec, record.pid, inherit(), inherit(), inherit())?
            }
        };
        if let Some(path) = pid_file {
            write_atomic(path, running.child.id().to_string().as_bytes())?;
        }
        let status = running.wait()?;
        Ok(status.code().unwrap_or(255))
    }
}

/// The console socket a process with a terminal sends its master to, connected; None
/// without a terminal.
fn console(streams: &Streams, terminal: bool) -> Result<Option<UnixStream>, Error> {
    match streams {
        Streams::ConsoleSocket(socket) if terminal => UnixStream::connect(socket)
            .map(Some)
            .map_err(|source| Error::Io {
                op: "connect to the console socket",
                path: socket.clone(),
                source,
            }),
        _ if terminal => Err(Error::Spec {
            reason: "process.terminal needs --console-socket".into(),
        }),
        _ => Ok(None),
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| Error::Io {
            op: "write",
            path: path.to_path_buf(),
            source,
        })
}

/// Field 22 of `/proc/PID/stat` (after the command name, which may hold spaces), and
/// whether the process is a zombie.
fn stat(pid: u32) -> Option<(u64, bool)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    Some((fields.get(19)?.parse().ok()?, fields.first() == Some(&"Z")))
}

fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|(t, _)| t)
}

fn is_alive(record: &Record) -> bool {
    stat(record.pid).is_some_and(|(t, zombie)| t == record.start_time && !zombie)
}

/// Waits (up to 10 s) for a killed container's PID 1 to be gone.
fn wait_gone(record: &Record) {
    for _ in 0..1000 {
        if !is_alive(record) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
