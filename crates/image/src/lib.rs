//! kiln's image layer: digests, media types, references, the OCI-layout content store,
//! layer tar writing and applying, and image archives (save/load/import).
//!
//! Depends on no other workspace crate; everything else in kiln stands on it.

pub mod archive;
pub mod attestation;
pub mod client;
pub mod digest;
mod error;
pub mod layer;
pub mod media;
pub mod platform;
pub mod reference;
pub mod signing;
pub mod store;
pub mod tree;

pub use error::{Error, Result};
pub use platform::Platform;
pub use reference::Reference;
