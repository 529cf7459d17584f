//! kiln's image layer: digests, media types, references, the OCI-layout content store,
//! layer tar writing and applying, and image archives (save/load/import).
//!
//! Depends on no other workspace crate; everything else in kiln stands on it. Without
//! its `full` feature (the default) it is only the names — digests, media types,
//! references, platforms, compressions — as the registry needs them: no store, no
//! compressors, no registry client.

#![warn(missing_docs)]

#[cfg(feature = "full")]
pub mod archive;
#[cfg(feature = "full")]
pub mod attestation;
#[cfg(feature = "full")]
pub mod client;
pub mod compression;
pub mod digest;
mod error;
#[cfg(feature = "full")]
pub mod layer;
pub mod media;
pub mod platform;
pub mod reference;
#[cfg(feature = "full")]
pub mod signing;
#[cfg(feature = "full")]
pub mod store;
#[cfg(feature = "full")]
pub mod tree;
pub mod writeback;

pub use error::{Error, Result};
pub use platform::Platform;
pub use reference::Reference;
