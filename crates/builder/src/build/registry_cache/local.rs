//! A cache in a directory (`type=local`): an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/…`) holding the cache artifact. An export writes the blobs
//! first and `index.json` last, renamed into place, so a reader sees the old cache or
//! the new one whole; then the blobs the new one does not name go, so a CI cache
//! directory does not grow with every run.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use kiln_image::digest::Digest;
use kiln_image::store::Store;
use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, ImageManifest, MediaType};

use crate::Error;

/// What `index.json` names the cache, as `skopeo copy oci:DIR:kiln-build-cache` finds it.
const TAG: &str = "kiln-build-cache";

fn io<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> Error + 'p {
    move |source| {
        Error::Image(kiln_image::Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs")
        .join(digest.algorithm().to_string())
        .join(digest.digest())
}

/// Writes the cache `manifest` (`bytes`, its blobs all in `store`) as `dir`'s only image.
pub(super) fn write(
    dir: &Path,
    store: &Store,
    manifest: &ImageManifest,
    bytes: &[u8],
) -> Result<Digest, Error> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(io("create", &blobs))?;
    let mut kept = HashSet::new();
    for d in manifest.layers().iter().chain([manifest.config()]) {
        let to = blob_path(dir, d.digest());
        if !to.exists() {
            let from = store.blob_path(d.digest());
            let tmp = to.with_extension("part");
            std::fs::copy(&from, &tmp).map_err(io("copy", &from))?;
            std::fs::rename(&tmp, &to).map_err(io("rename", &to))?;
        }
        kept.insert(d.digest().digest().to_string());
    }
    let digest = kiln_image::digest::sha256(bytes);
    let to = blob_path(dir, &digest);
    write_whole(&to, bytes)?;
    kept.insert(digest.digest().to_string());
    write_whole(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let mut entry = Descriptor::new(MediaType::ImageManifest, bytes.len() as u64, digest.clone());
    entry.set_artifact_type(manifest.artifact_type().clone());
    entry.set_annotations(Some(
        [(
            kiln_image::store::images::REF_NAME.to_string(),
            TAG.to_string(),
        )]
        .into(),
    ));
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![entry])
        .build()
        .map_err(|e| Error::Cache {
            what: "cache index".into(),
            reason: e.to_string(),
        })?;
    let index = serde_json::to_vec(&index).map_err(|source| Error::Encode {
        what: "cache index",
        source,
    })?;
    write_whole(&dir.join("index.json"), &index)?;
    // The blobs of earlier exports that this one does not name.
    for old in std::fs::read_dir(&blobs)
        .map_err(io("read", &blobs))?
        .flatten()
    {
        if !kept.contains(old.file_name().to_string_lossy().as_ref()) {
            let _ = std::fs::remove_file(old.path());
        }
    }
    Ok(digest)
}

/// Writes `bytes` to a temporary file beside `path` and renames it into place.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, bytes).map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("rename", path))
}

/// The cache manifest `dir`'s `index.json` names, checked against its digest.
pub(super) fn manifest(dir: &Path) -> Result<ImageManifest, Error> {
    let path = dir.join("index.json");
    let text = std::fs::read(&path).map_err(io("read", &path))?;
    let index: ImageIndex = serde_json::from_slice(&text).map_err(|e| Error::Cache {
        what: path.display().to_string(),
        reason: format!("not an OCI index: {e}"),
    })?;
    let entry = index
        .manifests()
        .iter()
        .find(|d| kiln_image::media::is_manifest(d.media_type().as_ref()))
        .ok_or_else(|| Error::Cache {
            what: path.display().to_string(),
            reason: "names no manifest".into(),
        })?;
    let blob = blob_path(dir, entry.digest());
    let bytes = std::fs::read(&blob).map_err(io("read", &blob))?;
    if kiln_image::digest::sha256(&bytes) != *entry.digest() {
        return Err(Error::Cache {
            what: blob.display().to_string(),
            reason: format!("the manifest's bytes are not {}", entry.digest()),
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| Error::Cache {
        what: blob.display().to_string(),
        reason: format!("not a manifest: {e}"),
    })
}

/// One blob of the cache in `dir` into `store`, checked against its digest.
pub(super) fn fetch(dir: &Path, store: &Store, blob: &Descriptor) -> Result<(), Error> {
    let path = blob_path(dir, blob.digest());
    let mut file = std::fs::File::open(&path).map_err(io("open", &path))?;
    store.write_blob(&mut file, Some(blob.digest()))?;
    Ok(())
}
