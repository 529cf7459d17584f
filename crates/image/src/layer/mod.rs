//! Layers: a directory or a set of changes to a tar stream (deterministic, with OCI
//! whiteouts), compressed or not in the same pass; and a tar stream applied to a directory
//! without letting any entry escape it.

mod apply;
mod compress;
mod overlay;
mod write;

pub use apply::{apply, apply_snapshot, ApplyStats};
pub use compress::{Compressor, Decompressor};
pub use overlay::overlay_changes;
pub use write::{
    write_changes, write_changes_with, write_dir, Change, LayerInfo, LayerOptions, Placeholders,
};

pub use crate::compression::Compression;
