//! One catch-all route, `/v2/{*rest}`, and this parser: what a request path names. Repository
//! names contain slashes, so the keyword that ends the name is searched from the right
//! (a tag, digest or session id never contains a slash).

use crate::errcode::{ApiError, Code};
use crate::names::{parse_digest, valid_name, Reference};
use kiln_image::digest::Digest;

/// What a request path under `/v2/` names. `name` is always a valid repository name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags {
        /// The repository.
        name: String,
    },
    /// `/v2/<name>/manifests/<reference>`
    Manifest {
        /// The repository.
        name: String,
        /// A tag or a digest.
        reference: Reference,
    },
    /// `/v2/<name>/blobs/<digest>`
    Blob {
        /// The repository.
        name: String,
        /// The blob.
        digest: Digest,
    },
    /// `/v2/<name>/blobs/uploads/`
    Uploads {
        /// The repository.
        name: String,
    },
    /// `/v2/<name>/blobs/uploads/<session>`
    Upload {
        /// The repository.
        name: String,
        /// The session id the registry gave in `Location`.
        session: String,
    },
    /// `/v2/<name>/referrers/<digest>`
    Referrers {
        /// The repository.
        name: String,
        /// The subject manifest.
        digest: Digest,
    },
}

/// The route of `path` (what follows `/v2/`), or the spec's error for a malformed name,
/// reference or digest; None for a path the API does not have.
pub fn parse(path: &str) -> Result<Option<Route>, ApiError> {
    if path.is_empty() {
        return Ok(Some(Route::Base));
    }
    if path == "_catalog" {
        return Ok(Some(Route::Catalog));
    }
    if let Some(name) = path.strip_suffix("/tags/list") {
        return Ok(Some(Route::Tags {
            name: name_of(name)?,
        }));
    }
    if let Some(name) = path
        .strip_suffix("/blobs/uploads/")
        .or(path.strip_suffix("/blobs/uploads"))
    {
        return Ok(Some(Route::Uploads {
            name: name_of(name)?,
        }));
    }
    if let Some((name, session)) = path.rsplit_once("/blobs/uploads/") {
        if !valid_session(session) {
            return Err(ApiError::new(
                Code::BlobUploadUnknown,
                format!("no upload session {session:?}"),
            ));
        }
        return Ok(Some(Route::Upload {
            name: name_of(name)?,
            session: session.to_string(),
        }));
    }
    if let Some((name, reference)) = path.rsplit_once("/manifests/") {
        let name = name_of(name)?;
        let reference = Reference::parse(reference).ok_or_else(|| {
            ApiError::new(
                Code::ManifestInvalid,
                format!("{reference:?} is neither a tag nor a digest"),
            )
        })?;
        return Ok(Some(Route::Manifest { name, reference }));
    }
    if let Some((name, digest)) = path.rsplit_once("/blobs/") {
        let name = name_of(name)?;
        return Ok(Some(Route::Blob {
            name,
            digest: digest_of(digest)?,
        }));
    }
    if let Some((name, digest)) = path.rsplit_once("/referrers/") {
        let name = name_of(name)?;
        return Ok(Some(Route::Referrers {
            name,
            digest: digest_of(digest)?,
        }));
    }
    Ok(None)
}

fn name_of(name: &str) -> Result<String, ApiError> {
    if valid_name(name) {
        Ok(name.to_string())
    } else {
        Err(ApiError::new(
            Code::NameInvalid,
            format!("{name:?} is not a repository name: lowercase letters and digits, separated by '.', '_', '__', '-' or '/'"),
        ))
    }
}

fn digest_of(digest: &str) -> Result<Digest, ApiError> {
    parse_digest(digest).ok_or_else(|| {
        ApiError::new(
            Code::DigestInvalid,
            format!("{digest:?} is not a digest (sha256:<64 hex> or sha512:<128 hex>)"),
        )
    })
}

/// Sessions are ids this registry made (32 lowercase hex): nothing else can reach storage.
pub fn valid_session(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex() -> String {
        "ab".repeat(32)
    }

    #[test]
    fn paths_name_routes() {
        let d = format!("sha256:{}", hex());
        let s = "0123456789abcdef0123456789abcdef";
        let cases = [
            ("", Route::Base),
            ("_catalog", Route::Catalog),
            ("a/b/tags/list", Route::Tags { name: "a/b".into() }),
            (
                "a/manifests/latest",
                Route::Manifest {
                    name: "a".into(),
                    reference: Reference::Tag("latest".into()),
                },
            ),
            (
                "my/manifests/x/manifests/v1",
                Route::Manifest {
                    name: "my/manifests/x".into(),
                    reference: Reference::Tag("v1".into()),
                },
            ),
            ("a/blobs/uploads/", Route::Uploads { name: "a".into() }),
            (
                &format!("a/blobs/uploads/{s}"),
                Route::Upload {
                    name: "a".into(),
                    session: s.into(),
                },
            ),
            (
                &format!("blobs/blobs/{d}"),
                Route::Blob {
                    name: "blobs".into(),
                    digest: parse_digest(&d).unwrap(),
                },
            ),
            (
                &format!("a/referrers/{d}"),
                Route::Referrers {
                    name: "a".into(),
                    digest: parse_digest(&d).unwrap(),
                },
            ),
        ];
        for (path, route) in cases {
            assert_eq!(parse(path).unwrap(), Some(route), "{path}");
        }
        assert_eq!(parse("a/b/c").unwrap(), None);
    }

    #[test]
    fn malformed_parts_get_the_spec_codes() {
        let code = |p: &str| parse(p).unwrap_err().code;
        assert_eq!(code("../etc/tags/list"), Code::NameInvalid);
        assert_eq!(code("A/manifests/x"), Code::NameInvalid);
        assert_eq!(code("a/manifests/-x"), Code::ManifestInvalid);
        assert_eq!(code("a/blobs/sha256:zz"), Code::DigestInvalid);
        assert_eq!(code("a/blobs/uploads/../../x"), Code::BlobUploadUnknown);
    }
}
