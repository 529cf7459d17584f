//! What the sandbox runs: an OCI runtime spec (`oci_spec::runtime::Spec`, the type
//! `config.json` holds), on a root made from layers ([`Rootfs`]); and the spec Docker
//! gives a container by default ([`default_spec`]), which RUN steps and containers start
//! from.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxNamespaceBuilder, LinuxNamespaceType,
    Mount, MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::error::Error;

/// The root: read-only `lower` directories (topmost first) under a writable
/// `upper`, which collects every change the process makes. `work` is overlayfs' scratch
/// directory, on the same filesystem as `upper`. `merged` is the directory the root is
/// mounted on in the sandbox's own mount namespace (sandboxes running at once may share
/// it); with the copying snapshotter, an empty directory of this root's own that receives
/// the copy, on `upper`'s filesystem. (An OCI bundle names a root already made; kiln makes
/// it from the layers, as containerd's snapshotters do before they call runc.)
#[derive(Debug, Clone)]
pub struct Rootfs {
    /// The layers' directories, topmost first.
    pub lower: Vec<PathBuf>,
    /// Where the root's changes go: overlayfs' upper directory, or the copy's.
    pub upper: PathBuf,
    /// overlayfs' work directory, on `upper`'s filesystem.
    pub work: PathBuf,
    /// Where the root is mounted (see above).
    pub merged: PathBuf,
    /// How the root is made from the layers.
    pub snapshotter: Snapshotter,
}

impl Rootfs {
    /// A root made already, at `path` ([`Snapshotter::Made`]).
    pub fn made(path: PathBuf) -> Rootfs {
        Rootfs {
            lower: Vec::new(),
            upper: PathBuf::new(),
            work: PathBuf::new(),
            merged: path,
            snapshotter: Snapshotter::Made,
        }
    }
}

/// How the root is made. Either way `upper` ends up holding the changes in overlayfs'
/// form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshotter {
    /// An overlayfs mount.
    Overlay,
    /// A copy of the layers in `merged`, compared with what it was after the process
    /// (where overlayfs is missing or refuses the filesystem).
    Copy,
    /// `merged` is a root made already (an OCI bundle's `root.path`, which its caller —
    /// podman, containerd — mounted): used as it is; `lower`, `upper` and `work` unused,
    /// nothing records its changes.
    Made,
}

/// `--network`: the host's network, a namespace of its own with loopback only, or a
/// namespace made (and wired) before, kept at a path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Network {
    /// The host's network (`--network host`).
    Host,
    /// A namespace of its own with loopback only (`--network none`).
    #[default]
    Loopback,
    /// The namespace bound at this path, made and wired before.
    Join(PathBuf),
}

/// Docker's default capability set (moby's `oci/caps/defaults.go`), which BuildKit gives
/// a RUN step.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Docker's masked paths: what of `/proc` and `/sys` tells about or reaches the host.
const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// `--security-opt seccomp=`: Docker's default profile, none, or a profile in Docker's
/// format (its JSON, read when the container was made).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum SeccompProfile {
    /// Docker's default profile.
    #[default]
    Default,
    /// No filter (`seccomp=unconfined`).
    Unconfined,
    /// A profile in Docker's JSON format.
    Docker(serde_json::Value),
}

impl SeccompProfile {
    /// Whether the profile converts and compiles (for Docker's default capabilities).
    pub fn check(&self) -> Result<(), Error> {
        if let SeccompProfile::Docker(profile) = self {
            let held: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect();
            crate::seccomp::compile(&crate::seccomp::from_profile(profile, &held)?)?;
        }
        Ok(())
    }
}

/// What a process brings to [`default_spec`]; its defaults are a root process in `/`
/// with nothing else asked for.
#[derive(Debug, Clone, Default)]
pub struct ProcessSpec {
    /// The program and its arguments; a program without `/` is looked up in the `PATH`
    /// of `env`, inside the root.
    pub args: Vec<String>,
    /// `KEY=VALUE` entries: the whole environment.
    pub env: Vec<String>,
    /// The working directory inside the root; created if missing, as Docker does.
    pub cwd: PathBuf,
    /// The user id it runs as.
    pub uid: u32,
    /// The group id it runs as.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// The host name in its UTS namespace.
    pub hostname: String,
    /// Its network.
    pub network: Network,
    /// BuildKit's `security.insecure` (Docker's `--privileged`): every capability, no
    /// seccomp filter, nothing masked, the host's `/dev`.
    pub privileged: bool,
    /// Mounted in order after the standard ones (see [`bind_mount`], [`tmpfs_mount`],
    /// [`overlay_mount`]).
    pub mounts: Vec<Mount>,
    /// Resource limits: (`RLIMIT_NOFILE`-style name, soft, hard).
    pub rlimits: Vec<(String, u64, u64)>,
    /// The size of `/dev/shm` in bytes (Docker's 64 MiB when None).
    pub shm_size: Option<u64>,
    /// A cgroup of its own (the path under each hierarchy) with these limits (see
    /// [`crate::cgroups::resources`]); a process that joins a running sandbox
    /// ([`crate::exec`]) joins this existing cgroup.
    pub cgroup: Option<(String, oci_spec::runtime::LinuxResources)>,
    /// `--cap-add`/`--cap-drop`: capability names (`NET_ADMIN` or `CAP_NET_ADMIN`; `ALL`
    /// drops every one), applied to Docker's default set.
    pub cap_add: Vec<String>,
    /// Capabilities taken from the default set; `cap_add` then adds its own.
    pub cap_drop: Vec<String>,
    /// `--read-only`: the root mounted read-only.
    pub readonly_root: bool,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// `--security-opt seccomp=` (not for a privileged process, which has no filter).
    pub seccomp: SeccompProfile,
    /// `--userns`: a user namespace in which IDs 0..size are host IDs host..host+size
    /// (`(host, size)`); None for the host's IDs.
    pub userns: Option<(u32, u32)>,
}

/// `NET_ADMIN` as the kernel names it: `CAP_NET_ADMIN`.
fn cap_name(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
        .expect("every field of a mount is set")
}

/// A host file or directory at `destination` (a build context, a cache, a secret).
pub fn bind_mount(destination: &Path, source: &Path, readonly: bool) -> Mount {
    let mut options = vec!["rbind".to_string()];
    if readonly {
        options.push("ro".into());
    }
    MountBuilder::default()
        .destination(destination)
        .typ("bind")
        .source(source)
        .options(options)
        .build()
        .expect("every field of a mount is set")
}

/// A fresh tmpfs, optionally limited in bytes.
pub fn tmpfs_mount(destination: &Path, size: Option<u64>) -> Mount {
    let mut options = vec!["nosuid".to_string(), "nodev".to_string()];
    if let Some(s) = size {
        options.push(format!("size={s}"));
    }
    MountBuilder::default()
        .destination(destination)
        .typ("tmpfs")
        .source("tmpfs")
        .options(options)
        .build()
        .expect("every field of a mount is set")
}

/// An overlay of `lower` (topmost first) under the writable `upper`; `work` is
/// overlayfs' scratch directory on the same filesystem as `upper`.
pub fn overlay_mount(destination: &Path, lower: &[PathBuf], upper: &Path, work: &Path) -> Mount {
    let lower: Vec<String> = lower.iter().map(|l| l.display().to_string()).collect();
    MountBuilder::default()
        .destination(destination)
        .typ("overlay")
        .source("overlay")
        .options(vec![
            format!("lowerdir={}", lower.join(":")),
            format!("upperdir={}", upper.display()),
            format!("workdir={}", work.display()),
        ])
        .build()
        .expect("every field of a mount is set")
}

fn capabilities(names: &[&str]) -> Result<oci_spec::runtime::Capabilities, Error> {
    names
        .iter()
        .map(|n| {
            serde_json::from_value::<Capability>(serde_json::Value::from(*n)).map_err(|_| {
                Error::Capability {
                    name: n.to_string(),
                }
            })
        })
        .collect()
}

fn spec_error(e: oci_spec::OciSpecError) -> Error {
    Error::Spec {
        reason: e.to_string(),
    }
}

/// The spec Docker (and BuildKit, for a RUN step) gives a process: its default
/// capabilities (none effective for a user other than root), the default seccomp
/// profile, new PID, mount, UTS and IPC namespaces (and network, for `Loopback`),
/// `/proc`, `/dev` (with `pts`, `shm` and `mqueue`) and a read-only `/sys`, and the
/// masked and read-only paths; `privileged` lifts the confinement as `--privileged` does.
pub fn default_spec(p: &ProcessSpec) -> Result<Spec, Error> {
    let all: Vec<String>;
    let bounding: Vec<&str> = if p.privileged {
        // Every capability this process may give: the kernel's, less what our own
        // bounding set lacks (a runner may itself be confined).
        all = caps::read(None, caps::CapSet::Bounding)
            .unwrap_or_default()
            .iter()
            .map(|c| c.to_string())
            .collect();
        all.iter().map(String::as_str).collect()
    } else {
        let mut set: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect();
        let drop: Vec<String> = p.cap_drop.iter().map(|c| cap_name(c)).collect();
        if drop.iter().any(|c| c == "CAP_ALL") {
            set.clear();
        }
        set.retain(|c| !drop.contains(c));
        for add in p.cap_add.iter().map(|c| cap_name(c)) {
            if add == "CAP_ALL" {
                set = caps::all().iter().map(|c| c.to_string()).collect();
            } else if !set.contains(&add) {
                set.push(add);
            }
        }
        all = set;
        all.iter().map(String::as_str).collect()
    };
    let held = if p.uid == 0 {
        bounding.clone()
    } else {
        Vec::new()
    };
    let caps = LinuxCapabilitiesBuilder::default()
        .bounding(capabilities(&bounding)?)
        .permitted(capabilities(&held)?)
        .effective(capabilities(&held)?)
        .inheritable(capabilities(&held)?)
        .ambient(capabilities(&[])?)
        .build()
        .map_err(spec_error)?;
    let process = ProcessBuilder::default()
        .args(p.args.clone())
        .env(p.env.clone())
        .cwd(&p.cwd)
        .user(
            UserBuilder::default()
                .uid(p.uid)
                .gid(p.gid)
                .additional_gids(p.groups.clone())
                .build()
                .map_err(spec_error)?,
        )
        .capabilities(caps)
        .no_new_privileges(p.no_new_privileges)
        .rlimits(
            p.rlimits
                .iter()
                .map(|(name, soft, hard)| {
                    let typ: oci_spec::runtime::PosixRlimitType = serde_json::from_value(
                        serde_json::Value::from(name.as_str()),
                    )
                    .map_err(|_| Error::Spec {
                        reason: format!("unknown resource limit {name}"),
                    })?;
                    oci_spec::runtime::PosixRlimitBuilder::default()
                        .typ(typ)
                        .soft(*soft)
                        .hard(*hard)
                        .build()
                        .map_err(spec_error)
                })
                .collect::<Result<Vec<_>, Error>>()?,
        )
        .build()
        .map_err(spec_error)?;

    let mut namespaces = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
    ];
    if p.network == Network::Loopback {
        namespaces.push(LinuxNamespaceType::Network);
    }
    if p.userns.is_some() {
        namespaces.push(LinuxNamespaceType::User);
    }
    let mut namespaces = namespaces
        .into_iter()
        .map(|t| LinuxNamespaceBuilder::default().typ(t).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(spec_error)?;
    if let Network::Join(path) = &p.network {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Network)
                .path(path.clone())
                .build()
                .map_err(spec_error)?,
        );
    }
    let mut linux = LinuxBuilder::default().namespaces(namespaces);
    if let Some((host, size)) = p.userns {
        let map = oci_spec::runtime::LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(host)
            .size(size)
            .build()
            .map_err(spec_error)?;
        linux = linux.uid_mappings(vec![map]).gid_mappings(vec![map]);
    }
    if let Some((path, resources)) = &p.cgroup {
        linux = linux
            .cgroups_path(std::path::PathBuf::from(path))
            .resources(resources.clone());
    }
    if !p.privileged {
        let held_names: Vec<String> = bounding.iter().map(|s| s.to_string()).collect();
        linux = linux
            .masked_paths(MASKED_PATHS.map(String::from).to_vec())
            .readonly_paths(READONLY_PATHS.map(String::from).to_vec());
        linux = match &p.seccomp {
            SeccompProfile::Default => linux.seccomp(crate::seccomp::default_seccomp(&held_names)?),
            SeccompProfile::Unconfined => linux,
            SeccompProfile::Docker(profile) => {
                linux.seccomp(crate::seccomp::from_profile(profile, &held_names)?)
            }
        };
    }
    let linux = linux.build().map_err(spec_error)?;

    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                // The tty group of Debian, Alpine and busybox images, as Docker mounts it.
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &[
                "nosuid",
                "noexec",
                "nodev",
                "mode=1777",
                &format!("size={}", p.shm_size.unwrap_or(64 << 20)),
            ],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
    ];
    if p.privileged {
        // The host's devices, as `--privileged` gives them.
        mounts[1] = bind_mount(Path::new("/dev"), Path::new("/dev"), false);
    }
    mounts.extend(p.mounts.iter().cloned());

    SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(p.readonly_root)
                .build()
                .map_err(spec_error)?,
        )
        .hostname(p.hostname.clone())
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .build()
        .map_err(spec_error)
}
