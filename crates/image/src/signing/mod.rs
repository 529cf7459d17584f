//! Image signatures as cosign makes them and containers/image (podman, skopeo) reads
//! them: a "simple signing" payload naming the image's repository and manifest digest,
//! signed with ECDSA P-256 (SHA-256, ASN.1 DER, base64 in the layer's
//! `dev.cosignproject.cosign/signature` annotation), stored as a layer of the manifest
//! tagged `sha256-<digest>.sig` in the image's repository (a new signature is added to
//! those there) — and that manifest names the image as its `subject`, so a registry
//! with the referrers API lists it too.

pub mod keys;
pub mod policy;

use base64::Engine as _;
use oci_spec::image::{Descriptor, ImageManifest, ImageManifestBuilder, MediaType};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};

use crate::client::{Registry, Report};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::Store;

/// The media type of a signature's payload: a simple-signing JSON document.
pub const PAYLOAD_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature (cosign's).
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The artifact type of a signature manifest, which makes it a referrer of the image.
pub const ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

/// The tag cosign keeps an image's signatures under: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &Digest) -> String {
    format!("{}-{}.sig", digest.algorithm(), digest.digest())
}

/// The simple-signing payload for the image `digest` in `repository` (`host/path`).
pub fn payload(repository: &str, digest: &Digest) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest.to_string()},
            "type": "cosign container image signature",
        },
        "optional": null,
    }))
    .expect("a JSON value serialises")
}

/// The manifest (or index) `reference` names in its registry, as a descriptor: a tag is
/// resolved to its digest.
pub fn resolve(registry: &Registry, reference: &Reference) -> Result<Descriptor> {
    let target = match (&reference.digest, &reference.tag) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.clone(),
        (None, None) => "latest".into(),
    };
    let (bytes, media_type, digest) = crate::client::fetch_manifest(registry, reference, &target)?;
    Ok(Descriptor::new(
        MediaType::from(media_type.as_str()),
        bytes.len() as u64,
        digest,
    ))
}

/// Signs the image `reference` names in its registry with `key`; returns the signed
/// digest. The signature manifest's blobs go through `store`.
pub fn sign(
    registry: &Registry,
    store: &Store,
    reference: &Reference,
    key: &SigningKey,
    progress: &dyn Report,
) -> Result<Digest> {
    let subject = resolve(registry, reference)?;
    let digest = subject.digest().clone();
    let repository = reference.name();
    let payload = payload(&repository, &digest);
    let signature: Signature = key.sign(&payload);
    let signature = base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes());
    let payload_digest = store.write_blob_bytes(&payload)?;
    let mut layer = Descriptor::new(
        MediaType::Other(PAYLOAD_TYPE.into()),
        payload.len() as u64,
        payload_digest,
    );
    layer.set_annotations(Some([(SIGNATURE_ANNOTATION.to_string(), signature)].into()));
    let target = Reference {
        tag: Some(signature_tag(&digest)),
        digest: None,
        ..reference.clone()
    };
    // Signatures already there stay: this one is added to them.
    let mut layers = match existing(registry, store, &target)? {
        Some(m) => m.layers().clone(),
        None => Vec::new(),
    };
    layers.retain(|l| l.digest() != layer.digest() || l.annotations() != layer.annotations());
    layers.push(layer);
    let diff_ids: Vec<String> = layers.iter().map(|l| l.digest().to_string()).collect();
    // The config cosign writes: an image config naming the payloads as layers.
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "", "os": "", "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .map_err(Error::json("signature config"))?;
    let config_digest = store.write_blob_bytes(&config)?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(Descriptor::new(
            MediaType::ImageConfig,
            config.len() as u64,
            config_digest,
        ))
        .layers(layers)
        .subject(subject)
        .build()
        .map_err(|e| Error::InvalidImage {
            what: "signature manifest".into(),
            reason: e.to_string(),
        })?;
    let bytes = serde_json::to_vec(&manifest).map_err(Error::json("signature manifest"))?;
    crate::client::push_manifest(
        registry,
        store,
        &target,
        &manifest,
        &bytes,
        crate::media::OCI_MANIFEST,
        progress,
    )?;
    Ok(digest)
}

/// The signature manifest at `target`, its payload blobs fetched into `store`; none when
/// the image has no signatures yet.
fn existing(
    registry: &Registry,
    store: &Store,
    target: &Reference,
) -> Result<Option<ImageManifest>> {
    match crate::client::fetch_image_manifest(registry, target) {
        Ok((manifest, _)) => {
            for l in manifest.layers() {
                crate::client::fetch_blob(registry, store, target, l)?;
            }
            Ok(Some(manifest))
        }
        Err(Error::ManifestNotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Checks that the image `digest` of `reference`'s repository carries a signature by
/// `key` for it; says why not.
pub fn verify(
    registry: &Registry,
    store: &Store,
    reference: &Reference,
    digest: &Digest,
    key: &VerifyingKey,
) -> Result<()> {
    let target = Reference {
        tag: Some(signature_tag(digest)),
        digest: None,
        ..reference.clone()
    };
    let refused = |reason: String| Error::Signature {
        what: format!("{}@{digest}", reference.name()),
        reason,
    };
    let Some(manifest) = existing(registry, store, &target)? else {
        return Err(refused(format!(
            "no signatures (no {} tag)",
            signature_tag(digest)
        )));
    };
    let mut reasons = Vec::new();
    for layer in manifest.layers() {
        let Some(signature) = layer
            .annotations()
            .as_ref()
            .and_then(|a| a.get(SIGNATURE_ANNOTATION))
        else {
            continue;
        };
        let payload = store.read_blob(layer.digest())?;
        match check(&payload, signature, digest, key) {
            Ok(()) => return Ok(()),
            Err(reason) => reasons.push(reason),
        }
    }
    Err(refused(if reasons.is_empty() {
        "no signatures".into()
    } else {
        format!("no signature by this key: {}", reasons.join("; "))
    }))
}

/// One payload and its signature: signed by `key`, and about `digest`.
fn check(
    payload: &[u8],
    signature: &str,
    digest: &Digest,
    key: &VerifyingKey,
) -> std::result::Result<(), String> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .map_err(|e| format!("a signature that is not base64: {e}"))?;
    let signature =
        Signature::from_der(&der).map_err(|e| format!("not an ECDSA signature: {e}"))?;
    key.verify(payload, &signature)
        .map_err(|_| "a signature by another key".to_string())?;
    let value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("a payload that is not JSON: {e}"))?;
    let signed = value["critical"]["image"]["docker-manifest-digest"]
        .as_str()
        .unwrap_or_default();
    if signed != digest.to_string() {
        return Err(format!("a signature of {signed}, not of this image"));
    }
    Ok(())
}
