//! The signature policy, read as containers/image (podman, skopeo, buildah) reads
//! `/etc/containers/policy.json`: for the `docker` transport, the requirements of the
//! most specific scope naming the image — `host/path/repo:tag`, `host/path/repo`, each
//! shorter path, `host`, then `*.domain` wildcards — else `default`; every requirement
//! of the list must hold. kiln reads `KILN_SIGNATURE_POLICY` when set, else that file;
//! with neither, every image is accepted (as `insecureAcceptAnything`).
//!
//! Requirements: `insecureAcceptAnything`, `reject`, and `sigstoreSigned` with `keyPath`
//! or `keyData` (a cosign-style signature by that key). GPG's `signedBy` is refused with a
//! message: kiln does not read GPG signatures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use super::keys;
use crate::client::Registry;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::Store;

const SYSTEM_POLICY: &str = "/etc/containers/policy.json";

#[derive(Debug, Deserialize)]
struct File {
    #[serde(default)]
    default: Vec<Requirement>,
    #[serde(default)]
    transports: BTreeMap<String, BTreeMap<String, Vec<Requirement>>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
enum Requirement {
    #[serde(rename = "insecureAcceptAnything")]
    AcceptAnything,
    #[serde(rename = "reject")]
    Reject,
    #[serde(rename = "sigstoreSigned", rename_all = "camelCase")]
    SigstoreSigned {
        key_path: Option<PathBuf>,
        key_data: Option<String>,
    },
    #[serde(rename = "signedBy")]
    SignedBy {},
    /// A requirement kiln does not know (`signedBaseLayer`, …): refused where it applies,
    /// so a policy that names one elsewhere still reads.
    #[serde(other)]
    Unknown,
}

/// A policy read from its file.
#[derive(Debug)]
pub struct Policy {
    path: PathBuf,
    default: Vec<Requirement>,
    docker: BTreeMap<String, Vec<Requirement>>,
}

impl Policy {
    /// The policy in force: `KILN_SIGNATURE_POLICY`'s file, else the system's; none when
    /// neither is there.
    pub fn load() -> Result<Option<Policy>> {
        let path = match std::env::var_os("KILN_SIGNATURE_POLICY") {
            Some(p) => PathBuf::from(p),
            None if Path::new(SYSTEM_POLICY).exists() => PathBuf::from(SYSTEM_POLICY),
            None => return Ok(None),
        };
        let text = std::fs::read(&path).map_err(Error::io("read", &path))?;
        let file: File =
            serde_json::from_slice(&text).map_err(Error::json(path.display().to_string()))?;
        Ok(Some(Policy {
            docker: file.transports.get("docker").cloned().unwrap_or_default(),
            default: file.default,
            path,
        }))
    }

    /// The requirements for `reference`: its most specific scope's, else the default's.
    fn requirements(&self, reference: &Reference) -> &[Requirement] {
        let name = reference.name();
        let mut scopes = Vec::new();
        if let Some(tag) = &reference.tag {
            scopes.push(format!("{name}:{tag}"));
        }
        let mut scope = name.as_str();
        loop {
            scopes.push(scope.to_string());
            match scope.rsplit_once('/') {
                Some((shorter, _)) => scope = shorter,
                None => break,
            }
        }
        // `*.example.com` matches a host under that domain, the closest first.
        let host = reference.domain.as_str();
        let mut rest = host;
        while let Some((_, parent)) = rest.split_once('.') {
            scopes.push(format!("*.{parent}"));
            rest = parent;
        }
        scopes
            .iter()
            .find_map(|s| self.docker.get(s))
            .map_or(&self.default, |r| r)
    }

    /// Whether the image `digest`, pulled as `reference`, may be used: every requirement
    /// of its scope holds; an error says which did not.
    pub fn check(
        &self,
        registry: &Registry,
        store: &Store,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<()> {
        let refused = |reason: String| Error::PolicyRefused {
            image: format!("{}@{digest}", reference.name()),
            policy: self.path.clone(),
            reason,
        };
        let requirements = self.requirements(reference);
        if requirements.is_empty() {
            return Err(refused(
                "its scope lists no requirement (containers/image refuses such a policy)".into(),
            ));
        }
        for requirement in requirements {
            match requirement {
                Requirement::AcceptAnything => {}
                Requirement::Reject => return Err(refused("the policy rejects it".into())),
                Requirement::SignedBy {} => {
                    return Err(refused(
                        "signedBy asks for a GPG signature, which kiln does not read: use sigstoreSigned".into(),
                    ))
                }
                Requirement::Unknown => {
                    return Err(refused(
                        "it names a requirement kiln does not know (kiln reads insecureAcceptAnything, reject and sigstoreSigned)".into(),
                    ))
                }
                Requirement::SigstoreSigned { key_path, key_data } => {
                    let text = match (key_path, key_data) {
                        (Some(path), _) => {
                            std::fs::read_to_string(path).map_err(Error::io("read", path))?
                        }
                        (None, Some(data)) => {
                            let bytes = base64::engine::general_purpose::STANDARD
                                .decode(data)
                                .map_err(|e| refused(format!("keyData is not base64: {e}")))?;
                            String::from_utf8_lossy(&bytes).into_owned()
                        }
                        (None, None) => {
                            return Err(refused("sigstoreSigned without keyPath or keyData".into()))
                        }
                    };
                    let key = keys::read_public(&text, "the policy's key")?;
                    super::verify(registry, store, reference, digest, &key)
                        .map_err(|e| refused(e.to_string()))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_naming_requirements_kiln_does_not_know_still_reads() {
        let file: File = serde_json::from_str(
            r#"{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{"example.com/a":[{"type":"signedBaseLayer","baseLayerIdentity":{}}]}}}"#,
        )
        .unwrap();
        let docker = &file.transports["docker"]["example.com/a"];
        assert!(matches!(docker[0], Requirement::Unknown));
    }
}
