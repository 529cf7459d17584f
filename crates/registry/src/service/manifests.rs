//! Manifests: push (validated: JSON, a known media type, every blob and child manifest
//! present, the size limit, the digest when pushed by digest), fetch by tag or digest,
//! delete; and the referrers a manifest's `subject` adds.

use bytes::Bytes;
use kiln_image::digest::Digest;
use kiln_image::media;
use serde_json::{json, Value};

use super::Registry;
use crate::errcode::{ApiError, Code};
use crate::names::{parse_digest, Reference};
use crate::paths;

/// A stored manifest.
/// A stored manifest, as it was pushed.
pub struct Manifest {
    /// The digest of `body`.
    pub digest: Digest,
    /// Its media type, as it was pushed (`Content-Type`).
    pub media_type: String,
    /// The bytes, exactly as pushed: the digest is over them.
    pub body: Bytes,
}

/// What a push made.
pub struct Pushed {
    /// The manifest's digest.
    pub digest: Digest,
    /// The `subject` the manifest refers to, for the `OCI-Subject` header.
    pub subject: Option<Digest>,
}

const MANIFEST_TYPES: [&str; 4] = [
    media::OCI_MANIFEST,
    media::OCI_INDEX,
    media::DOCKER_MANIFEST,
    media::DOCKER_MANIFEST_LIST,
];

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::new(Code::ManifestInvalid, detail)
}

/// A descriptor's digest, checked.
fn descriptor_digest(d: &Value, what: &str) -> Result<Digest, ApiError> {
    let text = d
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{what} has no digest")))?;
    if !d.get("size").is_some_and(Value::is_u64) {
        return Err(invalid(format!("{what} has no size")));
    }
    parse_digest(text).ok_or_else(|| invalid(format!("{what}: {text:?} is not a digest")))
}

impl Registry {
    /// Stores a manifest under `reference` (a tag, or the digest it must have).
    pub async fn put_manifest(
        &self,
        name: &str,
        reference: &Reference,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Pushed, ApiError> {
        self.writable()?;
        if body.len() > self.limits.max_manifest {
            return Err(ApiError::new(
                Code::TooLarge,
                format!(
                    "{} bytes; this registry takes manifests up to {}",
                    body.len(),
                    self.limits.max_manifest
                ),
            ));
        }
        let parsed: Value =
            serde_json::from_slice(&body).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let declared = parsed.get("mediaType").and_then(Value::as_str);
        let media_type = content_type
            .map(|c| c.split(';').next().unwrap_or(c).trim())
            .filter(|c| !c.is_empty())
            .or(declared)
            .ok_or_else(|| invalid("no Content-Type and no mediaType: say which manifest this is"))?
            .to_string();
        if !MANIFEST_TYPES.contains(&media_type.as_str()) {
            return Err(invalid(format!(
                "unknown manifest media type {media_type:?}"
            )));
        }
        if declared.is_some_and(|d| d != media_type) {
            return Err(invalid(format!(
                "the body says mediaType {:?} but Content-Type is {media_type:?}",
                declared.unwrap_or_default()
            )));
        }
        if parsed.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
            return Err(invalid("schemaVersion must be 2"));
        }
        let digest = match reference {
            Reference::Digest(d) => {
                let mut h = kiln_image::digest::Hasher::for_digest(d);
                h.update(&body);
                let actual = h.finish();
                if &actual != d {
                    return Err(ApiError::with(
                        Code::DigestInvalid,
                        json!({"expected": d.to_string(), "received": actual.to_string()}),
                    ));
                }
                actual
            }
            Reference::Tag(_) => kiln_image::digest::sha256(&body),
        };
        self.check_references(name, &media_type, &parsed).await?;
        let subject = match parsed.get("subject") {
            Some(s) => Some(descriptor_digest(s, "subject")?),
            None => None,
        };

        // The bytes first, then the links that make them visible.
        let blob = paths::blob(&digest);
        if self.storage.stat(&blob).await?.is_none() {
            self.storage.put(&blob, body.clone()).await?;
        }
        if let Some(s) = &subject {
            let artifact_type = parsed
                .get("artifactType")
                .or_else(|| parsed.get("config").and_then(|c| c.get("mediaType")))
                .cloned();
            let mut descriptor = json!({
                "mediaType": media_type,
                "digest": digest.to_string(),
                "size": body.len(),
            });
            if let Some(t) = artifact_type {
                descriptor["artifactType"] = t;
            }
            if let Some(a) = parsed.get("annotations") {
                descriptor["annotations"] = a.clone();
            }
            self.storage
                .put(
                    &paths::referrer(name, s, &digest),
                    Bytes::from(descriptor.to_string()),
                )
                .await?;
        }
        self.storage
            .put(&paths::revision(name, &digest), Bytes::from(media_type))
            .await?;
        if let Reference::Tag(tag) = reference {
            self.storage
                .put(&paths::tag(name, tag), Bytes::from(digest.to_string()))
                .await?;
        }
        Ok(Pushed { digest, subject })
    }

    /// Every blob an image manifest names and every manifest an index names must be in
    /// `name` already (non-distributable layers with `urls`, which live elsewhere,
    /// excepted).
    async fn check_references(
        &self,
        name: &str,
        media_type: &str,
        m: &Value,
    ) -> Result<(), ApiError> {
        let mut missing = Vec::new();
        if media::is_index(media_type) {
            let children = m
                .get("manifests")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid("an index needs a manifests array"))?;
            for (i, child) in children.iter().enumerate() {
                let d = descriptor_digest(child, &format!("manifests[{i}]"))?;
                if !self.claim(&paths::revision(name, &d), &d).await? {
                    missing.push(d);
                }
            }
        } else {
            let config = m
                .get("config")
                .ok_or_else(|| invalid("an image manifest needs a config"))?;
            let layers = m
                .get("layers")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid("an image manifest needs a layers array"))?;
            let mut wanted = vec![descriptor_digest(config, "config")?];
            for (i, layer) in layers.iter().enumerate() {
                let d = descriptor_digest(layer, &format!("layers[{i}]"))?;
                // Only a non-distributable layer may live elsewhere: any other layer
                // must be here, whatever `urls` says.
                let foreign = layer
                    .get("mediaType")
                    .and_then(Value::as_str)
                    .is_some_and(media::is_non_distributable);
                if layer.get("urls").is_none() || !foreign {
                    wanted.push(d);
                }
            }
            for d in wanted {
                if !self.claim(&paths::layer_link(name, &d), &d).await?
                    && !self.claim(&paths::revision(name, &d), &d).await?
                {
                    missing.push(d);
                }
            }
        }
        match missing.first() {
            None => Ok(()),
            Some(d) => Err(ApiError::with(
                Code::ManifestBlobUnknown,
                json!({"digest": d.to_string(), "missing": missing.iter().map(|d| d.to_string()).collect::<Vec<_>>()}),
            )),
        }
    }

    /// The digest a reference names in `name`.
    async fn resolve(&self, name: &str, reference: &Reference) -> Result<Digest, ApiError> {
        let unknown = || {
            ApiError::new(
                Code::ManifestUnknown,
                format!(
                    "{name} has no manifest {}",
                    match reference {
                        Reference::Tag(t) => t.clone(),
                        Reference::Digest(d) => d.to_string(),
                    }
                ),
            )
        };
        let digest = match reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(t) => match self.storage.get(&paths::tag(name, t)).await {
                Ok(bytes) => {
                    parse_digest(String::from_utf8_lossy(&bytes).trim()).ok_or_else(unknown)?
                }
                Err(crate::Error::NotFound(_)) => return Err(unknown()),
                Err(e) => return Err(e.into()),
            },
        };
        if self
            .storage
            .stat(&paths::revision(name, &digest))
            .await?
            .is_none()
        {
            return Err(unknown());
        }
        Ok(digest)
    }

    /// The manifest `reference` names, if its media type is one the client accepts
    /// (`accept` empty or holding `*/*` accepts all).
    pub async fn manifest(
        &self,
        name: &str,
        reference: &Reference,
        accept: &[String],
    ) -> Result<Manifest, ApiError> {
        let digest = self.resolve(name, reference).await?;
        let media_type =
            String::from_utf8_lossy(&self.storage.get(&paths::revision(name, &digest)).await?)
                .into_owned();
        let accepted = accept.is_empty()
            || accept.iter().any(|a| a == "*/*" || a == &media_type)
            // A digest names exact bytes: the client asked for these.
            || matches!(reference, Reference::Digest(_));
        if !accepted {
            return Err(ApiError::new(
                Code::ManifestUnknown,
                format!(
                    "{name}:{} is a {media_type}, which the request's Accept header leaves out",
                    match reference {
                        Reference::Tag(t) => t.as_str(),
                        Reference::Digest(_) => "",
                    }
                ),
            ));
        }
        let body = self.storage.get(&paths::blob(&digest)).await?;
        Ok(Manifest {
            digest,
            media_type,
            body,
        })
    }

    /// Deletes a tag, or a manifest by digest (with the tags that point at it and the
    /// referrer entry it made).
    pub async fn delete_manifest(&self, name: &str, reference: &Reference) -> Result<(), ApiError> {
        self.deletable()?;
        let digest = self.resolve(name, reference).await?;
        if let Reference::Tag(t) = reference {
            self.storage.delete(&paths::tag(name, t)).await?;
            return Ok(());
        }
        for tag in self.storage.list(&paths::tags(name)).await? {
            let path = paths::tag(name, &tag);
            if let Ok(bytes) = self.storage.get(&path).await {
                if String::from_utf8_lossy(&bytes).trim() == digest.as_ref() as &str {
                    self.storage.delete(&path).await?;
                }
            }
        }
        if let Ok(body) = self.storage.get(&paths::blob(&digest)).await {
            let subject = serde_json::from_slice::<Value>(&body).ok().and_then(|m| {
                m.get("subject")?
                    .get("digest")?
                    .as_str()
                    .and_then(parse_digest)
            });
            if let Some(s) = subject {
                self.storage
                    .delete(&paths::referrer(name, &s, &digest))
                    .await?;
            }
        }
        self.storage.delete(&paths::revision(name, &digest)).await?;
        Ok(())
    }
}
