//! The spec's grammars for repository names, tags and digests. A name that passes can be
//! used as a storage path: no component is empty, `.` or `..`.

use std::sync::LazyLock;

use regex::Regex;

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
static NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
        .expect("the spec's name grammar")
});
/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
static TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").expect("the spec's tag grammar")
});

/// Names longer than this are refused (distribution's limit, host name included).
pub const MAX_NAME: usize = 255;

pub fn valid_name(name: &str) -> bool {
    name.len() <= MAX_NAME && NAME.is_match(name)
}

pub fn valid_tag(tag: &str) -> bool {
    TAG.is_match(tag)
}

/// A digest the registry can store: `sha256:` or `sha512:` and lowercase hex of the
/// right length.
pub fn parse_digest(s: &str) -> Option<kiln_image::digest::Digest> {
    let (alg, hex) = s.split_once(':')?;
    let len = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => return None,
    };
    if hex.len() != len
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    kiln_image::digest::parse(s).ok()
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(kiln_image::digest::Digest),
}

impl Reference {
    pub fn parse(s: &str) -> Option<Reference> {
        if s.contains(':') {
            parse_digest(s).map(Reference::Digest)
        } else if valid_tag(s) {
            Some(Reference::Tag(s.to_string()))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_grammar() {
        for ok in ["a", "library/alpine", "a.b_c__d---e/f0", "x/y/z"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "../a", "a/..", "a/./b", "a..b", "-a", "a_", "a___b",
            "a b",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(!valid_name(&"a".repeat(256)));
    }

    #[test]
    fn references_are_tags_or_digests() {
        assert_eq!(
            Reference::parse("v1.0"),
            Some(Reference::Tag("v1.0".into()))
        );
        assert!(Reference::parse(&format!("sha256:{}", "a".repeat(64))).is_some());
        for bad in [".x", "-x", &"a".repeat(129), "sha256:abc", "md5:00", "a/b"] {
            assert_eq!(Reference::parse(bad), None, "{bad}");
        }
        assert!(parse_digest(&format!("sha256:{}", "A".repeat(64))).is_none());
    }
}
