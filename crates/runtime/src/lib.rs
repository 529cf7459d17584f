//! kiln's runtime: runs the process of an OCI runtime spec (`oci_spec::runtime::Spec`)
//! in its own namespaces on a root made from layers (overlayfs, or copies), confined as
//! Docker confines a container: its default capabilities, its seccomp profile, masked
//! and read-only `/proc` paths, a read-only `/sys`, no device node but the standard set,
//! no descriptor of the caller. `kiln build` runs RUN steps with it, and `kiln run`
//! containers (kept in [`containers`]) start from the same spec.

pub mod binfmt;
pub mod bundles;
mod capabilities;
pub mod cgroups;
pub mod containers;
mod copy_root;
mod error;
mod in_root;
mod network;
pub mod networks;
mod rootfs;
mod sandbox;
mod seccomp;
mod spec;
pub mod terminal;
mod userns;
pub mod views;
pub mod volumes;

pub use capabilities::known as known_capabilities;
pub use copy_root::{merge_layers, overlay_works};
pub use error::Error;
pub use oci_spec::runtime::Spec;
pub use rootfs::isolate_mounts;
pub use sandbox::{
    exec, exec_terminal, spawn, spawn_terminal, stop_all, Exit, Sandboxed, INIT_ANNOTATION,
};
pub use spec::{
    bind_mount, default_spec, overlay_mount, tmpfs_mount, Network, ProcessSpec, Rootfs,
    SeccompProfile, Snapshotter, DEFAULT_CAPABILITIES,
};
