//! The build cache in a registry (`--cache-to` / `--cache-from type=registry`), or in a
//! directory (`type=local`: an OCI image layout, which a CI system saves and restores
//! between jobs as BuildKit's local cache), so a runner that starts with an empty store
//! still gets cache hits.
//!
//! The cache is an OCI artifact: an image manifest of artifactType [`ARTIFACT_TYPE`]
//! whose config lists each step's cache key and the layer the step made, and whose
//! layers are those layers compressed as a push compresses them: the very blobs the
//! image pushed with `--push` holds, so the registry keeps them once. An import reads
//! the manifest and config up front; a layer is downloaded only when a step hits it, and
//! unpacked only when a step that misses runs on it, where its diffID is checked.

mod local;

use std::collections::HashMap;
use std::path::PathBuf;

use kiln_image::client::Registry;
use kiln_image::digest::{DiffId, Digest};
use kiln_image::layer::Compression;
use kiln_image::store::Store;
use kiln_image::Reference;
use oci_spec::image::{Descriptor, ImageManifest, ImageManifestBuilder, MediaType};

use super::cache::{CacheKey, Record};
use crate::Error;

/// The artifact type of a kiln build cache manifest (OCI 1.1 `artifactType`).
pub const ARTIFACT_TYPE: &str = "application/vnd.kiln.build-cache.v1";
/// The media type of its config: the steps' records.
pub const CONFIG_TYPE: &str = "application/vnd.kiln.build-cache.config.v1+json";

/// Which steps an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The steps of the image built (its stage and the stages it is built FROM).
    Min,
    /// The steps of every stage the build ran.
    Max,
}

/// Where a cache lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLocation {
    /// `type=registry,ref=REF`: an artifact in a registry.
    Registry(Reference),
    /// `type=local,dest=DIR` / `src=DIR`: an OCI image layout in a directory.
    Local(PathBuf),
}

impl std::fmt::Display for CacheLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheLocation::Registry(r) => write!(f, "{r}"),
            CacheLocation::Local(dir) => write!(f, "{}", dir.display()),
        }
    }
}

/// A `--cache-to` or `--cache-from` value:
/// `type=registry,ref=REF[,mode=min|max][,compression=gzip|zstd][,ignore-error=true]` or
/// `type=local,dest=DIR` (`src=DIR` to read it); a bare `REF` means
/// `type=registry,ref=REF`, as `docker build --cache-from` takes it.
#[derive(Debug, Clone)]
pub struct CacheRef {
    /// Where the cache is.
    pub location: CacheLocation,
    /// Which steps an export holds (`mode=`, min by default).
    pub mode: Mode,
    /// How an export's layers are compressed (`compression=`, gzip by default).
    pub compression: Compression,
    /// An export that fails is reported and the build still succeeds.
    pub ignore_error: bool,
}

impl std::str::FromStr for CacheRef {
    type Err = Error;

    fn from_str(spec: &str) -> Result<CacheRef, Error> {
        let bad = |reason: String| Error::CacheOption {
            spec: spec.to_string(),
            reason,
        };
        let mut reference = None;
        let mut dir = None;
        let mut local = false;
        let mut mode = Mode::Min;
        let mut compression = Compression::Gzip;
        let mut ignore_error = false;
        if !spec.contains('=') {
            reference = Some(spec.to_string());
        }
        for field in spec.split(',').filter(|_| spec.contains('=')) {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| bad(format!("{field:?} is not KEY=VALUE")))?;
            match key.trim() {
                "type" if value == "registry" => {}
                "type" if value == "local" => local = true,
                "type" => {
                    return Err(bad(format!(
                        "type {value:?} is not supported: share the cache through a \
                         registry (type=registry) or a directory (type=local)"
                    )))
                }
                "ref" => reference = Some(value.to_string()),
                "dest" | "src" => dir = Some(PathBuf::from(value)),
                "mode" => {
                    mode = match value {
                        "min" => Mode::Min,
                        "max" => Mode::Max,
                        _ => return Err(bad(format!("mode {value:?}: use min or max"))),
                    }
                }
                "compression" => compression = value.parse().map_err(bad)?,
                "ignore-error" => {
                    ignore_error = value
                        .parse()
                        .map_err(|_| bad(format!("ignore-error={value}: use true or false")))?
                }
                // BuildKit's options that mean nothing here.
                "oci-mediatypes" | "image-manifest" | "compression-level" | "force-compression" => {
                }
                other => {
                    return Err(bad(format!(
                        "unknown key {other:?} (known: type, ref, dest, src, mode, compression, ignore-error)"
                    )))
                }
            }
        }
        let location = if local {
            CacheLocation::Local(dir.ok_or_else(|| bad("no dest=DIR (src=DIR to read)".into()))?)
        } else {
            let reference =
                reference.ok_or_else(|| bad("no ref=REGISTRY/REPOSITORY:TAG".into()))?;
            CacheLocation::Registry(Reference::parse(&reference)?)
        };
        Ok(CacheRef {
            location,
            mode,
            compression,
            ignore_error,
        })
    }
}

/// The artifact's config.
#[derive(serde::Serialize, serde::Deserialize)]
struct CacheConfig {
    records: Vec<Entry>,
    /// The diffIDs of the manifest's layers, in order.
    #[serde(rename = "diffIDs")]
    diff_ids: Vec<DiffId>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    key: CacheKey,
    /// The step's layer (an index into the manifest's layers); none when it changed no file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layer: Option<usize>,
    /// The key the build goes on with (see [`Record::then`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    then: Option<CacheKey>,
}

/// A step the build went through, hit or made, as an export records it.
#[derive(Debug, Clone)]
pub struct Step {
    /// The step's cache key.
    pub key: CacheKey,
    /// What the key gave: the layer and config, or the next key.
    pub record: Record,
}

/// Builds the artifact from `steps` and writes it to `to.location`; returns its digest.
pub fn export(
    store: &Store,
    to: &CacheRef,
    steps: &[Step],
    report: &dyn kiln_image::client::Report,
) -> Result<Digest, Error> {
    let mut diff_ids: Vec<DiffId> = Vec::new();
    let mut records = Vec::new();
    for step in steps {
        let layer = step.record.diff_id.as_ref().map(|d| {
            diff_ids.iter().position(|x| x == d).unwrap_or_else(|| {
                diff_ids.push(d.clone());
                diff_ids.len() - 1
            })
        });
        if !records.iter().any(|e: &Entry| e.key == step.key) {
            records.push(Entry {
                key: step.key,
                layer,
                then: step.record.then,
            });
        }
    }
    // A layer built here is an uncompressed tar, compressed now (or found compressed by
    // an earlier push); one that came from a registry cache is there compressed already.
    let mut stored = Vec::new();
    for d in &diff_ids {
        stored.push(store.layer_blob(d.digest()).ok_or_else(|| Error::Cache {
            what: format!("layer {d} of a cached step"),
            reason: "no longer in the store (run the build again)".into(),
        })?);
    }
    let layers = store.compressed_layers(&stored, to.compression)?;
    let config =
        serde_json::to_vec(&CacheConfig { records, diff_ids }).map_err(|source| Error::Encode {
            what: "cache config",
            source,
        })?;
    let config_digest = store.write_blob_bytes(&config)?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .artifact_type(MediaType::Other(ARTIFACT_TYPE.into()))
        .config(Descriptor::new(
            MediaType::Other(CONFIG_TYPE.into()),
            config.len() as u64,
            config_digest,
        ))
        .layers(layers)
        .build()
        .map_err(|e| Error::Cache {
            what: "cache manifest".into(),
            reason: e.to_string(),
        })?;
    let bytes = serde_json::to_vec(&manifest).map_err(|source| Error::Encode {
        what: "cache manifest",
        source,
    })?;
    match &to.location {
        CacheLocation::Registry(reference) => {
            let registry = Registry::new(&reference.domain)?;
            let pushed = kiln_image::client::push_manifest(
                &registry,
                store,
                reference,
                &manifest,
                &bytes,
                kiln_image::media::OCI_MANIFEST,
                report,
            )?;
            Ok(pushed.digest)
        }
        CacheLocation::Local(dir) => local::write(dir, store, &manifest, &bytes),
    }
}

/// Where an imported cache's blobs come from.
enum Origin {
    /// A registry client is large; one per imported cache, boxed.
    Registry {
        registry: Box<Registry>,
        reference: Reference,
    },
    Local(PathBuf),
}

impl Origin {
    /// One blob into the store, checked against its digest.
    fn fetch(&self, store: &Store, blob: &Descriptor) -> Result<(), Error> {
        match self {
            Origin::Registry {
                registry,
                reference,
            } => Ok(kiln_image::client::fetch_blob(
                registry, store, reference, blob,
            )?),
            Origin::Local(dir) => local::fetch(dir, store, blob),
        }
    }
}

/// One imported cache: where it lives, and its layers.
struct Source {
    origin: Origin,
    location: CacheLocation,
    layers: Vec<Descriptor>,
    diff_ids: Vec<DiffId>,
}

/// The caches `--cache-from` names, read and ready to give records.
#[derive(Default)]
pub struct RemoteCache {
    sources: Vec<Source>,
    /// Cache key → the source that has it, and its entry; the first cache naming a
    /// key wins.
    entries: HashMap<CacheKey, (usize, Entry)>,
}

impl RemoteCache {
    /// Reads the manifest and config of `from`'s cache into `self`. A cache that cannot
    /// be read fails only this import: the build goes on without it, as BuildKit's does.
    pub fn import(&mut self, store: &Store, from: &CacheRef) -> Result<usize, Error> {
        let (origin, manifest) = match &from.location {
            CacheLocation::Registry(reference) => {
                let registry = Registry::new(&reference.domain)?;
                let (manifest, _) = kiln_image::client::fetch_image_manifest(&registry, reference)?;
                let origin = Origin::Registry {
                    registry: Box::new(registry),
                    reference: reference.clone(),
                };
                (origin, manifest)
            }
            CacheLocation::Local(dir) => (Origin::Local(dir.clone()), local::manifest(dir)?),
        };
        let config = read_config(&origin, store, &from.location, &manifest)?;
        let source = self.sources.len();
        let layer_count = manifest.layers().len();
        let mut added = 0;
        for e in config.records {
            if e.layer
                .is_some_and(|l| l >= layer_count || l >= config.diff_ids.len())
            {
                return Err(Error::Cache {
                    what: from.location.to_string(),
                    reason: format!(
                        "the cache names layer {:?} of {layer_count}",
                        e.layer.unwrap_or_default()
                    ),
                });
            }
            if let std::collections::hash_map::Entry::Vacant(v) = self.entries.entry(e.key) {
                v.insert((source, e));
                added += 1;
            }
        }
        self.sources.push(Source {
            origin,
            location: from.location.clone(),
            layers: manifest.layers().clone(),
            diff_ids: config.diff_ids,
        });
        Ok(added)
    }

    /// The record for `key`, its layer downloaded (verified against its digest) and
    /// remembered as the compressed form of its diffID, as the cache names it: it is
    /// unpacked only if a later step needs it. None when no imported cache has the key,
    /// or its layer cannot be had (said through `report`).
    pub fn fetch(&self, key: &CacheKey, store: &Store, report: &dyn Fn(String)) -> Option<Record> {
        let (source, entry) = self.entries.get(key)?;
        let record = |diff_id: Option<&DiffId>| Record {
            diff_id: diff_id.cloned(),
            then: entry.then,
            created: None,
        };
        let Some(layer) = entry.layer else {
            return Some(record(None));
        };
        let s = &self.sources[*source];
        let (blob, diff_id) = (&s.layers[layer], &s.diff_ids[layer]);
        let fetched = (|| -> Result<(), Error> {
            let d = diff_id.digest();
            s.origin.fetch(store, blob)?;
            match kiln_image::media::layer_compression(blob.media_type().as_ref()) {
                Some(Compression::None) if blob.digest() == d => Ok(()),
                Some(c) if c != Compression::None => {
                    Ok(store.remember_compressed(d, c, blob.digest(), blob.size())?)
                }
                _ => Err(Error::Cache {
                    what: format!("layer {} ({})", blob.digest(), blob.media_type()),
                    reason: format!("is not the layer {diff_id}"),
                }),
            }
        })();
        match fetched {
            Ok(()) => Some(record(Some(diff_id))),
            Err(e) => {
                report(format!(
                    "the cache in {} is of no use here: {e}",
                    s.location
                ));
                None
            }
        }
    }
}

fn read_config(
    origin: &Origin,
    store: &Store,
    location: &CacheLocation,
    manifest: &ImageManifest,
) -> Result<CacheConfig, Error> {
    let config = manifest.config();
    if config.media_type().to_string() != CONFIG_TYPE {
        return Err(Error::Cache {
            what: location.to_string(),
            reason: format!(
                "this is not a kiln build cache (its config is {})",
                config.media_type()
            ),
        });
    }
    origin.fetch(store, config)?;
    serde_json::from_slice(&store.read_blob(config.digest())?).map_err(|e| Error::Cache {
        what: location.to_string(),
        reason: format!("the cache config does not read: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_options_read_as_buildkit_writes_them() {
        let c: CacheRef = "type=registry,ref=127.0.0.1:5000/app:cache,mode=max,compression=zstd"
            .parse()
            .unwrap();
        assert!(
            matches!(&c.location, CacheLocation::Registry(r) if r.path == "app"),
            "{c:?}"
        );
        let local: CacheRef = "type=local,dest=/ci/cache,mode=max".parse().unwrap();
        assert_eq!(local.location, CacheLocation::Local("/ci/cache".into()));
        assert_eq!(c.mode, Mode::Max);
        assert_eq!(c.compression, Compression::Zstd);
        let bare: CacheRef = "127.0.0.1:5000/app:cache".parse().unwrap();
        assert_eq!((bare.mode, bare.ignore_error), (Mode::Min, false));
        let errors = [
            ("type=gha,scope=x", "type=local"),
            ("type=local,mode=max", "no dest=DIR"),
            ("type=registry,mode=max", "no ref="),
            ("type=registry,ref=a:b,mode=all", "use min or max"),
            ("type=registry,ref=a:b,colour=red", "unknown key \"colour\""),
        ];
        for (spec, says) in errors {
            let e = spec.parse::<CacheRef>().unwrap_err().to_string();
            assert!(e.contains(says) && e.contains(spec), "{spec}: {e}");
        }
    }
}
