//! Repository names, tags and digests as the registry takes them: the image crate's
//! grammar (one for client and registry), with distribution's length limit. A name that
//! passes can be used as a storage path: no component is empty, `.` or `..`.

/// Names longer than this are refused (distribution's limit, host name included).
pub const MAX_NAME: usize = 255;

/// Whether `name` is a repository name the registry takes (the spec's grammar, at most
/// [`MAX_NAME`] bytes).
pub fn valid_name(name: &str) -> bool {
    name.len() <= MAX_NAME && kiln_image::reference::valid_repository(name)
}

pub use kiln_image::reference::valid_tag;

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
    /// A tag (the spec's `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`).
    Tag(String),
    /// A digest the registry can store.
    Digest(kiln_image::digest::Digest),
}

impl Reference {
    /// A digest when `s` has a `:`, else a tag; None when it is neither.
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
