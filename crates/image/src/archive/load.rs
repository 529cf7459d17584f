//! `kiln load`: OCI layout tars (kiln, skopeo `oci-archive:`, umoci, docker ≥ 25) and
//! docker-archive tars (docker, podman, skopeo `docker-archive:`), plain or compressed.
//!
//! Blobs are streamed into the store as they come, each verified against its name where
//! it has one; tags are written only at the end, once every blob an image needs is in, so
//! a load that fails or is killed leaves no tag behind (the blobs it wrote are collected
//! by the next `kiln image prune`).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};

use super::DockerManifestEntry;
use crate::digest::{self, Digest};
use crate::error::{Error, Result};
use crate::layer::{Compression, Decompressor};
use crate::media;
use crate::reference::Reference;
use crate::store::images::{IMAGE_NAME, REF_NAME};
use crate::store::Store;

/// Metadata files are read into memory; nothing that size is a real metadata file.
const MAX_METADATA: u64 = 64 << 20;

/// What a load brought in.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Tags now pointing at loaded images.
    pub tags: Vec<Reference>,
    /// Images loaded without a name: their image IDs (config digests).
    pub untagged: Vec<Digest>,
}

/// Everything the archive held, by path.
#[derive(Default)]
struct Contents {
    /// Path → blob digest, for every file stored as a blob.
    blobs: HashMap<PathBuf, (Digest, u64)>,
    /// Small metadata files (`index.json`, `manifest.json`, legacy `*.json`).
    metadata: HashMap<PathBuf, Vec<u8>>,
    /// Symlinks (legacy docker-archives link repeated layers): path → target path.
    links: HashMap<PathBuf, PathBuf>,
}

impl Contents {
    fn blob(&self, path: &Path) -> Option<&(Digest, u64)> {
        let mut path = path.to_path_buf();
        for _ in 0..8 {
            if let Some(b) = self.blobs.get(&path) {
                return Some(b);
            }
            path = self.links.get(&path)?.clone();
        }
        None
    }
}

/// Loads an archive (`docker save`'s format or an OCI layout tar, plain or compressed)
/// from `reader` into `store`: every blob verified, the images tagged as the archive
/// names them; nothing is tagged if any part fails.
pub fn load(store: &Store, reader: impl Read) -> Result<Loaded> {
    let _guard = store.write_guard()?;
    let data = Decompressor::new(reader).map_err(Error::io("read", "archive"))?;
    let contents = read_entries(store, data)?;
    if let Some(index) = contents.metadata.get(Path::new("index.json")) {
        load_oci(store, index)
    } else if let Some(manifest) = contents.metadata.get(Path::new("manifest.json")) {
        load_docker(store, &contents, manifest)
    } else {
        Err(Error::InvalidImage {
            what: "archive".into(),
            reason: "neither an OCI layout (index.json) nor a docker-archive (manifest.json)"
                .into(),
        })
    }
}

fn read_entries(store: &Store, data: impl Read) -> Result<Contents> {
    let mut archive = tar::Archive::new(data);
    let mut contents = Contents::default();
    for entry in archive.entries().map_err(Error::io("read", "archive"))? {
        let mut entry = entry.map_err(Error::io("read", "archive"))?;
        let raw = entry
            .path()
            .map_err(Error::io("read", "archive"))?
            .into_owned();
        let path: PathBuf = raw
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Symlink => {
                if let Ok(Some(target)) = entry.link_name() {
                    let base = path.parent().unwrap_or(Path::new(""));
                    let resolved: PathBuf =
                        base.join(target)
                            .components()
                            .fold(PathBuf::new(), |mut acc, c| {
                                match c {
                                    Component::ParentDir => {
                                        acc.pop();
                                    }
                                    Component::Normal(p) => acc.push(p),
                                    _ => {}
                                }
                                acc
                            });
                    contents.links.insert(path, resolved);
                }
                continue;
            }
            _ => continue,
        }
        let name = path.to_string_lossy().into_owned();
        let named_digest = name
            .strip_prefix("blobs/")
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(alg, hex)| digest::parse(&format!("{alg}:{hex}")).ok());
        if let Some(expected) = named_digest {
            let stored = store
                .write_blob(&mut entry, Some(&expected))
                .map_err(|e| e.about(format!("archive entry {name}")))?;
            contents.blobs.insert(path, stored);
        } else if name.ends_with(".json")
            || name == "oci-layout"
            || name == "repositories"
            || name.ends_with("/json")
        {
            if entry.size() > MAX_METADATA {
                return Err(Error::InvalidImage {
                    what: format!("archive entry {name}"),
                    reason: "too large for a metadata file".into(),
                });
            }
            let mut buf = Vec::new();
            entry
                .read_to_end(&mut buf)
                .map_err(Error::io("read", &path))?;
            // Legacy archives name configs `<id>.json`; keep them as blobs too.
            let stored = (digest::sha256(&buf), buf.len() as u64);
            if name != "index.json" && name != "manifest.json" {
                store.write_blob_bytes(&buf)?;
                contents.blobs.insert(path.clone(), stored);
            }
            contents.metadata.insert(path, buf);
        } else {
            let stored = store.write_blob(&mut entry, None)?;
            contents.blobs.insert(path, stored);
        }
    }
    Ok(contents)
}

fn load_oci(store: &Store, index_bytes: &[u8]) -> Result<Loaded> {
    let index: ImageIndex =
        serde_json::from_slice(index_bytes).map_err(Error::json("archive index.json"))?;
    let mut loaded = Loaded::default();
    let mut plan = Vec::new();
    for entry in index.manifests() {
        check_complete(store, entry)?;
        let annotations = entry.annotations().clone().unwrap_or_default();
        let name = annotations
            .get(IMAGE_NAME)
            .or_else(|| annotations.get(REF_NAME).filter(|n| n.contains([':', '/'])))
            .and_then(|n| Reference::parse(n).ok());
        plan.push((entry.clone(), name));
    }
    for (entry, name) in plan {
        record(store, &entry, name, &mut loaded)?;
    }
    Ok(loaded)
}

fn load_docker(store: &Store, contents: &Contents, manifest_bytes: &[u8]) -> Result<Loaded> {
    let entries: Vec<DockerManifestEntry> =
        serde_json::from_slice(manifest_bytes).map_err(Error::json("archive manifest.json"))?;
    let missing = |p: &str| Error::InvalidImage {
        what: "docker-archive".into(),
        reason: format!("manifest.json names {p}, which the archive does not hold"),
    };
    let mut plan = Vec::new();
    for entry in &entries {
        let (config_digest, config_size) = contents
            .blob(Path::new(&entry.config))
            .ok_or_else(|| missing(&entry.config))?
            .clone();
        let config: ImageConfiguration = serde_json::from_slice(&store.read_blob(&config_digest)?)
            .map_err(Error::json(format!("config {}", entry.config)))?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != entry.layers.len() {
            return Err(Error::InvalidImage {
                what: format!("docker-archive image {}", entry.config),
                reason: format!(
                    "{} layers but the config lists {} diff_ids",
                    entry.layers.len(),
                    diff_ids.len()
                ),
            });
        }
        let mut layers = Vec::new();
        for (path, diff_id) in entry.layers.iter().zip(diff_ids) {
            let (digest, size) = contents
                .blob(Path::new(path))
                .ok_or_else(|| missing(path))?
                .clone();
            let mut head = [0u8; 4];
            let n = store
                .open_blob(&digest)?
                .read(&mut head)
                .map_err(Error::io("read blob", store.blob_path(&digest)))?;
            let compression = Compression::sniff(&head[..n]);
            if compression == Compression::None && digest.to_string() != *diff_id {
                return Err(Error::DigestMismatch {
                    what: format!("layer {path} (against the config's diff_id)"),
                    expected: diff_id.clone(),
                    actual: digest.to_string(),
                });
            }
            layers.push(Descriptor::new(
                MediaType::from(compression.media_type()),
                size,
                digest,
            ));
        }
        let config_desc = Descriptor::new(MediaType::ImageConfig, config_size, config_digest);
        let desc = store.write_manifest(config_desc, layers)?;
        let names: Vec<Reference> = entry
            .repo_tags
            .iter()
            .flatten()
            .filter_map(|t| Reference::parse(t).ok())
            .collect();
        plan.push((desc, names));
    }
    let mut loaded = Loaded::default();
    for (desc, names) in plan {
        if names.is_empty() {
            record(store, &desc, None, &mut loaded)?;
        }
        for name in names {
            record(store, &desc, Some(name), &mut loaded)?;
        }
    }
    Ok(loaded)
}

fn record(
    store: &Store,
    desc: &Descriptor,
    name: Option<Reference>,
    loaded: &mut Loaded,
) -> Result<()> {
    match name {
        Some(name) => {
            store.tag(&name, desc)?;
            loaded.tags.push(name);
        }
        None => {
            store.keep_untagged(desc)?;
            let image = store.read_image(desc, &[])?;
            loaded.untagged.push(image.id().clone());
        }
    }
    Ok(())
}

/// Every blob the entry needs is in the store: the manifest (or index and at least one
/// of its manifests), its config and its layers.
fn check_complete(store: &Store, entry: &Descriptor) -> Result<()> {
    let missing = |d: &Digest| Error::InvalidImage {
        what: "archive".into(),
        reason: format!("blob {d} is named but not included"),
    };
    if !store.has_blob(entry.digest()) {
        return Err(missing(entry.digest()));
    }
    let bytes = store.read_blob(entry.digest())?;
    if media::is_index(entry.media_type().as_ref()) {
        let index: ImageIndex = serde_json::from_slice(&bytes)
            .map_err(Error::json(format!("index {}", entry.digest())))?;
        let present: Vec<&Descriptor> = index
            .manifests()
            .iter()
            .filter(|m| store.has_blob(m.digest()))
            .collect();
        if present.is_empty() {
            return Err(Error::InvalidImage {
                what: format!("index {}", entry.digest()),
                reason: "none of its manifests is included".into(),
            });
        }
        return present
            .into_iter()
            .try_for_each(|m| check_complete(store, m));
    }
    let manifest: ImageManifest = serde_json::from_slice(&bytes)
        .map_err(Error::json(format!("manifest {}", entry.digest())))?;
    for d in std::iter::once(manifest.config().digest())
        .chain(manifest.layers().iter().map(|l| l.digest()))
    {
        if !store.has_blob(d) {
            return Err(missing(d));
        }
    }
    Ok(())
}
