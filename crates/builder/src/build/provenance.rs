//! `--provenance=mode=min|max`: a SLSA provenance v1 in-toto statement for each image a
//! build makes, stored as BuildKit stores it — an attestation manifest in the image's
//! index (platform `unknown/unknown`, `vnd.docker.reference.type: attestation-manifest`
//! naming the image's manifest) — and, as OCI 1.1 asks, with that manifest as its
//! `subject`, so a registry lists it through the referrers API. Secrets and ssh agents
//! never appear: they are not build arguments.

use std::collections::BTreeMap;

use kiln_image::digest::Digest;
use kiln_image::store::Store;
use kiln_image::Platform;
use oci_spec::image::Descriptor;
use serde_json::{json, Value};

use crate::Error;

use kiln_image::attestation::PREDICATE_TYPE;

/// How much the statement says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Build arguments, the Dockerfile's digest, the base images, the context's commit.
    Min,
    /// And the Dockerfile's text.
    Max,
}

/// What the caller knows of the build that the builder does not.
#[derive(Debug, Clone)]
pub struct Request {
    /// `mode=min` or `mode=max`.
    pub mode: Mode,
    /// The Dockerfile as the user named it, and its bytes.
    pub dockerfile_path: String,
    /// The Dockerfile's bytes (digested always, included in `max`).
    pub dockerfile: Vec<u8>,
    /// The context's git remote (without credentials) and commit, when it is a checkout.
    pub git: Option<(String, String)>,
    /// When the build started, RFC 3339.
    pub started: String,
}

/// A base image a build used: its name, platform and manifest digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The image as the Dockerfile names it.
    pub name: String,
    /// The platform it was taken for.
    pub platform: Platform,
    /// The digest of the manifest used.
    pub manifest: Digest,
}

/// `pkg:docker/NAME?platform=…`, as BuildKit names images in provenance.
fn purl(name: &str, platform: &Platform) -> String {
    let platform = platform.to_string().replace('/', "%2F");
    format!("pkg:docker/{name}?platform={platform}")
}

/// The in-toto statement for the image `manifest` that `opts` built for `platform`
/// from `dependencies`.
pub fn statement(
    request: &Request,
    opts: &super::BuildOptions,
    manifest: &Digest,
    platform: &Platform,
    dependencies: &[Dependency],
    finished: &str,
) -> Value {
    let names: Vec<String> = opts.tags.iter().map(|t| t.to_string()).collect();
    let subject_names: Vec<String> = if names.is_empty() {
        vec![purl("_", platform)]
    } else {
        names.iter().map(|n| purl(n, platform)).collect()
    };
    let subject: Vec<Value> = subject_names
        .iter()
        .map(|n| json!({"name": n, "digest": {"sha256": manifest.digest()}}))
        .collect();
    let mut args: BTreeMap<String, String> = opts
        .build_args
        .iter()
        .map(|(k, v)| (format!("build-arg:{k}"), v.clone()))
        .collect();
    if let Some(t) = &opts.target {
        args.insert("target".into(), t.to_string());
    }
    args.insert("platform".into(), platform.to_string());
    let dockerfile_digest = kiln_image::digest::sha256(&request.dockerfile);
    let mut config_source = json!({"path": request.dockerfile_path});
    if let Some((remote, commit)) = &request.git {
        config_source["uri"] = json!(remote);
        config_source["digest"] = json!({"sha1": commit});
    }
    let mut internal = json!({
        "builderPlatform": Platform::host().to_string(),
        "dockerfileDigest": dockerfile_digest.to_string(),
    });
    if request.mode == Mode::Max {
        internal["dockerfile"] = json!(String::from_utf8_lossy(&request.dockerfile));
    }
    let mut resolved: Vec<Value> = dependencies
        .iter()
        .map(|d| {
            json!({"uri": purl(&d.name, &d.platform), "digest": {"sha256": d.manifest.digest()}})
        })
        .collect();
    if let Some((remote, commit)) = &request.git {
        resolved.push(json!({"uri": remote, "digest": {"sha1": commit}}));
    }
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md",
                "externalParameters": {
                    "configSource": config_source,
                    "request": {"frontend": "dockerfile.v0", "args": args},
                },
                "internalParameters": internal,
                "resolvedDependencies": resolved,
            },
            "runDetails": {
                "builder": {"id": format!("pkg:generic/kiln@{}", env!("CARGO_PKG_VERSION"))},
                "metadata": {
                    "startedOn": request.started,
                    "finishedOn": finished,
                },
            },
        },
    })
}

/// Writes `statement` as an attestation manifest whose subject is `image` (a manifest
/// in the store); returns the index entry for it.
pub fn attach(store: &Store, image: &Descriptor, statement: &Value) -> Result<Descriptor, Error> {
    let bytes = serde_json::to_vec(statement).map_err(|source| Error::Encode {
        what: "provenance statement",
        source,
    })?;
    Ok(kiln_image::attestation::attach(store, image, &bytes)?)
}
