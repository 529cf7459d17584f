//! hadolint's label schema rules (DL3049–DL3056, DL3058): the labels a `.hadolint.yaml`
//! `label-schema` (or `--require-label LABEL:FORMAT`) asks every stage for, each value
//! checked against its format as hadolint checks it, and with `strict-labels` no others.

use super::*;
use crate::ast::Command;
use crate::lint::stages::Recorder;

/// The format a label's value must have (hadolint's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelType {
    /// Any text.
    Text,
    /// An absolute URI (DL3052).
    Url,
    /// An RFC 3339 time (DL3053).
    Rfc3339,
    /// An SPDX license identifier (DL3054).
    Spdx,
    /// A git commit hash (DL3055).
    Hash,
    /// A semantic version (DL3056).
    Semver,
    /// An e-mail address (DL3058).
    Email,
}

impl LabelType {
    /// The names [`LabelType::parse`] takes, for messages.
    pub const NAMES: &'static str = "text, url, rfc3339, spdx, hash, semver, email";

    /// The format hadolint calls `name`.
    pub fn parse(name: &str) -> Option<LabelType> {
        Some(match name {
            "text" => LabelType::Text,
            "url" => LabelType::Url,
            "rfc3339" => LabelType::Rfc3339,
            "spdx" => LabelType::Spdx,
            "hash" => LabelType::Hash,
            "semver" => LabelType::Semver,
            "email" => LabelType::Email,
            _ => return None,
        })
    }

    /// The rule and message for a value that is not of this type.
    fn invalid(self, label: &str) -> Option<(&'static Rule, String)> {
        let (rule, what) = match self {
            LabelType::Text => return None,
            LabelType::Url => (&DL3052, "is not a valid URL"),
            LabelType::Rfc3339 => (
                &DL3053,
                "is not a valid time format - must conform to RFC3339",
            ),
            LabelType::Spdx => (&DL3054, "is not a valid SPDX identifier"),
            LabelType::Hash => (&DL3055, "is not a valid git hash"),
            LabelType::Semver => (&DL3056, "does not conform to semantic versioning"),
            LabelType::Email => (
                &DL3058,
                "is not a valid email format - must conform to RFC5322",
            ),
        };
        Some((rule, format!("Label `{label}` {what}.")))
    }

    fn accepts(self, value: &str) -> bool {
        match self {
            LabelType::Text => true,
            LabelType::Url => is_absolute_uri(value),
            LabelType::Rfc3339 => is_rfc3339(value),
            // One license identifier from the SPDX list, as hadolint takes it (no
            // expressions).
            LabelType::Spdx => spdx::license_id(value).is_some(),
            // A full or abbreviated commit id, lower-case.
            LabelType::Hash => {
                matches!(value.len(), 7 | 40)
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            }
            LabelType::Semver => is_semver(value),
            // An address alone: `Ops <ops@example.org>` is not one.
            LabelType::Email => email_address::EmailAddress::parse_with_options(
                value,
                email_address::Options::default().without_display_text(),
            )
            .is_ok(),
        }
    }
}

/// The labels every stage must carry, and whether others are refused.
#[derive(Debug, Default, Clone)]
pub struct LabelSchema {
    /// The labels asked for, with their formats.
    pub labels: Vec<(String, LabelType)>,
    /// `strict-labels`: a label not in the schema is a finding (DL3050).
    pub strict: bool,
}

impl LabelSchema {
    /// No labels asked for, none refused.
    pub const EMPTY: LabelSchema = LabelSchema {
        labels: Vec::new(),
        strict: false,
    };

    fn get(&self, key: &str) -> Option<LabelType> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, t)| *t)
    }
}

/// A label key or value as the image gets it: unquoted; one with a variable as written
/// (hadolint checks it so: `version=$V` is not a version).
fn unquoted(word: &str, escape: char) -> String {
    if word.contains('$') {
        return word.to_string();
    }
    let none = std::collections::BTreeMap::new();
    crate::expand::word(word, escape, &Recorder::new(&none)).unwrap_or_else(|_| word.to_string())
}

pub fn check(file: &File, schema: &LabelSchema, out: &mut Vec<Finding>) {
    if schema.labels.is_empty() {
        return;
    }
    let escape = file.df.escape;
    for stage in &file.stages {
        let keys: Vec<String> = stage
            .instructions
            .iter()
            .filter_map(|i| match &i.command {
                Command::Label(pairs) => Some(pairs.iter().map(|p| unquoted(&p.key, escape))),
                _ => None,
            })
            .flatten()
            .collect();
        for (label, _) in &schema.labels {
            if !keys.contains(label) {
                out.push(Finding::at(
                    &DL3049,
                    stage.from,
                    format!("Label `{label}` is missing."),
                ));
            }
        }
        for instr in stage.instructions.iter() {
            let Command::Label(labels) = &instr.command else {
                continue;
            };
            let pairs: Vec<(String, String)> = labels
                .iter()
                .map(|p| (unquoted(&p.key, escape), unquoted(&p.value, escape)))
                .collect();
            if schema.strict && pairs.iter().any(|(k, _)| schema.get(k).is_none()) {
                out.push(Finding::at(
                    &DL3050,
                    instr,
                    "Superfluous label(s) present.".to_string(),
                ));
            }
            for (key, value) in &pairs {
                let Some(kind) = schema.get(key) else {
                    continue;
                };
                if value.is_empty() {
                    // hadolint's own spelling, lower-case.
                    out.push(Finding::at(
                        &DL3051,
                        instr,
                        format!("label `{key}` is empty."),
                    ));
                }
                if !kind.accepts(value) {
                    if let Some((rule, message)) = kind.invalid(key) {
                        out.push(Finding::at(rule, instr, message));
                    }
                }
            }
        }
    }
}

/// `scheme:rest` with an RFC 3986 scheme and no spaces (what hadolint's `parseURI`
/// accepts: `https://example.org`, `mailto:x`; not `/path`).
fn is_absolute_uri(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.contains(char::is_whitespace)
}

/// RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, `T` and `Z` in either case.
fn is_rfc3339(value: &str) -> bool {
    let b = value.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range.clone())
            .is_some_and(|d| d.len() == range.len() && d.iter().all(u8::is_ascii_digit))
    };
    let number = |range: std::ops::Range<usize>| value[range].parse::<u32>().unwrap_or(99);
    let date_time = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && matches!(b.get(10), Some(b'T' | b't'))
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19);
    if !date_time
        || !(1..=12).contains(&number(5..7))
        || !(1..=31).contains(&number(8..10))
        || number(11..13) > 23
        || number(14..16) > 59
        || number(17..19) > 60
    {
        return false;
    }
    let mut rest = &value[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest.as_bytes() {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit()),
        _ => false,
    }
}

/// `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`, numbers of digits (hadolint lets leading
/// zeros pass), identifiers of `[0-9A-Za-z-]` separated by dots.
fn is_semver(value: &str) -> bool {
    let (rest, build) = match value.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (value, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let identifiers = |s: &str| {
        s.split('.')
            .all(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    let numbers: Vec<&str> = core.split('.').collect();
    numbers.len() == 3
        && numbers
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && pre.is_none_or(identifiers)
        && build.is_none_or(identifiers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_as_hadolint_checks_them() {
        for (kind, good, bad) in [
            (
                LabelType::Url,
                &["https://example.org", "x:y", "http://"][..],
                &["/path", "notaurl", "1http://x", ""][..],
            ),
            (
                LabelType::Rfc3339,
                &[
                    "2024-01-02T03:04:05Z",
                    "2024-01-02t03:04:05.123z",
                    "2024-01-02T03:04:05+02:00",
                ],
                &[
                    "2024-01-02",
                    "2024-01-02 03:04:05Z",
                    "2024-13-02T03:04:05Z",
                    "2024-01-02T03:04:05",
                ],
            ),
            (
                LabelType::Spdx,
                &["MIT", "Apache-2.0", "GPL-2.0-or-later"],
                &["mit", "MIT OR Apache-2.0", "LicenseRef-x", "MIT/Apache-2.0"],
            ),
            (
                LabelType::Hash,
                &["0123abc", "0123456789abcdef0123456789abcdef01234567"],
                &[
                    "abcdef",
                    "01234567",
                    "0123456789ABCDEF0123456789abcdef01234567",
                ],
            ),
            (
                LabelType::Semver,
                &["1.2.3", "1.2.3-rc.1+b5", "01.2.3"],
                &["v1.2.3", "1.2", "1.2.3-", "1.2.3+"],
            ),
            (
                LabelType::Email,
                &["a@b", "a.b@c.d"],
                &["A <a@b.org>", "a@@b", "@b.org"],
            ),
        ] {
            for v in good {
                assert!(kind.accepts(v), "{kind:?} accepts {v:?}");
            }
            for v in bad {
                assert!(!kind.accepts(v), "{kind:?} refuses {v:?}");
            }
        }
    }
}
