//! What kiln's tests share, so no test file carries a copy: the `kiln` binary run against
//! a store of a test's own ([`Kiln`]), `kiln registry serve` on a free loopback port
//! ([`Registry`]), base images made from Debian's busybox-static, the corpus of real
//! Dockerfiles, a local S3 server ([`Moto`]), and the guards that skip a test off CI and
//! fail it on CI when root or a peer tool is missing ([`require_root!`],
//! [`require_tool!`]).
//!
//! A test file that runs containers, networks or builds starts with
//! [`private_network!`], so everything it starts lives in a network namespace of its own.

#![warn(missing_docs)]

mod corpus;
mod images;
mod kiln;
mod moto;
mod net;
mod registry;
mod require;
mod tools;

pub use corpus::corpus_files;
pub use images::{assert_blobs_intact, build_busybox, busybox, busybox_rootfs, context, flatten};
pub use kiln::{wait_for, Kiln};
pub use moto::{Bucket, Moto};
pub use net::enter_private_network;
pub use registry::{auth_config, code, digest, Registry};
pub use require::{have, root_or_skip};
pub use tools::{git, run_tool};
