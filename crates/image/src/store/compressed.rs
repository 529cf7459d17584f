//! Remembered compressions: the gzip or zstd blob made once from an uncompressed layer,
//! found again by the layer's diffID so no layer is compressed twice.
//! `compressed/<gzip|zstd>/<diffID hex>` holds `{"digest": ..., "size": ...}`.

use std::collections::HashSet;
use std::path::PathBuf;

use oci_spec::image::{Descriptor, MediaType};

use super::gc::read_dir;
use super::{BlobWriter, ResolvedImage, Store};
use crate::digest::{self, Digest};
use crate::error::{Error, Result};
use crate::layer::{Compression, Compressor};

#[derive(serde::Serialize, serde::Deserialize)]
struct Remembered {
    digest: String,
    size: u64,
}

impl Store {
    fn compressed_path(&self, diff_id: &Digest, compression: Compression) -> PathBuf {
        self.root
            .join("compressed")
            .join(compression.name())
            .join(diff_id.digest())
    }

    /// The compressed blob made earlier from the layer `diff_id`, if it is still stored.
    pub fn compressed_variant(
        &self,
        diff_id: &Digest,
        compression: Compression,
    ) -> Option<(Digest, u64)> {
        let data = std::fs::read(self.compressed_path(diff_id, compression)).ok()?;
        let r: Remembered = serde_json::from_slice(&data).ok()?;
        let d = digest::parse(&r.digest).ok()?;
        self.has_blob(&d).then_some((d, r.size))
    }

    /// Records that the layer `diff_id` compressed as `compression` is blob `digest`
    /// (`size` bytes), so a second push or save compresses nothing.
    pub fn remember_compressed(
        &self,
        diff_id: &Digest,
        compression: Compression,
        digest: &Digest,
        size: u64,
    ) -> Result<()> {
        let path = self.compressed_path(diff_id, compression);
        let data = serde_json::to_vec(&Remembered {
            digest: digest.to_string(),
            size,
        })
        .map_err(Error::json("compressed"))?;
        self.write_file_atomically(&path, &data)
    }

    /// The image with its uncompressed layers replaced by compressed ones, under a
    /// manifest of its own; gzip and zstd layers stay as they are.
    pub fn compressed_image(
        &self,
        image: &ResolvedImage,
        compression: Compression,
    ) -> Result<ResolvedImage> {
        let uncompressed = |l: &Descriptor| {
            crate::media::layer_compression(l.media_type().as_ref()) == Some(Compression::None)
        };
        if compression == Compression::None || !image.manifest.layers().iter().any(uncompressed) {
            return Ok(image.clone());
        }
        let layers = self.compressed_layers(image.manifest.layers(), compression)?;
        let mut manifest = image.manifest.clone();
        manifest.set_layers(layers);
        manifest.set_media_type(Some(MediaType::ImageManifest));
        let bytes = serde_json::to_vec(&manifest).map_err(Error::json("manifest"))?;
        let digest = self.write_blob_bytes(&bytes)?;
        Ok(ResolvedImage {
            manifest_digest: digest,
            manifest,
            manifest_bytes: bytes,
            ..image.clone()
        })
    }

    /// `layers` with the uncompressed ones replaced by compressed ones (found where an
    /// earlier save or push left them, or made now, one thread per layer).
    pub fn compressed_layers(
        &self,
        layers: &[Descriptor],
        compression: Compression,
    ) -> Result<Vec<Descriptor>> {
        let done: Vec<Result<Descriptor>> = std::thread::scope(|s| {
            let jobs: Vec<_> = layers
                .iter()
                .map(|layer| {
                    s.spawn(move || {
                        let media = crate::media::layer_compression(layer.media_type().as_ref());
                        if media != Some(Compression::None) {
                            return Ok(layer.clone());
                        }
                        let (digest, size) = self.compress_layer(layer.digest(), compression)?;
                        Ok(Descriptor::new(
                            MediaType::from(compression.media_type()),
                            size,
                            digest,
                        ))
                    })
                })
                .collect();
            jobs.into_iter()
                .map(|j| j.join().expect("a compression thread"))
                .collect()
        });
        done.into_iter().collect()
    }

    /// The compressed blob of layer `diff_id`: the one remembered, or made and remembered.
    fn compress_layer(&self, diff_id: &Digest, compression: Compression) -> Result<(Digest, u64)> {
        if let Some(found) = self.compressed_variant(diff_id, compression) {
            return Ok(found);
        }
        let path = self.blob_path(diff_id);
        let mut compressor = Compressor::new(compression, BlobWriter::new(self)?)
            .map_err(Error::io("compress", &path))?;
        std::io::copy(&mut self.open_blob(diff_id)?, &mut compressor)
            .map_err(Error::io("compress", &path))?;
        let made = compressor
            .finish()
            .map_err(Error::io("compress", &path))?
            .commit(None)?;
        self.remember_compressed(diff_id, compression, &made.0, made.1)?;
        Ok(made)
    }

    /// A blob of layer `diff_id` in the store: the uncompressed tar, else a compressed
    /// form remembered for it (a layer that came from a registry cache).
    pub fn layer_blob(&self, diff_id: &Digest) -> Option<Descriptor> {
        if let Ok(size) = self.blob_size(diff_id) {
            return Some(Descriptor::new(
                MediaType::ImageLayer,
                size,
                diff_id.clone(),
            ));
        }
        [Compression::Gzip, Compression::Zstd]
            .into_iter()
            .find_map(|c| {
                let (digest, size) = self.compressed_variant(diff_id, c)?;
                Some(Descriptor::new(
                    MediaType::from(c.media_type()),
                    size,
                    digest,
                ))
            })
    }

    /// The compressed blobs of reachable layers (kept by gc); forgets the rest.
    pub(super) fn compressed_reachable(&self, reachable: &HashSet<String>) -> Result<Vec<String>> {
        let mut keep = Vec::new();
        for dir in read_dir(&self.root.join("compressed"))? {
            for file in read_dir(&dir)? {
                let diff_id = format!(
                    "sha256:{}",
                    file.file_name().unwrap_or_default().to_string_lossy()
                );
                let target = std::fs::read(&file)
                    .ok()
                    .and_then(|d| serde_json::from_slice::<Remembered>(&d).ok());
                match target {
                    Some(t) if reachable.contains(&diff_id) => keep.push(t.digest),
                    _ => std::fs::remove_file(&file).map_err(Error::io("remove", &file))?,
                }
            }
        }
        Ok(keep)
    }
}

/// A multi-platform image made again for a registry or an archive (see
/// [`Store::compressed_index`]).
pub struct CompressedIndex {
    /// The new index, in the store, and its bytes.
    pub index: Descriptor,
    /// The index's bytes, as stored.
    pub bytes: Vec<u8>,
    /// Its entries: each platform's image, then each attestation about one of them.
    pub manifests: Vec<Descriptor>,
    /// The original's entries the store lacks (a base pulled for one platform).
    pub left_out: Vec<Descriptor>,
}

impl Store {
    /// The index `top` names with each platform's image the store has compressed with
    /// `compression` (so each gets another manifest), each attestation made again about
    /// the image as it now is, and the platforms the store lacks left out.
    pub fn compressed_index(
        &self,
        top: &Descriptor,
        compression: Compression,
    ) -> Result<CompressedIndex> {
        use crate::attestation;
        let mut index: oci_spec::image::ImageIndex =
            serde_json::from_slice(&self.read_blob(top.digest())?)
                .map_err(Error::json(format!("index {}", top.digest())))?;
        let (present, left_out): (Vec<Descriptor>, Vec<Descriptor>) = index
            .manifests()
            .iter()
            .cloned()
            .partition(|d| self.has_blob(d.digest()));
        let (attestations, images): (Vec<Descriptor>, Vec<Descriptor>) =
            present.into_iter().partition(attestation::is_attestation);
        let mut manifests = Vec::new();
        // Each image manifest as it was → as it is now, for the attestations about it.
        let mut made_as: Vec<(Digest, Descriptor)> = Vec::new();
        for d in images
            .iter()
            .filter(|d| crate::media::is_manifest(d.media_type().as_ref()))
        {
            let image = self.compressed_image(&self.read_image(d, &[])?, compression)?;
            let mut entry = Descriptor::new(
                image
                    .manifest
                    .media_type()
                    .clone()
                    .unwrap_or(MediaType::ImageManifest),
                image.manifest_bytes.len() as u64,
                image.manifest_digest.clone(),
            );
            entry.set_platform(d.platform().clone());
            entry.set_annotations(d.annotations().clone());
            made_as.push((d.digest().clone(), entry.clone()));
            manifests.push(entry);
        }
        for d in &attestations {
            let about = attestation::subject_of(d);
            if let Some((old, new)) = about.and_then(|a| made_as.iter().find(|(o, _)| *o == a)) {
                manifests.push(attestation::rebind(self, d, old, new)?);
            }
        }
        index.set_manifests(manifests.clone());
        index.set_media_type(Some(MediaType::ImageIndex));
        let bytes = serde_json::to_vec(&index).map_err(Error::json("index"))?;
        let digest = self.write_blob_bytes(&bytes)?;
        Ok(CompressedIndex {
            index: Descriptor::new(MediaType::ImageIndex, bytes.len() as u64, digest),
            bytes,
            manifests,
            left_out,
        })
    }
}
