//! What a sandboxed process is: named after the OCI runtime spec's `process`, `root`,
//! `mounts`, `hostname` and `linux.namespaces`.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub process: Process,
    pub root: Root,
    pub hostname: String,
    /// Mounted in order after the root, `/proc`, `/dev` and `/sys`.
    pub mounts: Vec<Mount>,
    pub network: Network,
}

#[derive(Debug, Clone)]
pub struct Process {
    /// The program and its arguments; a program without `/` is looked up in the `PATH`
    /// of `env`, inside the root.
    pub args: Vec<String>,
    /// `KEY=VALUE` entries: the whole environment.
    pub env: Vec<String>,
    /// The working directory inside the root; created if missing, as Docker does.
    pub cwd: PathBuf,
    pub user: User,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

/// The root: read-only `lower` directories (topmost first) under a writable
/// `upper`, which collects every change the process makes. `work` is overlayfs' scratch
/// directory and `merged` the (empty) directory the root is mounted on; both must be on
/// the same filesystem as `upper`.
#[derive(Debug, Clone)]
pub struct Root {
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    pub snapshotter: Snapshotter,
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
}

#[derive(Debug, Clone)]
pub struct Mount {
    /// Inside the root.
    pub destination: PathBuf,
    pub kind: MountKind,
}

#[derive(Debug, Clone)]
pub enum MountKind {
    /// A host file or directory (a build context, a cache, a secret, `/etc/hosts`).
    Bind { source: PathBuf, readonly: bool },
    /// An overlay of `lower` (topmost first) under the writable `upper`; `work` is
    /// overlayfs' scratch directory on the same filesystem as `upper`.
    Overlay {
        lower: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
    },
    /// A fresh tmpfs, optionally limited in bytes.
    Tmpfs { size: Option<u64> },
}

/// `--network`: the host's network, or a namespace of its own with loopback only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Host,
    Loopback,
}
