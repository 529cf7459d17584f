//! kiln's runtime: runs the process of an OCI runtime spec (`oci_spec::runtime::Spec`)
//! in its own namespaces on a root made from layers (overlayfs, or copies), confined as
//! Docker confines a container: its default capabilities, its seccomp profile, masked
//! and read-only `/proc` paths, a read-only `/sys`, no device node but the standard set,
//! no descriptor of the caller. `kiln build` runs RUN steps with it, and `kiln run`
//! containers start from the same spec ([`default_spec`], then [`spawn`]).
//!
//! Around the sandbox:
//! - [`containers`]: what `kiln run` makes and its supervisor keeps — configuration,
//!   state, logs, the attach protocol;
//! - [`networks`]: bridge and macvlan networks (netlink, nftables, DNS), published ports;
//! - [`volumes`]: named and anonymous volumes;
//! - [`cgroups`]: limits and usage, cgroup v1 and v2 (libcgroups);
//! - [`bundles`]: OCI bundles and the state runc keeps, for `kiln runtime` (runc's command
//!   line);
//! - [`binfmt`]: which foreign platforms' programs the kernel runs (qemu-user-static);
//! - [`views`] and [`terminal`]: read-only views of layers, and pseudo-terminals.
//!
//! [`Error`] is the crate's one error type.

#![warn(missing_docs)]

pub mod allocator;
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
