//! Image archives: `kiln save` (one tar that is both an OCI layout and a docker-archive),
//! `kiln load` (either kind, from docker, podman, skopeo or kiln) and `kiln import` (a
//! root filesystem tarball as a one-layer image).

mod import;
mod layout;
mod load;
mod save;

pub use import::{import, ImportOptions};
pub use layout::{load_from_layout, Pick};
pub use load::{load, Loaded};
pub use save::save;

/// The paths of a docker-archive's `manifest.json` entry.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}
