//! kiln's runtime: runs a process in its own mount, PID, UTS and IPC namespaces (and,
//! asked, a network namespace with only loopback) on an overlay root filesystem, the way
//! `kiln build` runs RUN steps. Containers (`kiln run`) will be built on the same code.
//!
//! The configuration is shaped after the OCI runtime spec (process, root, mounts,
//! hostname, namespaces); only what builds need is there yet.

mod copy_root;
mod error;
mod mounts;
mod network;
mod sandbox;
mod spec;

pub use copy_root::{merge_layers, overlay_works};
pub use error::Error;
pub use mounts::isolate_mounts;
pub use sandbox::{spawn, Sandboxed};
pub use spec::{Mount, MountKind, Network, Process, Root, SandboxConfig, Snapshotter, User};
