//! Containers without a daemon: each one a directory `KILN_ROOT/containers/<id>/` with
//! its configuration (`config.json`, written once), its state (`state.json`, replaced
//! whole), its layer (`upper/`, overlayfs' `work/`), the files docker writes for it
//! (`hostname`, `hosts`, `resolv.conf`) and its log (`<id>-json.log`, docker's json-file
//! format). Any kiln command reads and changes them; creating or renaming one holds
//! `containers/.lock` so two containers never take one name.

pub mod attach;
pub mod detach;
mod log;

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

pub use log::{read_from as read_log, rotated as rotated_logs, LogLine, LogWriter, Stream};

use crate::error::Error;

/// What a container runs, fixed when it is created (but its name).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Its ID: 64 hex digits.
    pub id: String,
    /// `/NAME`-less, as `docker ps` shows it.
    pub name: String,
    /// The image as the user named it, and its ID (config digest).
    pub image: String,
    /// The image's ID (its config's digest).
    pub image_id: String,
    /// RFC 3339.
    pub created: String,
    /// The program and its arguments (entrypoint then command).
    pub args: Vec<String>,
    /// `KEY=VALUE`: the image's environment with `-e`'s over it.
    pub env: Vec<String>,
    /// The working directory (the image's WORKDIR, or `-w`).
    pub working_dir: String,
    /// `--user` as given (empty: the image's).
    pub user: String,
    /// The user id it runs as.
    pub uid: u32,
    /// The group id it runs as.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Its host name (`-h`; default: the ID's first 12 digits).
    pub hostname: String,
    /// docker's network mode: `bridge` (the default network), `host`, `none`,
    /// `container:NAME` or a network's name.
    pub network: String,
    /// The networks it joins as it starts (bridge and macvlan networks; `network
    /// connect` adds one): the first one's gateway is its default route.
    #[serde(default)]
    pub networks: Vec<crate::networks::Attachment>,
    /// `-p` and `-P`: host ports published to it (port 0: a free one at each start).
    #[serde(default)]
    pub ports: Vec<crate::networks::PortBinding>,
    /// `--mac-address`: its first interface's, instead of one made from its address.
    #[serde(default)]
    pub mac_address: Option<String>,
    /// The image's labels with `--label`'s over them.
    pub labels: std::collections::BTreeMap<String, String>,
    /// `--rm`: removed when it exits.
    pub auto_remove: bool,
    /// The image's layer snapshots, topmost first.
    pub lowers: Vec<PathBuf>,
    /// The image's entrypoint and command, for `inspect`.
    pub entrypoint: Vec<String>,
    /// The image's command (or the one given), for `inspect`.
    pub cmd: Vec<String>,
    /// Volumes, binds and tmpfs mounts, mounted in this order.
    #[serde(default)]
    pub mounts: Vec<MountPoint>,
    /// docker's restart policy: `no`, `always`, `unless-stopped`, `on-failure[:N]`.
    #[serde(default = "no_restart")]
    pub restart: String,
    /// Its resource limits.
    #[serde(default)]
    pub limits: Limits,
    /// Its confinement, as asked.
    #[serde(default)]
    pub security: Security,
    /// `-i`: its standard input is the caller's (in the foreground).
    #[serde(default)]
    pub open_stdin: bool,
    /// `-t`: a pseudo-terminal on its standard streams.
    #[serde(default)]
    pub tty: bool,
    /// `--init`: PID 1 reaps and passes signals on; the command is its child.
    #[serde(default)]
    pub init: bool,
    /// The image's HEALTHCHECK, or `--health-*`'s.
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
    /// `--log-opt max-size=…` in bytes, and `max-file=…`.
    #[serde(default)]
    pub log_max_size: Option<u64>,
    /// `--log-opt max-file=…`: log files kept, the current one included (at least one).
    #[serde(default)]
    pub log_max_file: u32,
    /// `--userns=auto`: its own user namespace, its IDs 0..size host IDs host..host+size.
    #[serde(default)]
    pub userns: Option<IdRange>,
    /// `--add-host`: (name, address) lines of its `/etc/hosts`.
    #[serde(default)]
    pub extra_hosts: Vec<(String, String)>,
    /// `--dns`, `--dns-search`, `--dns-option`: what its `/etc/resolv.conf` says
    /// instead of the host's (each kept from the host's when not given).
    #[serde(default)]
    pub dns: Dns,
}

/// A container's `--dns*` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// `--dns`: name servers.
    pub servers: Vec<String>,
    /// `--dns-search`: search domains.
    pub search: Vec<String>,
    /// `--dns-option`: resolver options.
    pub options: Vec<String>,
}

/// A range of host user and group IDs a container's user namespace maps from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    /// 0 when made: [`Containers::create`] then takes the first range no other container
    /// has.
    pub host: u32,
    /// How many IDs.
    pub size: u32,
}

/// Where `--userns=auto` ranges start: above the IDs of the host's own users (and
/// Debian's default `/etc/subuid` ranges, which begin at 100000 for the first user, are
/// per-user: kiln runs as root and keeps its ranges apart from them from 2^20 up).
const USERNS_BASE: u32 = 1 << 20;

/// docker's health check configuration (durations in nanoseconds; 0: the default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `["CMD", …]`, `["CMD-SHELL", "…"]` or `["NONE"]`.
    pub test: Vec<String>,
    /// `--interval`.
    pub interval_ns: u64,
    /// `--timeout`.
    pub timeout_ns: u64,
    /// `--start-period`: failures in it do not count.
    pub start_period_ns: u64,
    /// `--retries`: failures in a row that make it unhealthy.
    pub retries: u32,
}

impl Healthcheck {
    fn or(ns: u64, default: std::time::Duration) -> std::time::Duration {
        if ns == 0 {
            default
        } else {
            std::time::Duration::from_nanos(ns)
        }
    }

    /// 30 s unless set, as docker's.
    pub fn interval(&self) -> std::time::Duration {
        Self::or(self.interval_ns, std::time::Duration::from_secs(30))
    }

    /// 30 s unless set, as docker's.
    pub fn timeout(&self) -> std::time::Duration {
        Self::or(self.timeout_ns, std::time::Duration::from_secs(30))
    }

    /// 0 unless set.
    pub fn start_period(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.start_period_ns)
    }

    /// 3 unless set.
    pub fn retries(&self) -> u32 {
        if self.retries == 0 {
            3
        } else {
            self.retries
        }
    }
}

/// `--privileged`, `--cap-add`, `--cap-drop`, `--read-only`, `--security-opt
/// no-new-privileges|seccomp=…`, `--ulimit`, `--stop-signal`, `--stop-timeout`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Security {
    /// `--privileged`: every capability, no seccomp filter, the host's devices.
    pub privileged: bool,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--read-only`: the root is mounted read-only.
    pub read_only: bool,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// `--security-opt seccomp=`: `unconfined`, or the profile's JSON (read from its file
    /// when the container was made, as docker keeps it); None for Docker's default.
    #[serde(default)]
    pub seccomp: Option<String>,
    /// (`RLIMIT_…` name, soft, hard).
    pub ulimits: Vec<(String, u64, u64)>,
    /// The signal `stop` sends first (default SIGTERM).
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (default 10).
    pub stop_timeout: Option<u64>,
}

/// `--memory`, `--memory-swap`, `--cpus`, `--cpu-shares`, `--pids-limit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// `--memory`, in bytes.
    pub memory: Option<i64>,
    /// `--memory-swap`: memory and swap together, in bytes (-1: unlimited swap).
    pub memory_swap: Option<i64>,
    /// `--cpus`: CPUs' worth of time.
    pub cpus: Option<f64>,
    /// `--cpu-shares`: the relative weight.
    pub cpu_shares: Option<u64>,
    /// `--pids-limit`.
    pub pids: Option<i64>,
}

fn no_restart() -> String {
    "no".into()
}

/// What a [`MountPoint`] mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// A host file or directory.
    Bind,
    /// A named (or anonymous) volume.
    Volume,
    /// An empty tmpfs.
    Tmpfs,
}

impl MountType {
    /// docker's name for it.
    pub fn name(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Volume => "volume",
            MountType::Tmpfs => "tmpfs",
        }
    }
}

/// One of a container's mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    /// What is mounted.
    #[serde(rename = "type")]
    pub kind: MountType,
    /// A host path (bind), a volume's name (volume), nothing (tmpfs).
    pub source: String,
    /// Where, in the container.
    pub destination: String,
    /// Mounted read-only (`:ro`).
    pub readonly: bool,
}

/// Docker's container states, as `docker ps` and `inspect` name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made, never started.
    Created,
    /// Its process runs.
    Running,
    /// Exited, and about to start again (its restart policy's back-off).
    Restarting,
    /// Its process ended (or it was stopped).
    Exited,
}

impl Status {
    /// docker's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
        }
    }
}

/// Where a container is in its life.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// Its status.
    pub status: Status,
    /// The supervisor: the process that holds the container's streams and waits for it.
    pub supervisor: u32,
    /// The container's PID 1, as the host sees it (0 when not running).
    pub pid: u32,
    /// The last run's exit code (docker's: 128 + signal for a signal).
    pub exit_code: i32,
    /// RFC 3339; empty until it happens.
    pub started_at: String,
    /// RFC 3339; empty until it has exited.
    pub finished_at: String,
    /// Why the container could not start, if it could not.
    #[serde(default)]
    pub error: String,
    /// How many times its restart policy restarted it since it was started.
    #[serde(default)]
    pub restart_count: u32,
    /// The kernel's OOM killer struck in its last run.
    #[serde(default)]
    pub oom_killed: bool,
    /// Running, with its processes frozen (`kiln pause`).
    #[serde(default)]
    pub paused: bool,
    /// While it runs: the mount points its sandbox made in its layer (absolute paths),
    /// not changes of its own (`commit` leaves them out when they are still empty).
    #[serde(default)]
    pub mount_stubs: Vec<String>,
}

impl State {
    /// The state of a container just made.
    pub fn created() -> State {
        State {
            status: Status::Created,
            supervisor: 0,
            pid: 0,
            exit_code: 0,
            started_at: String::new(),
            finished_at: String::new(),
            error: String::new(),
            restart_count: 0,
            oom_killed: false,
            paused: false,
            mount_stubs: Vec::new(),
        }
    }
}

/// A container: its configuration, and its state as last written.
#[derive(Debug, Clone)]
pub struct Container {
    /// Its directory in the store.
    pub dir: PathBuf,
    /// What it runs.
    pub config: Config,
    /// Its state when read.
    pub state: State,
}

impl Container {
    /// Its writable layer (overlayfs' upper directory).
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    /// overlayfs' work directory, beside the upper one.
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    /// Its cgroup, under each hierarchy.
    pub fn cgroup_path(&self) -> String {
        format!("/kiln/{}", self.config.id)
    }

    /// The directory its root is mounted on (in its own mount namespace).
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Its network namespace while it runs, kept as a file (bridge and macvlan
    /// networks).
    pub fn netns(&self) -> PathBuf {
        self.dir.join("netns")
    }

    /// Writes the configuration again (it changes by `rename` and `network
    /// connect`/`disconnect`).
    pub fn save_config(&self) -> Result<(), Error> {
        write_json(&self.dir.join("config.json"), &self.config)
    }

    /// Present when a user stopped (or killed) the container: its restart policy leaves
    /// it stopped, as docker's does. `start` removes it.
    pub fn stop_marker(&self) -> PathBuf {
        self.dir.join("stopped")
    }

    /// Runs `f` with a path to the container's attach socket (`attach.sock` in its
    /// directory) short enough for a socket address (108 bytes, which a deep `KILN_ROOT`
    /// and a 64-character ID pass): through a descriptor of the directory.
    pub fn with_attach_socket<T>(
        &self,
        f: impl FnOnce(&Path) -> std::io::Result<T>,
    ) -> Result<T, Error> {
        let failed = |source| Error::Io {
            op: "use the attach socket in",
            path: self.dir.clone(),
            source,
        };
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_PATH | nix::libc::O_DIRECTORY)
            .open(&self.dir)
            .map_err(failed)?;
        let path = PathBuf::from(format!(
            "/proc/self/fd/{}/attach.sock",
            std::os::fd::AsRawFd::as_raw_fd(&dir)
        ));
        f(&path).map_err(failed)
    }

    /// Its log, docker's json-file format.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}-json.log", self.config.id))
    }

    /// Writes the state whole (a temporary file renamed over the old one).
    pub fn save_state(&self) -> Result<(), Error> {
        write_json(&self.dir.join("state.json"), &self.state)
    }

    /// The state as another process may have written it since.
    pub fn reload(&mut self) -> Result<(), Error> {
        self.state = read_json(&self.dir.join("state.json"))?;
        Ok(())
    }

    /// Running, as far as the host can tell: state says so and its supervisor lives. A
    /// supervisor killed with SIGKILL leaves `running` behind: then it is exited, with an
    /// unknown status (-1), as `kiln ps` shows it.
    pub fn settle(&mut self) {
        if matches!(self.state.status, Status::Running | Status::Restarting)
            && !alive(self.state.supervisor)
        {
            self.state.status = Status::Exited;
            self.state.exit_code = -1;
            self.state.pid = 0;
            let _ = self.save_state();
        }
    }
}

/// A name as docker makes one: an adjective and a surname (from the ID), with a number
/// after it when another container has it already (as docker retries with a digit).
fn free_name(id: &str, taken: impl Fn(&str) -> bool) -> String {
    const ADJECTIVES: [&str; 16] = [
        "brave", "calm", "eager", "fervent", "gifted", "happy", "jolly", "keen", "lucid", "modest",
        "nifty", "quirky", "serene", "tender", "vibrant", "zealous",
    ];
    const NAMES: [&str; 16] = [
        "allen", "babbage", "curie", "dijkstra", "euler", "franklin", "goldberg", "hopper", "kare",
        "lamport", "lovelace", "noether", "ritchie", "shannon", "thompson", "wing",
    ];
    let n = u16::from_str_radix(id.get(..4).unwrap_or("0"), 16).unwrap_or(0) as usize;
    let base = format!("{}_{}", ADJECTIVES[n % 16], NAMES[(n / 16) % 16]);
    std::iter::once(base.clone())
        .chain((2..).map(|i| format!("{base}{i}")))
        .find(|name| !taken(name))
        .unwrap_or(base)
}

/// Whether process `pid` exists (and is not a zombie of ours).
pub fn alive(pid: u32) -> bool {
    pid != 0
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
}

/// The containers under a kiln root.
pub struct Containers {
    dir: PathBuf,
}

impl Containers {
    /// The containers of the store `root`.
    pub fn open(root: &Path) -> Result<Containers, Error> {
        let dir = root.join("containers");
        std::fs::create_dir_all(&dir).map_err(|e| Error::Io {
            op: "create",
            path: dir.clone(),
            source: e,
        })?;
        Ok(Containers { dir })
    }

    /// Every container, oldest first.
    pub fn list(&self) -> Result<Vec<Container>, Error> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| Error::Io {
            op: "read",
            path: self.dir.clone(),
            source: e,
        })?;
        for entry in entries.flatten() {
            let dir = entry.path();
            if dir
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            // One being created or removed right now has no readable config: skip it.
            let (Ok(config), Ok(state)) = (
                read_json::<Config>(&dir.join("config.json")),
                read_json::<State>(&dir.join("state.json")),
            ) else {
                continue;
            };
            let mut c = Container { dir, config, state };
            c.settle();
            out.push(c);
        }
        out.sort_by(|a, b| a.config.created.cmp(&b.config.created));
        Ok(out)
    }

    /// The container named `what`: its name, its ID, or a unique prefix of its ID.
    pub fn find(&self, what: &str) -> Result<Container, Error> {
        let all = self.list()?;
        let what_name = what.trim_start_matches('/');
        if let Some(c) = all
            .iter()
            .find(|c| c.config.name == what_name || c.config.id == what)
        {
            return Ok(c.clone());
        }
        let matching: Vec<&Container> = all
            .iter()
            .filter(|c| !what.is_empty() && c.config.id.starts_with(what))
            .collect();
        match matching.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::NoSuchContainer {
                name: what.to_string(),
            }),
            _ => Err(Error::AmbiguousContainer {
                name: what.to_string(),
            }),
        }
    }

    /// Makes the container's directory, with `config` and a `created` state; refused when
    /// the name is taken. `prepare` writes what else the directory needs (hosts, ...);
    /// if it fails, nothing is left.
    pub fn create(
        &self,
        mut config: Config,
        prepare: impl FnOnce(&Container) -> Result<(), Error>,
    ) -> Result<Container, Error> {
        let _held = self.lock()?;
        let existing = self.list()?;
        if config.name.is_empty() {
            let taken = |name: &str| existing.iter().any(|c| c.config.name == name);
            config.name = free_name(&config.id, taken);
        }
        if let Some(range) = config.userns.as_mut().filter(|r| r.host == 0) {
            let taken: Vec<IdRange> = existing.iter().filter_map(|c| c.config.userns).collect();
            range.host = (0u32..)
                .map(|k| USERNS_BASE + k * range.size)
                .find(|&host| {
                    taken
                        .iter()
                        .all(|t| host + range.size <= t.host || t.host + t.size <= host)
                })
                .unwrap_or(USERNS_BASE);
        }
        if let Some(other) = existing.iter().find(|c| c.config.name == config.name) {
            return Err(Error::NameInUse {
                name: config.name.clone(),
                id: other.config.id.clone(),
            });
        }
        // Made under a temporary name and renamed: a half-made container is never seen.
        let tmp = tempfile::Builder::new()
            .prefix(".new-")
            .tempdir_in(&self.dir)
            .map_err(|e| Error::Io {
                op: "create a directory in",
                path: self.dir.clone(),
                source: e,
            })?;
        let mut container = Container {
            dir: tmp.path().to_path_buf(),
            config,
            state: State::created(),
        };
        for d in ["upper", "work", "rootfs"] {
            let path = container.dir.join(d);
            std::fs::create_dir(&path).map_err(|e| Error::Io {
                op: "create",
                path,
                source: e,
            })?;
        }
        write_json(&container.dir.join("config.json"), &container.config)?;
        container.save_state()?;
        prepare(&container)?;
        let dir = self.dir.join(&container.config.id);
        let kept = tmp.keep();
        std::fs::rename(&kept, &dir).map_err(|e| {
            let _ = std::fs::remove_dir_all(&kept);
            Error::Io {
                op: "create",
                path: dir.clone(),
                source: e,
            }
        })?;
        container.dir = dir;
        Ok(container)
    }

    /// Gives `container` the name `name`, refused when another has it.
    pub fn rename(&self, container: &mut Container, name: &str) -> Result<(), Error> {
        let _held = self.lock()?;
        if let Some(other) = self.list()?.iter().find(|c| c.config.name == name) {
            return Err(Error::NameInUse {
                name: name.to_string(),
                id: other.config.id.clone(),
            });
        }
        container.config.name = name.to_string();
        container.save_config()
    }

    /// Held while names change hands: no two containers get one name.
    fn lock(&self) -> Result<Flock<File>, Error> {
        let lock_path = self.dir.join(".lock");
        let lock = File::create(&lock_path).map_err(|e| Error::Io {
            op: "create",
            path: lock_path.clone(),
            source: e,
        })?;
        Flock::lock(lock, FlockArg::LockExclusive).map_err(|(_, e)| Error::Io {
            op: "lock",
            path: lock_path,
            source: e.into(),
        })
    }

    /// Removes a container: its directory (its layer, logs and state) and any cgroup a
    /// killed supervisor left.
    pub fn remove(&self, container: &Container) -> Result<(), Error> {
        crate::cgroups::remove_path(Path::new(&container.cgroup_path()));
        // What a killed supervisor left of its network (the namespace's mount would
        // keep the directory from going).
        let root = self.dir.parent().unwrap_or(Path::new("/"));
        crate::networks::Networks::open(root)?.release(&container.config.id, &container.netns())?;
        // Renamed away first: a reader never sees a half-removed container.
        let gone = self.dir.join(format!(".gone-{}", container.config.id));
        std::fs::rename(&container.dir, &gone).map_err(|e| Error::Io {
            op: "remove",
            path: container.dir.clone(),
            source: e,
        })?;
        std::fs::remove_dir_all(&gone).map_err(|e| Error::Io {
            op: "remove",
            path: gone,
            source: e,
        })
    }
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), Error> {
    let io = |source| Error::Io {
        op: "write",
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    // Made whole first: written straight to the file, serde_json makes a system call
    // per token.
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| io(e.into()))?;
    std::io::Write::write_all(&mut tmp.as_file(), &bytes).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, Error> {
    let io = |source| Error::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(path).map_err(io)?;
    serde_json::from_slice(&bytes).map_err(|e| io(e.into()))
}
