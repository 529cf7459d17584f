//! Image references with Docker's normalisation: `alpine` is
//! `docker.io/library/alpine:latest`; `host:5000/team/app:1`, `name@sha256:...`.

use std::fmt;

use crate::digest::{self, Digest};
use crate::error::{Error, Result};

/// Where an image without a registry in its name comes from.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const MAX_NAME: usize = 255;

/// A normalised reference: always a domain and path; a tag unless only a digest was given
/// (then `tag` is None); `latest` when neither was.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// The registry (`docker.io` when the name has none).
    pub domain: String,
    /// The repository path (`library/` before an official image's name).
    pub path: String,
    /// The tag, if one was given (or `latest` when neither a tag nor a digest was).
    pub tag: Option<String>,
    /// The digest, if one was given.
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises as `docker` does.
    pub fn parse(input: &str) -> Result<Reference> {
        let invalid = |reason: &str| Error::InvalidReference {
            reference: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(invalid("empty reference"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => (
                rest,
                Some(digest::parse(d).map_err(|e| invalid(&e.to_string()))?),
            ),
            None => (input, None),
        };
        // A tag is after the last ':' that is not part of a host:port (no '/' after it).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(invalid("a tag is up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"));
            }
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        let domain = if domain == LEGACY_DOMAIN {
            DEFAULT_DOMAIN.to_string()
        } else {
            domain
        };
        if !valid_domain(&domain) {
            return Err(invalid("invalid registry host"));
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid("repository name must be lowercase"));
        }
        if path.is_empty() || !valid_repository(&path) {
            return Err(invalid(
                "repository path components are lowercase letters and digits, separated by '.', '_', '__' or '-'",
            ));
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("{OFFICIAL_PREFIX}{path}")
        } else {
            path
        };
        if domain.len() + 1 + path.len() > MAX_NAME {
            return Err(invalid(
                "repository name must not be more than 255 characters",
            ));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// `docker.io/library/alpine`
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The short form Docker shows: `alpine`, `team/app`, `host:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_PREFIX)
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        }
    }

    /// `alpine:latest`, `host:5000/app@sha256:...`: what `kiln images` shows and what the
    /// store's `org.opencontainers.image.ref.name` holds, so `skopeo copy oci:STORE:app:1`
    /// finds it.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_ref());
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    tag.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn valid_domain(domain: &str) -> bool {
    let (host, port) = match domain.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || domain.starts_with('[') => (h, Some(p)),
        _ => (domain, None),
    };
    let host_ok = (host.starts_with('[') && host.ends_with(']'))
        || (!host.is_empty()
            && host.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }));
    host_ok && port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`: one component of a repository's path.
fn valid_path_component(c: &str) -> bool {
    let word = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let mut i = 0;
    loop {
        let run = i;
        while i < bytes.len() && word(bytes[i]) {
            i += 1;
        }
        if i == run {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let sep = i;
        while i < bytes.len() && !word(bytes[i]) {
            i += 1;
        }
        let sep = &c[sep..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-')) {
            return false;
        }
    }
}

/// A repository's path as the distribution spec's grammar has it (`library/alpine`):
/// components of `[a-z0-9]` runs joined by `.`, `_`, `__` or dashes, separated by `/`.
/// The one grammar of names, for the client and the registry.
pub fn valid_repository(path: &str) -> bool {
    path.split('/').all(valid_path_component)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_as_docker_does() {
        let cases = [
            ("alpine", "docker.io/library/alpine:latest", "alpine:latest"),
            (
                "alpine:3.19",
                "docker.io/library/alpine:3.19",
                "alpine:3.19",
            ),
            ("team/app", "docker.io/team/app:latest", "team/app:latest"),
            (
                "index.docker.io/library/busybox:1",
                "docker.io/library/busybox:1",
                "busybox:1",
            ),
            (
                "localhost/app",
                "localhost/app:latest",
                "localhost/app:latest",
            ),
            (
                "127.0.0.1:5000/a/b:v1.0",
                "127.0.0.1:5000/a/b:v1.0",
                "127.0.0.1:5000/a/b:v1.0",
            ),
            (
                "ghcr.io/o/r_x__y--z.w:tag",
                "ghcr.io/o/r_x__y--z.w:tag",
                "ghcr.io/o/r_x__y--z.w:tag",
            ),
        ];
        for (input, full, familiar) in cases {
            let r = Reference::parse(input).unwrap();
            assert_eq!(
                (r.to_string().as_str(), r.familiar().as_str()),
                (full, familiar),
                "{input}"
            );
        }
        let d = "sha256:".to_string() + &"a".repeat(64);
        let r = Reference::parse(&format!("app@{d}")).unwrap();
        assert_eq!(
            (r.tag.as_deref(), r.to_string()),
            (None, format!("docker.io/library/app@{d}"))
        );
        let r = Reference::parse(&format!("host:5000/app:1@{d}")).unwrap();
        assert_eq!(
            (r.domain.as_str(), r.tag.as_deref()),
            ("host:5000", Some("1"))
        );
    }

    #[test]
    fn bad_references_say_why() {
        for (input, why) in [
            ("", "empty"),
            ("Alpine", "lowercase"),
            ("app:", "tag"),
            ("app:-x", "tag"),
            ("app@sha256:xyz", "digest"),
            ("a//b", "path components"),
            ("a_", "path components"),
            ("a/b:c:d", "path components"),
            ("host:port/app", "registry host"),
        ] {
            let err = Reference::parse(input).unwrap_err().to_string();
            assert!(err.contains(why), "{input:?}: {err}");
        }
    }
}
