//! Images in the store: tags, lookup by name or ID, and what an image is made of.

use std::collections::HashMap;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use super::Store;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::media;
use crate::platform::Platform;
use crate::reference::Reference;

/// The OCI annotation that names a tag in an image layout; kiln stores the familiar form
/// (`app:1`) so `skopeo copy oci:STORE:app:1` finds it.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The full normalised name (`docker.io/library/app:1`), as containerd records it.
pub const IMAGE_NAME: &str = "io.containerd.image.name";

/// One entry of the index: a tagged image, or an untagged one kept until pruned.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    /// Its name, None for an untagged image.
    pub reference: Option<Reference>,
    /// Its manifest or index.
    pub descriptor: Descriptor,
}

/// An image read from the store: its manifest and config, parsed and as stored.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The digest of the manifest (for a multi-platform image, of the platform's manifest).
    pub manifest_digest: Digest,
    /// The manifest, parsed.
    pub manifest: ImageManifest,
    /// The manifest's bytes, as stored (its digest is over them).
    pub manifest_bytes: Vec<u8>,
    /// The config, parsed.
    pub config: ImageConfiguration,
    /// The config's bytes, as stored.
    pub config_bytes: Vec<u8>,
    /// The index entry the image was found through (its manifest or index).
    pub top: Descriptor,
    /// Every tag that names the same top-level manifest or index.
    pub tags: Vec<Reference>,
}

impl ResolvedImage {
    /// Docker's image ID: the config digest.
    pub fn id(&self) -> &Digest {
        self.manifest.config().digest()
    }
}

impl Store {
    /// Every entry of the store's index, tagged and untagged.
    pub fn records(&self) -> Result<Vec<ImageRecord>> {
        Ok(self.index()?.manifests().iter().map(record).collect())
    }

    /// Points `reference` at `descriptor` (a manifest or index whose blobs are all in the
    /// store). An image that loses its last tag stays as an untagged entry, as in Docker.
    pub fn tag(&self, reference: &Reference, descriptor: &Descriptor) -> Result<()> {
        let mut entry = Descriptor::new(
            descriptor.media_type().clone(),
            descriptor.size(),
            descriptor.digest().clone(),
        );
        entry.set_annotations(Some(HashMap::from([
            (REF_NAME.to_string(), reference.familiar()),
            (IMAGE_NAME.to_string(), reference.to_string()),
        ])));
        self.update_index(|index| {
            let mut entries = index.manifests().clone();
            entries.retain(|d| ref_name(d).as_deref() != Some(reference.familiar().as_str()));
            // The new tag replaces an untagged entry of the same image.
            entries.retain(|d| ref_name(d).is_some() || d.digest() != descriptor.digest());
            entries.push(entry);
            keep_untagged(index, &mut entries);
            index.set_manifests(entries);
            Ok(())
        })
    }

    /// Writes an OCI image manifest for `config` and `layers` (all in the store already)
    /// and returns its descriptor, ready to tag.
    pub fn write_manifest(
        &self,
        config: Descriptor,
        layers: Vec<Descriptor>,
    ) -> Result<Descriptor> {
        self.write_annotated_manifest(config, layers, HashMap::new())
    }

    /// [`Store::write_manifest`] with the manifest's `annotations` (none: no field).
    pub fn write_annotated_manifest(
        &self,
        config: Descriptor,
        layers: Vec<Descriptor>,
        annotations: HashMap<String, String>,
    ) -> Result<Descriptor> {
        let mut builder = oci_spec::image::ImageManifestBuilder::default();
        if !annotations.is_empty() {
            builder = builder.annotations(annotations);
        }
        let manifest = builder
            .schema_version(2u32)
            .media_type(oci_spec::image::MediaType::ImageManifest)
            .config(config)
            .layers(layers)
            .build()
            .map_err(|e| Error::InvalidImage {
                what: "manifest".into(),
                reason: e.to_string(),
            })?;
        let bytes = serde_json::to_vec(&manifest).map_err(Error::json("manifest"))?;
        let digest = self.write_blob_bytes(&bytes)?;
        Ok(Descriptor::new(
            oci_spec::image::MediaType::ImageManifest,
            bytes.len() as u64,
            digest,
        ))
    }

    /// Writes an OCI image index of `entries` (manifests in the store, each with its
    /// platform set) and returns its descriptor, ready to tag.
    pub fn write_index_entries(&self, entries: &[Descriptor]) -> Result<Descriptor> {
        let entries = entries.to_vec();
        let index = oci_spec::image::ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(oci_spec::image::MediaType::ImageIndex)
            .manifests(entries)
            .build()
            .map_err(|e| Error::InvalidImage {
                what: "index".into(),
                reason: e.to_string(),
            })?;
        let bytes = serde_json::to_vec(&index).map_err(Error::json("index"))?;
        let digest = self.write_blob_bytes(&bytes)?;
        Ok(Descriptor::new(
            oci_spec::image::MediaType::ImageIndex,
            bytes.len() as u64,
            digest,
        ))
    }

    /// Keeps `descriptor` as an untagged image (a `kiln load` of an image without a name),
    /// unless an entry for it exists already.
    pub fn keep_untagged(&self, descriptor: &Descriptor) -> Result<()> {
        self.update_index(|index| {
            let mut entries = index.manifests().clone();
            if !entries.iter().any(|d| d.digest() == descriptor.digest()) {
                entries.push(Descriptor::new(
                    descriptor.media_type().clone(),
                    descriptor.size(),
                    descriptor.digest().clone(),
                ));
            }
            index.set_manifests(entries);
            Ok(())
        })
    }

    /// Removes a tag; returns the descriptor it named. The image stays as an untagged entry
    /// unless `drop_untagged`.
    pub fn untag(&self, reference: &Reference, drop_untagged: bool) -> Result<Option<Descriptor>> {
        self.update_index(|index| {
            let mut entries = index.manifests().clone();
            let found = entries
                .iter()
                .position(|d| ref_name(d).as_deref() == Some(reference.familiar().as_str()));
            let removed = found.map(|i| entries.remove(i));
            if !drop_untagged {
                keep_untagged(index, &mut entries);
            }
            index.set_manifests(entries);
            Ok(removed)
        })
    }

    /// Drops index entries for which `drop` is true (their blobs go at the next `gc`).
    pub fn remove_records(&self, drop: impl Fn(&ImageRecord) -> bool) -> Result<Vec<ImageRecord>> {
        self.update_index(|index| {
            let (gone, kept): (Vec<Descriptor>, Vec<Descriptor>) = index
                .manifests()
                .iter()
                .cloned()
                .partition(|d| drop(&record(d)));
            index.set_manifests(kept);
            Ok(gone.iter().map(record).collect())
        })
    }

    /// Finds an image by tag (`app`, `app:1`, `docker.io/library/app:1`), by
    /// `name@digest`, by manifest digest, or by image ID (config digest, full or a
    /// unique prefix of at least 4 hex digits, with or without `sha256:`).
    pub fn resolve(&self, name: &str) -> Result<ResolvedImage> {
        let records = self.records()?;
        let by_tag = Reference::parse(name).ok().and_then(|r| {
            if let Some(d) = &r.digest {
                return records
                    .iter()
                    .find(|rec| rec.descriptor.digest() == d)
                    .cloned();
            }
            records
                .iter()
                .find(|rec| {
                    rec.reference
                        .as_ref()
                        .is_some_and(|t| t.familiar() == r.familiar())
                })
                .cloned()
        });
        if let Some(rec) = by_tag {
            return self.read_image(&rec.descriptor, &records);
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.len() >= 4 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            let mut found: Vec<ResolvedImage> = Vec::new();
            for rec in &records {
                let Ok(image) = self.read_image(&rec.descriptor, &records) else {
                    continue;
                };
                let matches = image.id().digest().starts_with(hex)
                    || rec.descriptor.digest().digest().starts_with(hex);
                if matches && !found.iter().any(|f| f.top.digest() == image.top.digest()) {
                    found.push(image);
                }
            }
            match found.len() {
                0 => {}
                1 => return Ok(found.remove(0)),
                _ => {
                    return Err(Error::Conflict(format!(
                        "{name} matches more than one image: give more of the ID"
                    )))
                }
            }
        }
        Err(Error::ImageNotFound(name.to_string()))
    }

    /// [`Store::resolve`] for one platform: the manifest for it from an index, or a
    /// single image whose config says it is for it.
    pub fn resolve_for(&self, name: &str, platform: &Platform) -> Result<ResolvedImage> {
        let image = self.resolve(name)?;
        self.read_image_choosing(&image.top, &self.records()?, Some((name, platform)))
    }

    /// Reads the manifest (choosing this host's platform from an index, else the first
    /// present) and config.
    pub fn read_image(&self, top: &Descriptor, records: &[ImageRecord]) -> Result<ResolvedImage> {
        self.read_image_choosing(top, records, None)
    }

    /// The platforms of the image `top` names, each with whether the store has it.
    pub fn platforms(&self, top: &Descriptor) -> Result<Vec<(Platform, bool)>> {
        if media::is_index(top.media_type().as_ref()) {
            let index: ImageIndex = serde_json::from_slice(&self.read_blob(top.digest())?)
                .map_err(Error::json(format!("index {}", top.digest())))?;
            return Ok(index
                .manifests()
                .iter()
                .filter(|d| {
                    media::is_manifest(d.media_type().as_ref())
                        && !crate::attestation::is_attestation(d)
                })
                .filter_map(|d| Platform::of_descriptor(d).map(|p| (p, self.has_blob(d.digest()))))
                .collect());
        }
        let image = self.read_image(top, &[])?;
        Ok(vec![(Platform::of_config(&image.config), true)])
    }

    /// Reads the manifest and config: from an index, the one for `wanted`'s platform
    /// (an error naming the image when it has none), else this host's or the first
    /// present.
    fn read_image_choosing(
        &self,
        top: &Descriptor,
        records: &[ImageRecord],
        wanted: Option<(&str, &Platform)>,
    ) -> Result<ResolvedImage> {
        let mut manifest_digest = top.digest().clone();
        let mut bytes = self.read_blob(&manifest_digest)?;
        let no_platform = |offered: Vec<Platform>| {
            let (name, platform) = wanted.expect("only asked for one platform");
            Error::NoPlatform {
                image: name.to_string(),
                platform: platform.to_string(),
                offered: offered
                    .iter()
                    .map(Platform::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        };
        let from_index = media::is_index(top.media_type().as_ref());
        if from_index {
            let index: ImageIndex = serde_json::from_slice(&bytes)
                .map_err(Error::json(format!("index {manifest_digest}")))?;
            let present = |d: &Descriptor| self.has_blob(d.digest());
            let chosen = match wanted {
                None => choose_platform(&index, present).ok_or_else(|| Error::InvalidImage {
                    what: format!("image index {manifest_digest}"),
                    reason: format!("no manifest for {} in the store", host_platform()),
                })?,
                Some((_, platform)) => index
                    .manifests()
                    .iter()
                    .filter(|d| media::is_manifest(d.media_type().as_ref()) && present(d))
                    .find(|d| Platform::of_descriptor(d).is_some_and(|p| platform.accepts(&p)))
                    .ok_or_else(|| {
                        no_platform(
                            index
                                .manifests()
                                .iter()
                                .filter(|d| present(d))
                                .filter_map(Platform::of_descriptor)
                                .collect(),
                        )
                    })?,
            };
            manifest_digest = chosen.digest().clone();
            bytes = self.read_blob(&manifest_digest)?;
        }
        let manifest: ImageManifest = serde_json::from_slice(&bytes)
            .map_err(Error::json(format!("manifest {manifest_digest}")))?;
        let config_bytes = self.read_blob(manifest.config().digest())?;
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes).map_err(
            Error::json(format!("config {}", manifest.config().digest())),
        )?;
        if let (Some((_, platform)), false) = (wanted, from_index) {
            let own = Platform::of_config(&config);
            if !platform.accepts(&own) {
                return Err(no_platform(vec![own]));
            }
        }
        let tags = records
            .iter()
            .filter(|r| r.descriptor.digest() == top.digest())
            .filter_map(|r| r.reference.clone())
            .collect();
        Ok(ResolvedImage {
            manifest_digest,
            manifest,
            manifest_bytes: bytes,
            config,
            config_bytes,
            top: top.clone(),
            tags,
        })
    }
}

fn record(d: &Descriptor) -> ImageRecord {
    let reference = d
        .annotations()
        .as_ref()
        .and_then(|a| a.get(IMAGE_NAME).or_else(|| a.get(REF_NAME)))
        .and_then(|name| Reference::parse(name).ok());
    ImageRecord {
        reference,
        descriptor: d.clone(),
    }
}

fn ref_name(d: &Descriptor) -> Option<String> {
    d.annotations()
        .as_ref()
        .and_then(|a| a.get(REF_NAME))
        .cloned()
}

/// Any image the old index had that `entries` no longer names at all is kept untagged.
fn keep_untagged(old: &ImageIndex, entries: &mut Vec<Descriptor>) {
    for d in old.manifests() {
        if !entries.iter().any(|e| e.digest() == d.digest()) {
            entries.push(Descriptor::new(
                d.media_type().clone(),
                d.size(),
                d.digest().clone(),
            ));
        }
    }
}

/// `linux/amd64`, `linux/arm64`, ... in Go's names, as image platforms use them.
pub fn host_platform() -> String {
    Platform::host().to_string()
}

/// The manifest for this host's platform, else the first one present.
pub(crate) fn choose_platform(
    index: &ImageIndex,
    present: impl Fn(&Descriptor) -> bool,
) -> Option<&Descriptor> {
    let host = host_platform();
    let candidates: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| {
            media::is_manifest(d.media_type().as_ref())
                && !crate::attestation::is_attestation(d)
                && present(d)
        })
        .collect();
    candidates
        .iter()
        .find(|d| {
            d.platform()
                .as_ref()
                .is_some_and(|p| format!("{}/{}", p.os(), p.architecture()) == host)
        })
        .or(candidates.first())
        .copied()
}
