//! `kiln push`: layers are compressed first (gzip by default; each layer once, and the
//! store remembers the result), then each blob the registry lacks (asked with `HEAD`) is
//! mounted from another repository of the registry known to have it, or uploaded,
//! several at a time: in one request when small, else in chunks, resumed from
//! where the registry says it is when a chunk fails. The manifest goes last.

use std::io::{Read, Seek, SeekFrom};

use oci_spec::image::{Descriptor, ImageManifest};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::StatusCode;

use super::{refused, scope, Registry, Report, ATTEMPTS};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layer::Compression;
use crate::reference::Reference;
use crate::store::{ResolvedImage, Store};

/// What a push did.
#[derive(Debug)]
pub struct Pushed {
    /// The manifest pushed: its digest and size, as `docker push` prints them.
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: u64,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs the registry had already (or mounted from another repository).
    pub present: usize,
}

/// Blobs up to this size go in one request; larger ones in chunks of it.
const CHUNK: u64 = 32 << 20;

/// Pushes `image` to `target` (a tag or a digest), its uncompressed layers compressed
/// with `compression`; `progress` hears a line per blob.
pub fn push(
    registry: &Registry,
    store: &Store,
    image: &ResolvedImage,
    target: &Reference,
    compression: Compression,
    progress: &dyn Report,
) -> Result<Pushed> {
    let _guard = store.write_guard()?;
    if crate::media::is_index(image.top.media_type().as_ref()) {
        return push_index(registry, store, &image.top, target, compression, progress);
    }
    let image = store.compressed_image(image, compression)?;
    push_manifest(
        registry,
        store,
        target,
        &image.manifest,
        &image.manifest_bytes,
        &media_type(&image.manifest),
        progress,
    )
}

/// A manifest's media type as its field says, OCI's when it has none.
fn media_type(manifest: &ImageManifest) -> String {
    manifest
        .media_type()
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_else(|| crate::media::OCI_MANIFEST.to_string())
}

/// Pushes the blobs `manifest` names (those the registry lacks), then `manifest_bytes`
/// (its serialized form, of `media_type`) to `target`: an image, or an artifact such as
/// a build cache.
pub fn push_manifest(
    registry: &Registry,
    store: &Store,
    target: &Reference,
    manifest: &ImageManifest,
    manifest_bytes: &[u8],
    media_type: &str,
    progress: &dyn Report,
) -> Result<Pushed> {
    let blobs: Vec<&Descriptor> = manifest
        .layers()
        .iter()
        .chain(std::iter::once(manifest.config()))
        .collect();
    let here = format!("{}/{}", registry.host(), target.path);
    let results = super::in_parallel(&blobs, |d| {
        let short = &d.digest().digest()[..12];
        let uploaded = if exists(registry, target, d.digest())? {
            progress.line(format!("{short}: Layer already exists"));
            false
        } else {
            // Another repository of this registry that has the blob lends it.
            let prefix = format!("{}/", registry.host());
            let lender = store.blob_origins(d.digest()).into_iter().find_map(|p| {
                p.strip_prefix(&prefix)
                    .filter(|r| *r != target.path)
                    .map(str::to_string)
            });
            match upload(registry, store, target, d, lender.as_deref(), progress)? {
                Some(from) => {
                    progress.line(format!("{short}: Mounted from {from}"));
                    false
                }
                None => {
                    progress.line(format!("{short}: Pushed"));
                    true
                }
            }
        };
        store.add_blob_origin(d.digest(), &here);
        Ok(uploaded)
    });
    let mut uploaded = 0;
    for r in results {
        uploaded += usize::from(r?);
    }
    let digest = put_manifest(registry, target, manifest_bytes, media_type)?;
    Ok(Pushed {
        digest,
        size: manifest_bytes.len() as u64,
        uploaded,
        present: blobs.len() - uploaded,
    })
}

/// PUTs a manifest or index to `target`'s tag, else by its digest; returns the digest.
fn put_manifest(
    registry: &Registry,
    target: &Reference,
    bytes: &[u8],
    media_type: &str,
) -> Result<Digest> {
    let digest = crate::digest::sha256(bytes);
    let reference = target.tag.clone().unwrap_or_else(|| digest.to_string());
    let url = registry.url(&format!("/v2/{}/manifests/{reference}", target.path));
    let r = registry.send(&scope(target, "pull,push"), |c| {
        c.put(&url)
            .header(CONTENT_TYPE, media_type)
            .body(bytes.to_vec())
    })?;
    if !r.status().is_success() {
        return Err(refused(&format!("PUT {url}"), r));
    }
    Ok(digest)
}

/// Pushes a multi-platform image: each platform's image the store has (compressed as
/// [`push`] compresses, pushed by digest), then an index of them to `target`. A
/// platform the store lacks (a base image pulled for one platform) is left out, and
/// said so.
fn push_index(
    registry: &Registry,
    store: &Store,
    top: &Descriptor,
    target: &Reference,
    compression: Compression,
    progress: &dyn Report,
) -> Result<Pushed> {
    let made = store.compressed_index(top, compression)?;
    for d in &made.left_out {
        let platform = crate::Platform::of_descriptor(d)
            .map_or_else(|| d.digest().to_string(), |p| p.to_string());
        progress.line(format!("{platform}: not in the store, left out"));
    }
    if !made
        .manifests
        .iter()
        .any(|d| !crate::attestation::is_attestation(d))
    {
        return Err(Error::InvalidImage {
            what: format!("image index {}", top.digest()),
            reason: "the store has none of its platforms' images".into(),
        });
    }
    // Each manifest by digest (an attestation's after the image it names: a registry
    // lists it as that image's referrer), then the index under the tag.
    let by_digest = Reference {
        tag: None,
        digest: None,
        ..target.clone()
    };
    let (mut uploaded, mut present) = (0, 0);
    for entry in &made.manifests {
        let bytes = store.read_blob(entry.digest())?;
        let manifest: ImageManifest = serde_json::from_slice(&bytes)
            .map_err(Error::json(format!("manifest {}", entry.digest())))?;
        let pushed = push_manifest(
            registry,
            store,
            &by_digest,
            &manifest,
            &bytes,
            entry.media_type().as_ref(),
            progress,
        )?;
        let label = match crate::Platform::of_descriptor(entry) {
            Some(p) if !crate::attestation::is_attestation(entry) => p.to_string(),
            _ => "attestation".into(),
        };
        progress.line(format!("{label}: {}", pushed.digest));
        uploaded += pushed.uploaded;
        present += pushed.present;
    }
    let digest = put_manifest(registry, target, &made.bytes, crate::media::OCI_INDEX)?;
    Ok(Pushed {
        digest,
        size: made.bytes.len() as u64,
        uploaded,
        present,
    })
}

fn exists(registry: &Registry, target: &Reference, digest: &Digest) -> Result<bool> {
    let url = registry.url(&format!("/v2/{}/blobs/{digest}", target.path));
    let r = registry.send(&scope(target, "pull,push"), |c| c.head(&url))?;
    match r.status() {
        s if s.is_success() => Ok(true),
        StatusCode::NOT_FOUND => Ok(false),
        _ => Err(refused(&format!("HEAD {url}"), r)),
    }
}

/// `location` with `digest=` added to its query.
fn with_digest(location: &str, digest: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

/// Uploads blob `d`, or with `lender` (a repository of the same registry that has it)
/// first asks the registry to mount it from there: returns the lender when it did.
fn upload<'a>(
    registry: &Registry,
    store: &Store,
    target: &Reference,
    d: &Descriptor,
    lender: Option<&'a str>,
    progress: &dyn Report,
) -> Result<Option<&'a str>> {
    let scope = match lender {
        Some(from) => format!("{} repository:{from}:pull", scope(target, "pull,push")),
        None => scope(target, "pull,push"),
    };
    let start = registry.url(&format!("/v2/{}/blobs/uploads/", target.path));
    let start = match lender {
        Some(from) => format!("{start}?mount={}&from={from}", d.digest()),
        None => start,
    };
    let r = registry.send(&scope, |c| c.post(&start).header(CONTENT_LENGTH, 0))?;
    if r.status() == StatusCode::CREATED && lender.is_some() {
        return Ok(lender);
    }
    // 202: an upload (the registry would not mount, or was not asked to).
    if r.status() != StatusCode::ACCEPTED {
        return Err(refused(&format!("POST {start}"), r));
    }
    let mut location = location_of(registry, &r, None)?;
    let path = store.blob_path(d.digest());
    let mut file = store.open_blob(d.digest())?;
    let size = d.size();
    if size <= CHUNK {
        let mut data = Vec::with_capacity(size as usize);
        file.read_to_end(&mut data)
            .map_err(Error::io("read", &path))?;
        let url = with_digest(&location, d.digest());
        let r = registry.send(&scope, |c| {
            c.put(&url)
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(data.clone())
        })?;
        if r.status() != StatusCode::CREATED {
            return Err(refused(&format!("PUT {url}"), r));
        }
        progress.bytes(d.digest(), size, size);
        return Ok(None);
    }
    let mut offset: u64 = 0;
    let mut failures = 0;
    while offset < size {
        let len = CHUNK.min(size - offset);
        let mut chunk = vec![0u8; len as usize];
        file.seek(SeekFrom::Start(offset))
            .map_err(Error::io("read", &path))?;
        file.read_exact(&mut chunk)
            .map_err(Error::io("read", &path))?;
        let range = format!("{offset}-{}", offset + len - 1);
        let url = registry.url(&location);
        let answer = registry.send(&scope, |c| {
            c.patch(&url)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_RANGE, &range)
                .header(CONTENT_LENGTH, len)
                .body(chunk.clone())
        });
        match answer {
            Ok(r) if r.status() == StatusCode::ACCEPTED => {
                location = location_of(registry, &r, Some(&location))?;
                offset += len;
                progress.bytes(d.digest(), offset, size);
            }
            failed => {
                failures += 1;
                if failures >= ATTEMPTS {
                    return Err(match failed {
                        Ok(r) => refused(&format!("PATCH {location}"), r),
                        Err(e) => e,
                    });
                }
                super::backoff(failures);
                // Where the registry is: `Range: 0-N` (none yet: start over).
                let status = registry.send(&scope, |c| c.get(registry.url(&location)))?;
                if status.status() != StatusCode::NO_CONTENT {
                    return Err(refused(&format!("GET {location}"), status));
                }
                offset = status
                    .headers()
                    .get(RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.rsplit('-').next())
                    .and_then(|end| end.parse::<u64>().ok())
                    .map_or(0, |end| end + 1);
                location = location_of(registry, &status, Some(&location))?;
            }
        }
    }
    let url = with_digest(&location, d.digest());
    let r = registry.send(&scope, |c| c.put(&url).header(CONTENT_LENGTH, 0))?;
    if r.status() != StatusCode::CREATED {
        return Err(refused(&format!("PUT {url}"), r));
    }
    Ok(None)
}

/// The upload's `Location` (absolute, or relative to the registry); an answer within an
/// upload that names none keeps the `current` one, a new upload must name one.
fn location_of(
    registry: &Registry,
    r: &reqwest::blocking::Response,
    current: Option<&str>,
) -> Result<String> {
    match (
        r.headers().get(LOCATION).and_then(|v| v.to_str().ok()),
        current,
    ) {
        (Some(l), _) => Ok(registry.url(l)),
        (None, Some(current)) => Ok(current.to_string()),
        (None, None) => Err(Error::Protocol {
            what: registry.host().to_string(),
            reason: "the answer that opens an upload has no Location".into(),
        }),
    }
}
