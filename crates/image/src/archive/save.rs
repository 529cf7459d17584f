//! `kiln save`: one tar that is an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/`) and a docker-archive (`manifest.json` pointing at the same blobs), as
//! `docker save` writes since Docker 25. Entries are sorted and timeless, so saving the
//! same images twice gives the same bytes. Layers are saved as stored, or compressed on
//! request; a layer is compressed once, and the store remembers the result.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use oci_spec::image::{Descriptor, ImageIndex, MediaType};

use super::DockerManifestEntry;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layer::Compression;
use crate::store::images::{IMAGE_NAME, REF_NAME};
use crate::store::{ResolvedImage, Store};

/// Writes `images` (with the names to record for each) to `out`, their uncompressed
/// layers compressed with `compression` (gzip and zstd layers are kept as they are).
pub fn save<W: Write>(
    store: &Store,
    images: &[(ResolvedImage, Vec<crate::Reference>)],
    compression: Compression,
    out: W,
) -> Result<W> {
    let _guard = store.write_guard()?;
    let images: Vec<(ResolvedImage, &Vec<crate::Reference>)> = images
        .iter()
        .map(|(image, names)| Ok((store.compressed_image(image, compression)?, names)))
        .collect::<Result<_>>()?;
    let mut blobs: BTreeMap<String, Digest> = BTreeMap::new();
    let mut index = ImageIndex::default();
    index.set_media_type(Some(MediaType::ImageIndex));
    let mut entries = Vec::new();
    let mut docker = Vec::new();
    for (image, names) in &images {
        let m = &image.manifest;
        let mut manifest_desc = Descriptor::new(
            m.media_type().clone().unwrap_or(MediaType::ImageManifest),
            image.manifest_bytes.len() as u64,
            image.manifest_digest.clone(),
        );
        for d in std::iter::once(&image.manifest_digest)
            .chain([m.config().digest()])
            .chain(m.layers().iter().map(|l| l.digest()))
        {
            blobs.insert(blob_path(d), d.clone());
        }
        // A multi-platform image: index.json names its index, every platform the store
        // has saved too (manifest.json, which knows one image per name, has this host's).
        if crate::media::is_index(image.top.media_type().as_ref()) {
            let made = store.compressed_index(&image.top, compression)?;
            for entry in &made.manifests {
                let m: oci_spec::image::ImageManifest =
                    serde_json::from_slice(&store.read_blob(entry.digest())?)
                        .map_err(Error::json(format!("manifest {}", entry.digest())))?;
                for d in std::iter::once(entry.digest())
                    .chain([m.config().digest()])
                    .chain(m.layers().iter().map(|l| l.digest()))
                {
                    blobs.insert(blob_path(d), d.clone());
                }
            }
            blobs.insert(blob_path(made.index.digest()), made.index.digest().clone());
            manifest_desc = made.index;
        }
        if names.is_empty() {
            entries.push(manifest_desc.clone());
        }
        for name in names.iter() {
            let mut d = manifest_desc.clone();
            d.set_annotations(Some(HashMap::from([
                (REF_NAME.to_string(), name.familiar()),
                (IMAGE_NAME.to_string(), name.to_string()),
            ])));
            entries.push(d);
        }
        docker.push(DockerManifestEntry {
            config: blob_path(m.config().digest()),
            repo_tags: Some(
                names
                    .iter()
                    .filter(|n| n.tag.is_some())
                    .map(|n| n.familiar())
                    .collect(),
            ),
            layers: m.layers().iter().map(|l| blob_path(l.digest())).collect(),
        });
    }
    index.set_manifests(entries);
    let mut tar = tar::Builder::new(out);
    let index_json =
        serde_json::to_vec(&serde_json::to_value(&index).map_err(Error::json("index.json"))?)
            .map_err(Error::json("index.json"))?;
    let manifest_json = serde_json::to_vec(&docker).map_err(Error::json("manifest.json"))?;
    append_dir(&mut tar, "blobs/")?;
    append_dir(&mut tar, "blobs/sha256/")?;
    for (path, digest) in &blobs {
        let size = store.blob_size(digest)?;
        let file = store.open_blob(digest)?;
        append(&mut tar, path, size, file)?;
    }
    append(
        &mut tar,
        "index.json",
        index_json.len() as u64,
        index_json.as_slice(),
    )?;
    append(
        &mut tar,
        "manifest.json",
        manifest_json.len() as u64,
        manifest_json.as_slice(),
    )?;
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    append(&mut tar, "oci-layout", layout.len() as u64, &layout[..])?;
    tar.into_inner().map_err(Error::io("finish", "archive"))
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().as_ref(), d.digest())
}

fn header(size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(mode);
    h.set_entry_type(kind);
    h.set_mtime(0);
    h
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> Result<()> {
    let mut h = header(0, 0o755, tar::EntryType::Directory);
    tar.append_data(&mut h, path, std::io::empty())
        .map_err(Error::io("write archive entry", path))
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    data: impl std::io::Read,
) -> Result<()> {
    let mut h = header(size, 0o644, tar::EntryType::Regular);
    tar.append_data(&mut h, path, data)
        .map_err(Error::io("write archive entry", path))
}
