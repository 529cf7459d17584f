//! Attestations stored as BuildKit stores them: an attestation manifest in the image's
//! index (platform `unknown/unknown`, annotated `vnd.docker.reference.type:
//! attestation-manifest` and the digest of the image manifest it is about), whose layer
//! is an in-toto statement — and, as OCI 1.1 asks, with that image manifest as its
//! `subject`, so a registry lists it through the referrers API.

use oci_spec::image::{Descriptor, ImageManifest, ImageManifestBuilder, MediaType};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::platform::Platform;
use crate::store::Store;

/// The media type of an in-toto statement layer.
pub const STATEMENT_TYPE: &str = "application/vnd.in-toto+json";
/// SLSA provenance v1, the predicate kiln writes.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// The layer annotation naming its predicate type.
pub const PREDICATE_ANNOTATION: &str = "in-toto.io/predicate-type";
/// BuildKit's index annotation marking an attestation manifest.
pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// BuildKit's index annotation naming the image an attestation is about.
pub const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
/// The value of [`REFERENCE_TYPE`] for an attestation manifest.
pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";
/// OCI's empty config, for artifacts.
const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// Whether an index entry is an attestation manifest.
pub fn is_attestation(d: &Descriptor) -> bool {
    d.annotations()
        .as_ref()
        .and_then(|a| a.get(REFERENCE_TYPE))
        .is_some_and(|t| t == ATTESTATION_MANIFEST)
}

/// The digest of the image manifest the attestation entry `d` is about.
pub fn subject_of(d: &Descriptor) -> Option<Digest> {
    d.annotations()
        .as_ref()
        .and_then(|a| a.get(REFERENCE_DIGEST))
        .and_then(|s| crate::digest::parse(s).ok())
}

/// Writes the in-toto `statement` (its bytes) as an attestation manifest about `image`
/// (a manifest in the store); returns its index entry.
pub fn attach(store: &Store, image: &Descriptor, statement: &[u8]) -> Result<Descriptor> {
    let layer_digest = store.write_blob_bytes(statement)?;
    let mut layer = Descriptor::new(
        MediaType::Other(STATEMENT_TYPE.into()),
        statement.len() as u64,
        layer_digest,
    );
    layer.set_annotations(Some(
        [(PREDICATE_ANNOTATION.to_string(), PREDICATE_TYPE.to_string())].into(),
    ));
    let empty = store.write_blob_bytes(b"{}")?;
    let subject = Descriptor::new(
        image.media_type().clone(),
        image.size(),
        image.digest().clone(),
    );
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .artifact_type(MediaType::Other(STATEMENT_TYPE.into()))
        .config(Descriptor::new(
            MediaType::Other(EMPTY_TYPE.into()),
            2,
            empty,
        ))
        .layers(vec![layer])
        .subject(subject)
        .build()
        .map_err(|e| Error::InvalidImage {
            what: "attestation manifest".into(),
            reason: e.to_string(),
        })?;
    let bytes = serde_json::to_vec(&manifest).map_err(Error::json("attestation manifest"))?;
    let digest = store.write_blob_bytes(&bytes)?;
    let mut entry = Descriptor::new(MediaType::ImageManifest, bytes.len() as u64, digest);
    entry.set_artifact_type(Some(MediaType::Other(STATEMENT_TYPE.into())));
    entry.set_platform(Some(
        Platform {
            os: "unknown".into(),
            architecture: "unknown".into(),
            variant: None,
        }
        .to_oci(),
    ));
    entry.set_annotations(Some(
        [
            (REFERENCE_TYPE.to_string(), ATTESTATION_MANIFEST.to_string()),
            (REFERENCE_DIGEST.to_string(), image.digest().to_string()),
        ]
        .into(),
    ));
    Ok(entry)
}

/// The statements of the attestation manifest `entry`.
pub fn statements(store: &Store, entry: &Descriptor) -> Result<Vec<serde_json::Value>> {
    let manifest: ImageManifest = serde_json::from_slice(&store.read_blob(entry.digest())?)
        .map_err(Error::json(format!(
            "attestation manifest {}",
            entry.digest()
        )))?;
    manifest
        .layers()
        .iter()
        .filter(|l| l.media_type().to_string() == STATEMENT_TYPE)
        .map(|l| {
            serde_json::from_slice(&store.read_blob(l.digest())?)
                .map_err(Error::json(format!("in-toto statement {}", l.digest())))
        })
        .collect()
}

/// The attestation `entry` about the image once `old`, made again about `new` (the same
/// image as pushed: its layers compressed, so another manifest): its statements'
/// subjects and its `subject` name `new`. Returns the new entry.
pub fn rebind(
    store: &Store,
    entry: &Descriptor,
    old: &Digest,
    new: &Descriptor,
) -> Result<Descriptor> {
    let mut out = Vec::new();
    for mut statement in statements(store, entry)? {
        if let Some(subjects) = statement.get_mut("subject").and_then(|s| s.as_array_mut()) {
            for s in subjects {
                if s["digest"]["sha256"] == old.digest() {
                    s["digest"]["sha256"] = serde_json::json!(new.digest().digest());
                }
            }
        }
        out.push(statement);
    }
    let [statement] = out.as_slice() else {
        return Err(Error::InvalidImage {
            what: format!("attestation manifest {}", entry.digest()),
            reason: "kiln pushes attestations of one statement".into(),
        });
    };
    let bytes = serde_json::to_vec(statement).map_err(Error::json("in-toto statement"))?;
    attach(store, new, &bytes)
}
