//! The Compose Specification's model, as kiln keeps it once a file is read: each field in
//! its one long form (ports, volumes, `depends_on`, environment…), whatever syntax the
//! file used, so the rest of kiln — and `kiln compose config` — see one shape. Read
//! from YAML with serde; the short forms are turned long by the `forms` functions,
//! whose errors name what was expected (the path comes from `serde_path_to_error`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use crate::forms;

/// A Compose file's top level, after interpolation, merging and `extends` (the `x-…`
/// extension fields taken out, as Compose ignores them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// `name`: the project's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Obsolete, accepted and ignored as Docker Compose does.
    #[serde(default, skip_serializing)]
    pub version: Option<Value>,
    /// `include`: other Compose files whose resources join this project (resolved when loading).
    #[serde(default, skip_serializing)]
    pub include: Option<Value>,
    /// `services`: what runs.
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    /// `networks`: the project's networks (`default` is made when a service needs it).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "forms::nullable_map"
    )]
    pub networks: BTreeMap<String, Network>,
    /// `volumes`: the project's named volumes.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "forms::nullable_map"
    )]
    pub volumes: BTreeMap<String, Volume>,
    /// `secrets`: files services may mount under `/run/secrets`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, FileObject>,
    /// `configs`: files services may mount at a path of their choice.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, FileObject>,
}

/// One service, every field in its long form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// `build`: how to build the image when it is missing or asked for.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "forms::build"
    )]
    pub build: Option<Build>,
    /// `cap_add`: capabilities beyond docker's default set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// `cap_drop`: capabilities taken from it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// `command`: overrides the image's `CMD` (a string is split as a shell would).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "forms::command"
    )]
    pub command: Option<Vec<String>>,
    /// `configs`: the configs mounted.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "forms::file_refs"
    )]
    pub configs: Vec<FileRef>,
    /// `container_name`: one fixed name instead of `PROJECT-SERVICE-N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// `depends_on`: the services started (and waited for) first.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "forms::depends_on"
    )]
    pub depends_on: BTreeMap<String, Dependency>,
    /// `deploy`: replicas and resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    /// `dns`: name servers for `/etc/resolv.conf`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "forms::strings"
    )]
    pub dns: Vec<String>,
    /// `entrypoint`: overrides the image's `ENTRYPOINT`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "forms::command"
    )]
    pub entrypoint: Option<Vec<String>>,
    /// Read into `environment` when the project is loaded.
    #[serde(default, skip_serializing, deserialize_with = "forms::env_files")]
    pub env_file: Vec<EnvFile>,
    /// `environment` (and `env_file`, merged in): a value of None takes the variable from the
    /// environment `compose` runs in.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "forms::environment"
    )]
    pub environment: BTreeMap<String, Option<String>>,
    /// `expose`: ports published to nothing, as the image's `EXPOSE`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "forms::strings"
    )]
    pub expose: Vec<String>,
    /// Resolved when the project is loaded.
    #[serde(default, skip_serializing)]
    pub extends: Option<Value>,
    /// `extra_hosts`: `NAME:ADDRESS` lines for `/etc/hosts`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "forms::strings"
    )]
    pub extra_hosts: Vec<String>,
    /// `healthcheck`: overrides the image's `HEALTHCHECK`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// `hostname`: the container's host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// `image`: what to run (and the name a `build` is tagged with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `init`: a small init as PID 1, reaping orphans and passing signals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// `labels`: on the container, beside Compose's own `com.docker.compose.*`.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "forms::labels"
    )]
    pub labels: BTreeMap<String, String>,
    /// `network_mode`: `host`, `none`, `service:NAME` or `container:NAME` instead of networks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// `networks`: the networks joined, with aliases and addresses on each.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "forms::service_networks"
    )]
    pub networks: BTreeMap<String, Option<ServiceNetwork>>,
    /// `ports`: published ports.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "forms::ports"
    )]
    pub ports: Vec<Port>,
    /// `profiles`: the service runs only when one of them is active.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// `pull_policy`: `always`, `never`, `missing` (the default) or `build`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<String>,
    /// `read_only`: a read-only root filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// `restart`: docker's restart policy (`no`, `always`, `on-failure[:N]`, `unless-stopped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// `secrets`: the secrets mounted.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "forms::file_refs"
    )]
    pub secrets: Vec<FileRef>,
    /// `stop_grace_period`: how long `stop` waits before SIGKILL (`10s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<String>,
    /// `stop_signal`: what `stop` sends first (`SIGTERM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `tmpfs`: paths mounted as tmpfs.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "forms::strings"
    )]
    pub tmpfs: Vec<String>,
    /// `user`: `USER[:GROUP]` the command runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `volumes`: named volumes, bind mounts and tmpfs mounts.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "forms::volumes"
    )]
    pub volumes: Vec<ServiceVolume>,
    /// `working_dir`: the command's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
}

/// `build`'s long form (`build: DIR` is `{context: DIR}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// The build context: a directory, relative to the project directory, or a URL.
    pub context: String,
    /// The Dockerfile, relative to the context (`Dockerfile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// `--build-arg`s; None takes the value from the environment.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "forms::environment"
    )]
    pub args: BTreeMap<String, Option<String>>,
    /// `--target`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `--cache-from`s.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "forms::strings"
    )]
    pub cache_from: Vec<String>,
    /// `--cache-to`s.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "forms::strings"
    )]
    pub cache_to: Vec<String>,
    /// Secrets the build's `RUN --mount=type=secret` may read.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "forms::file_refs"
    )]
    pub secrets: Vec<FileRef>,
    /// Labels on the image.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "forms::labels"
    )]
    pub labels: BTreeMap<String, String>,
}

/// `depends_on`'s long form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    /// What the dependency must reach before the dependant starts.
    #[serde(default = "started")]
    pub condition: Condition,
    /// Restart the dependant when the dependency is made again (`up`, `restart`).
    #[serde(default)]
    pub restart: bool,
    /// Whether a missing dependency is an error (false: skipped).
    #[serde(default = "yes")]
    pub required: bool,
}

fn started() -> Condition {
    Condition::ServiceStarted
}

fn yes() -> bool {
    true
}

impl Default for Dependency {
    fn default() -> Self {
        Dependency {
            condition: Condition::ServiceStarted,
            restart: false,
            required: true,
        }
    }
}

/// `depends_on.condition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// `service_started`: its container runs.
    ServiceStarted,
    /// `service_healthy`: its healthcheck passes.
    ServiceHealthy,
    /// `service_completed_successfully`: it ran and exited 0.
    ServiceCompletedSuccessfully,
}

/// `deploy`: the parts of Swarm's section Compose applies to one host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// `replicated` (the default) or `global`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// How many containers of the service run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// Limits and reservations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Kept as written: the service's `restart` is what kiln applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<Value>,
}

/// `deploy.resources`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// The most the containers may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// What they are guaranteed (kept; one host reserves nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<Limits>,
}

/// CPU, memory and process limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// CPUs as a decimal (`"0.5"`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "forms::opt_string"
    )]
    pub cpus: Option<String>,
    /// Bytes, with a unit (`"64m"`) as written.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "forms::opt_string"
    )]
    pub memory: Option<String>,
    /// The most processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
}

/// An `env_file` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvFile {
    /// The file, relative to the project directory.
    pub path: String,
    /// Whether a missing file is an error.
    #[serde(default = "yes")]
    pub required: bool,
}

/// `healthcheck`: a command run in the container, and when it counts as failing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "forms::healthcheck_test"
    )]
    pub test: Option<Vec<String>>,
    /// Between checks (`30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// How long one check may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Failures in a row before `unhealthy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Failures that do not count while the container starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<String>,
    /// Between checks while it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<String>,
    /// `disable: true`: no healthcheck, not even the image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable: Option<bool>,
}

/// A service's place on a network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceNetwork {
    /// Other names the service answers to on the network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// A fixed address on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
}

/// `ports`' long form (`8080:80` is `{target: 80, published: "8080"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// `ingress` or `host` (the same on one host).
    #[serde(default = "ingress")]
    pub mode: String,
    /// The host address to publish on (all when None).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// The container's port.
    pub target: u16,
    /// The host port or range (a free one when None).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "forms::opt_string"
    )]
    pub published: Option<String>,
    /// `tcp` or `udp`.
    #[serde(default = "tcp")]
    pub protocol: String,
}

fn ingress() -> String {
    "ingress".to_string()
}

fn tcp() -> String {
    "tcp".to_string()
}

/// `volumes`' long form in a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceVolume {
    /// `volume`, `bind` or `tmpfs`.
    #[serde(rename = "type")]
    pub kind: VolumeKind,
    /// The volume's name or the host path (None: an anonymous volume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Where it is mounted in the container.
    pub target: String,
    /// Mounted read-only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// Bind options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<BindOptions>,
    /// Volume options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOptions>,
    /// tmpfs options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<TmpfsOptions>,
}

/// What a service's mount is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeKind {
    /// A named or anonymous volume.
    Volume,
    /// A host path.
    Bind,
    /// A tmpfs.
    Tmpfs,
}

/// `bind:` options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindOptions {
    /// Make the host path when it is missing (true, as the short form does).
    #[serde(default = "yes")]
    pub create_host_path: bool,
}

/// `volume:` options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeOptions {
    /// Do not fill a new volume from the image's files at the target.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nocopy: bool,
}

/// `tmpfs:` options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TmpfsOptions {
    /// Its size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// A secret or config a service mounts (`- name` is `{source: name}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    /// The top-level secret or config.
    pub source: String,
    /// Where it is mounted (`/run/secrets/SOURCE` for a secret, `/SOURCE` for a config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Its owner.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "forms::opt_string"
    )]
    pub uid: Option<String>,
    /// Its group.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "forms::opt_string"
    )]
    pub gid: Option<String>,
    /// Its mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// A top-level network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// The network's name in the runtime (`PROJECT_KEY` when None).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `bridge` (the default) or `macvlan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Driver options (`parent` for macvlan).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "forms::labels"
    )]
    pub driver_opts: BTreeMap<String, String>,
    /// Made outside the project: used, never made or removed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    /// No route out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
    /// Address management: the first config's `subnet` is the network's; the rest is
    /// kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Value>,
    /// Labels on the network.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "forms::labels"
    )]
    pub labels: BTreeMap<String, String>,
}

/// A top-level volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// The volume's name in the runtime (`PROJECT_KEY` when None).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The volume driver, kept as written (kiln's volumes are local).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Made outside the project: used, never made or removed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    /// Labels on the volume.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "forms::labels"
    )]
    pub labels: BTreeMap<String, String>,
}

/// A top-level secret or config: from a file (or, for a secret, the environment).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileObject {
    /// Its name in the runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `file`: the file, relative to the project directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// `environment`: a variable holding it (secrets only; refused by `up` for now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// `content`: the value inline (configs only; refused by `up` for now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Made outside the project.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
}
