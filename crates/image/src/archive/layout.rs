//! One image out of an OCI image layout directory (BuildKit's `oci-layout://PATH[:TAG]`
//! and `@DIGEST` named contexts): its blobs copied into the store, each checked against
//! its digest, and kept untagged — the layout's names are not the store's.

use std::path::Path;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::media;
use crate::store::images::REF_NAME;
use crate::store::Store;

/// Which image of the layout: by tag (its `ref.name`), by digest, or the only one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// The image whose `org.opencontainers.image.ref.name` is this.
    Tag(String),
    /// The image of this manifest or index digest.
    Digest(Digest),
    /// The layout's one image (an error when it has several).
    Only,
}

/// Copies the image `pick` names out of the layout at `dir` into `store`; returns its
/// descriptor (a manifest's or an index's), now an untagged image of the store.
pub fn load_from_layout(store: &Store, dir: &Path, pick: Pick) -> Result<Descriptor> {
    let index_path = dir.join("index.json");
    let bytes = std::fs::read(&index_path).map_err(Error::io("read", &index_path))?;
    let index: ImageIndex =
        serde_json::from_slice(&bytes).map_err(Error::json(index_path.display().to_string()))?;
    let entries = index.manifests();
    let chosen = match pick {
        Pick::Tag(tag) => entries.iter().find(|d| {
            d.annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .is_some_and(|n| *n == tag)
        }),
        Pick::Digest(digest) => entries.iter().find(|d| *d.digest() == digest),
        Pick::Only if entries.len() == 1 => entries.first(),
        Pick::Only => None,
    };
    let Some(top) = chosen.cloned() else {
        let names: Vec<String> = entries
            .iter()
            .map(|d| {
                d.annotations()
                    .as_ref()
                    .and_then(|a| a.get(REF_NAME).cloned())
                    .unwrap_or_else(|| d.digest().to_string())
            })
            .collect();
        return Err(Error::InvalidImage {
            what: format!("OCI layout {}", dir.display()),
            reason: format!(
                "name one of its images with :TAG or @DIGEST (it has: {})",
                names.join(", ")
            ),
        });
    };
    let _guard = store.write_guard()?;
    copy_image(store, dir, &top)?;
    store.keep_untagged(&top)?;
    Ok(top)
}

/// A manifest and its config and layers, or an index and the manifests of it the layout
/// has.
fn copy_image(store: &Store, dir: &Path, d: &Descriptor) -> Result<()> {
    copy_blob(store, dir, d.digest())?;
    let bytes = store.read_blob(d.digest())?;
    let media_type = d.media_type().to_string();
    if media::is_index(&media_type) {
        let index: ImageIndex =
            serde_json::from_slice(&bytes).map_err(Error::json(format!("index {}", d.digest())))?;
        for child in index.manifests() {
            if blob_path(dir, child.digest()).exists() {
                copy_image(store, dir, child)?;
            }
        }
    } else {
        let manifest: ImageManifest = serde_json::from_slice(&bytes)
            .map_err(Error::json(format!("manifest {}", d.digest())))?;
        for blob in std::iter::once(manifest.config()).chain(manifest.layers()) {
            copy_blob(store, dir, blob.digest())?;
        }
    }
    Ok(())
}

fn blob_path(dir: &Path, digest: &Digest) -> std::path::PathBuf {
    dir.join("blobs")
        .join(digest.algorithm().to_string())
        .join(digest.digest())
}

/// One blob into the store, checked against its digest.
fn copy_blob(store: &Store, dir: &Path, digest: &Digest) -> Result<()> {
    let path = blob_path(dir, digest);
    let mut file = std::fs::File::open(&path).map_err(Error::io("open", &path))?;
    store
        .write_blob(&mut file, Some(digest))
        .map_err(|e| e.about(path.display().to_string()))?;
    Ok(())
}
