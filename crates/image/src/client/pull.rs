//! `kiln pull`: the manifest (an index is resolved to one platform), then the config and
//! layers the store lacks, several at a time, each verified against its digest as it
//! streams in and resumed with `Range` when the connection breaks. Nothing is tagged
//! until every blob is stored; a blob that does not match its digest is not stored.

use std::io::Read;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use reqwest::header::{ACCEPT, CONTENT_TYPE, RANGE};
use reqwest::StatusCode;

use super::{read_capped, refused, scope, Registry, Report, ATTEMPTS, MAX_MANIFEST};
use crate::digest::{self, Digest};
use crate::error::{Error, Result};
use crate::media;
use crate::reference::Reference;
use crate::store::{BlobWriter, Store};

/// What a pull did.
#[derive(Debug)]
pub struct Pulled {
    /// The digest the registry knows the image by (of the index, for a multi-platform
    /// image): what `docker pull` prints.
    pub digest: Digest,
    /// The manifest of the platform pulled, now tagged in the store.
    pub manifest: Descriptor,
    /// Blobs downloaded, and blobs the store had already.
    pub downloaded: usize,
    /// Blobs the store had already.
    pub present: usize,
}

const ACCEPTED: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Pulls `reference` from the mirrors kiln's config names for its registry, in order,
/// then (when none has it) from the registry itself: what `kiln pull` and a build's
/// FROM do.
pub fn pull_image(
    store: &Store,
    reference: &Reference,
    platform: &str,
    progress: &dyn Report,
) -> Result<Pulled> {
    let config = super::Config::load()?;
    let mut passed = Vec::new();
    for mirror in config.mirrors(&reference.domain) {
        let pulled = Registry::configured(mirror, &config)
            .and_then(|r| pull(&r, store, reference, platform, progress));
        match pulled {
            Ok(p) => {
                progress.line(format!("from the mirror {mirror}"));
                return Ok(p);
            }
            Err(e) => {
                progress.line(format!("mirror {mirror}: {e}"));
                passed.push(mirror.as_str());
            }
        }
    }
    let registry = Registry::configured(&reference.domain, &config)?;
    pull(&registry, store, reference, platform, progress).map_err(|e| {
        if passed.is_empty() {
            e
        } else {
            Error::AfterMirrors {
                source: Box::new(e),
                mirrors: passed.join(", "),
            }
        }
    })
}

/// Pulls `reference` for `platform` (`os/arch[/variant]`) into `store` and tags it;
/// `progress` hears a line per blob.
pub fn pull(
    registry: &Registry,
    store: &Store,
    reference: &Reference,
    platform: &str,
    progress: &dyn Report,
) -> Result<Pulled> {
    let _guard = store.write_guard()?;
    let (top_bytes, top_type, top_digest) =
        fetch_manifest(registry, reference, &target_of(reference))?;
    // The signature policy is asked about the very digest pulled, before any blob.
    if let Some(policy) = crate::signing::policy::Policy::load()? {
        policy.check(registry, store, reference, &top_digest)?;
    }
    let (bytes, media_type, digest) = if media::is_index(&top_type) {
        let index: ImageIndex = serde_json::from_slice(&top_bytes)
            .map_err(Error::json(format!("{reference}: index")))?;
        let chosen = index
            .manifests()
            .iter()
            .find(|m| platform_matches(m, platform))
            .ok_or_else(|| {
                let offered: Vec<String> = index
                    .manifests()
                    .iter()
                    .filter_map(|m| m.platform().as_ref())
                    .map(|p| format!("{}/{}", p.os(), p.architecture()))
                    .collect();
                Error::NoPlatform {
                    image: reference.to_string(),
                    platform: platform.to_string(),
                    offered: offered.join(", "),
                }
            })?;
        fetch_manifest(registry, reference, chosen.digest().as_ref())?
    } else {
        (top_bytes.clone(), top_type.clone(), top_digest.clone())
    };
    let manifest: ImageManifest =
        serde_json::from_slice(&bytes).map_err(Error::json(format!("{reference}: manifest")))?;
    let blobs: Vec<&Descriptor> = std::iter::once(manifest.config())
        .chain(manifest.layers().iter())
        .collect();
    let missing: Vec<&Descriptor> = blobs
        .iter()
        .copied()
        .filter(|d| !store.has_blob(d.digest()))
        .collect();
    for d in blobs.iter().filter(|d| store.has_blob(d.digest())) {
        progress.line(format!("{}: Already exists", short(d.digest())));
    }
    let results = super::in_parallel(&missing, |d| {
        let r = download(registry, store, reference, d, progress);
        if r.is_ok() {
            progress.line(format!("{}: Pull complete", short(d.digest())));
        }
        r
    });
    for r in results {
        r?;
    }
    let here = format!("{}/{}", registry.host(), reference.path);
    for d in &blobs {
        store.add_blob_origin(d.digest(), &here);
    }
    let stored = store.write_blob_bytes(&bytes)?;
    debug_assert_eq!(stored, digest);
    let descriptor = Descriptor::new(
        MediaType::from(media_type.as_str()),
        bytes.len() as u64,
        digest,
    );
    // An index is kept whole under the name, with the manifests of the platforms
    // pulled so far: pulling another platform adds to it, as containerd's store does.
    let named = if media::is_index(&top_type) {
        let stored = store.write_blob_bytes(&top_bytes)?;
        debug_assert_eq!(stored, top_digest);
        Descriptor::new(
            MediaType::from(top_type.as_str()),
            top_bytes.len() as u64,
            top_digest.clone(),
        )
    } else {
        descriptor.clone()
    };
    if reference.tag.is_some() {
        store.tag(reference, &named)?;
    } else {
        store.keep_untagged(&named)?;
    }
    Ok(Pulled {
        digest: top_digest,
        manifest: descriptor,
        downloaded: missing.len(),
        present: blobs.len() - missing.len(),
    })
}

/// What `reference` asks the registry for: its digest, else its tag, else `latest`.
fn target_of(reference: &Reference) -> String {
    reference
        .digest
        .as_ref()
        .map(|d| d.to_string())
        .or_else(|| reference.tag.clone())
        .unwrap_or_else(|| "latest".into())
}

/// The single manifest `reference` names (not an index): an image's, or an artifact's
/// such as a build cache. Its blobs are not fetched.
pub fn fetch_image_manifest(
    registry: &Registry,
    reference: &Reference,
) -> Result<(ImageManifest, Digest)> {
    let (bytes, media_type, digest) = fetch_manifest(registry, reference, &target_of(reference))?;
    if !media::is_manifest(&media_type) {
        return Err(Error::Protocol {
            what: reference.to_string(),
            reason: format!("{media_type} is not a single manifest"),
        });
    }
    let manifest =
        serde_json::from_slice(&bytes).map_err(Error::json(format!("{reference}: manifest")))?;
    Ok((manifest, digest))
}

/// One blob of `reference`'s repository into the store (nothing to do if it is there).
pub fn fetch_blob(
    registry: &Registry,
    store: &Store,
    reference: &Reference,
    d: &Descriptor,
) -> Result<()> {
    if store.has_blob(d.digest()) {
        return Ok(());
    }
    download(registry, store, reference, d, &|_: String| {})
}

/// `sha256:0123456789ab…` → `0123456789ab`, as docker shows layers.
fn short(d: &Digest) -> &str {
    &d.digest()[..12.min(d.digest().len())]
}

fn platform_matches(m: &Descriptor, wanted: &str) -> bool {
    let Some(p) = m.platform() else { return false };
    let mut parts = wanted.split('/');
    let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
    os == Some(p.os().to_string().as_str())
        && arch == Some(p.architecture().to_string().as_str())
        && variant.is_none_or(|v| p.variant().as_deref() == Some(v))
}

/// A manifest or index by tag or digest: its bytes, media type and digest (checked
/// against the digest asked for).
pub(crate) fn fetch_manifest(
    registry: &Registry,
    reference: &Reference,
    target: &str,
) -> Result<(Vec<u8>, String, Digest)> {
    let url = registry.url(&format!("/v2/{}/manifests/{target}", reference.path));
    let r = registry.send(&scope(reference, "pull"), |c| {
        c.get(&url).header(ACCEPT, ACCEPTED)
    })?;
    match r.status() {
        s if s.is_success() => {}
        StatusCode::NOT_FOUND => {
            return Err(Error::ManifestNotFound {
                reference: reference.to_string(),
                host: registry.host().to_string(),
            })
        }
        _ => return Err(refused(&format!("GET {url}"), r)),
    }
    let header_type = r
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
    let bytes = read_capped(r, MAX_MANIFEST, &format!("GET {url}"))?;
    let digest = crate::digest::sha256(&bytes);
    if let Ok(asked) = digest::parse(target) {
        if asked != digest {
            return Err(Error::DigestMismatch {
                what: format!("{reference} manifest"),
                expected: asked.to_string(),
                actual: digest.to_string(),
            });
        }
    }
    let body_type = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["mediaType"].as_str().map(str::to_string));
    let media_type = body_type.or(header_type).ok_or_else(|| Error::Protocol {
        what: format!("GET {url}"),
        reason: "the manifest has no media type".into(),
    })?;
    if !media::is_index(&media_type) && !media::is_manifest(&media_type) {
        return Err(Error::Protocol {
            what: format!("GET {url}"),
            reason: format!("{media_type} is not an image manifest or index"),
        });
    }
    Ok((bytes, media_type, digest))
}

/// Downloads one blob into the store, resuming with `Range` after a broken connection.
fn download(
    registry: &Registry,
    store: &Store,
    reference: &Reference,
    d: &Descriptor,
    progress: &dyn Report,
) -> Result<()> {
    let url = registry.url(&format!("/v2/{}/blobs/{}", reference.path, d.digest()));
    let mut writer = BlobWriter::new(store)?;
    let mut written: u64 = 0;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..ATTEMPTS {
        let from = written;
        let mut r = registry.send(&scope(reference, "pull"), |c| {
            let request = c.get(&url);
            if from > 0 {
                request.header(RANGE, format!("bytes={from}-"))
            } else {
                request
            }
        })?;
        if !r.status().is_success() {
            return Err(refused(&format!("GET {url}"), r));
        }
        if from > 0 && r.status() != StatusCode::PARTIAL_CONTENT {
            // The registry ignored the range: start again.
            writer = BlobWriter::new(store)?;
            written = 0;
        }
        let broke = loop {
            match r.read(&mut buf) {
                Ok(0) => break false,
                Ok(n) => {
                    std::io::Write::write_all(&mut writer, &buf[..n])
                        .map_err(Error::io("write", "blob"))?;
                    written += n as u64;
                    progress.bytes(d.digest(), written, d.size());
                    if written > d.size() {
                        return Err(Error::DigestMismatch {
                            what: format!("{url} (longer than its {} bytes)", d.size()),
                            expected: d.digest().to_string(),
                            actual: "more data".into(),
                        });
                    }
                }
                Err(_) => break true,
            }
        };
        if !broke && written == d.size() {
            writer
                .commit(Some(d.digest()))
                .map_err(|e| e.about(format!("{url}: the registry sent other bytes")))?;
            return Ok(());
        }
        // Broken off, or ended early: ask for the rest.
    }
    Err(Error::Protocol {
        what: format!("GET {url}"),
        reason: format!(
            "the download broke off {ATTEMPTS} times ({written} of {} bytes)",
            d.size()
        ),
    })
}
