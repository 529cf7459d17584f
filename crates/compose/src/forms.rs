//! The short forms the Compose Specification allows, each read into its long form: a
//! port string into `{target, published, host_ip, protocol}`, a volume string into
//! `{type, source, target}`, a list of `K=V` into a map, a command string into words.
//! Each one says what it expected when the file has something else.

use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_yaml_ng::Value;

use crate::model::{
    Build, Dependency, EnvFile, FileRef, Port, ServiceNetwork, ServiceVolume, VolumeKind,
    VolumeOptions,
};

/// A scalar as text (Compose takes `8080` where it means `"8080"`).
pub(crate) fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn expected<E: serde::de::Error>(what: &str, got: &Value) -> E {
    E::custom(format!("expected {what}, got {}", describe(got)))
}

fn long<T: DeserializeOwned, E: serde::de::Error>(value: Value) -> Result<T, E> {
    item(value, None)
}

/// Where a long form sits in the value around it: a list's item or a map's entry.
enum At<'a> {
    Index(usize),
    Key(&'a str),
}

/// A long form, its error naming where in it (and which item or entry, `at`) it went
/// wrong: the caller's path comes before it.
fn item<T: DeserializeOwned, E: serde::de::Error>(value: Value, at: Option<At>) -> Result<T, E> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let inner = if inner == "." { "" } else { inner.as_str() };
        let mut place = match at {
            Some(At::Index(i)) => format!("[{i}]"),
            Some(At::Key(k)) => k.to_string(),
            None => String::new(),
        };
        if !place.is_empty() && !inner.is_empty() && !inner.starts_with('[') {
            place.push('.');
        }
        place.push_str(inner);
        if place.is_empty() {
            E::custom(e.into_inner())
        } else {
            E::custom(format!("{place}: {}", e.into_inner()))
        }
    })
}

/// A list's items (none for nothing).
fn list<'de, D: Deserializer<'de>>(d: D, what: &str) -> Result<Vec<Value>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(items) => Ok(items),
        v => Err(expected(what, &v)),
    }
}

pub(crate) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v => scalar(&v)
            .map(Some)
            .ok_or_else(|| expected("a string or a number", &v)),
    }
}

/// A string, or a list of them.
pub(crate) fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(items) => items
            .iter()
            .map(|v| scalar(v).ok_or_else(|| expected("a list of strings", v)))
            .collect(),
        v => scalar(&v)
            .map(|s| vec![s])
            .ok_or_else(|| expected("a string or a list of strings", &v)),
    }
}

/// A map whose entries may be empty (`networks: {front: }`): each then its default.
pub(crate) fn nullable_map<'de, D, T>(d: D) -> Result<BTreeMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    let map: BTreeMap<String, Value> = match Value::deserialize(d)? {
        Value::Null => return Ok(BTreeMap::new()),
        v => long(v)?,
    };
    map.into_iter()
        .map(|(k, v)| match v {
            Value::Null => Ok((k, T::default())),
            v => item(v, Some(At::Key(&k))).map(|t| (k, t)),
        })
        .collect()
}

/// A command: a string (split into words as a shell would) or a list.
pub(crate) fn command<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => split_words(&s).map(Some).map_err(D::Error::custom),
        Value::Sequence(items) => items
            .iter()
            .map(|v| scalar(v).ok_or_else(|| expected("a list of strings", v)))
            .collect::<Result<_, _>>()
            .map(Some),
        v => Err(expected("a string or a list", &v)),
    }
}

/// Words as a POSIX shell splits them: whitespace, `'…'`, `"…"` and `\` escapes.
pub(crate) fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("an unclosed ' in {text:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("an unclosed \" in {text:?}")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("an unclosed \" in {text:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// `environment` (and build `args`): a map, whose values may be empty, or `K=V`/`K` items.
pub(crate) fn environment<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Option<String>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(BTreeMap::new()),
        Value::Mapping(map) => map
            .iter()
            .map(|(k, v)| {
                let key = scalar(k).ok_or_else(|| expected("a variable name", k))?;
                let value = match v {
                    Value::Null => None,
                    v => Some(
                        scalar(v).ok_or_else(|| expected("a string, a number or nothing", v))?,
                    ),
                };
                Ok((key, value))
            })
            .collect(),
        Value::Sequence(items) => items
            .iter()
            .map(|v| {
                let item = scalar(v).ok_or_else(|| expected("KEY=VALUE", v))?;
                Ok(match item.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (item, None),
                })
            })
            .collect(),
        v => Err(expected("a mapping or a list of KEY=VALUE", &v)),
    }
}

/// `labels` and driver options: a map, or `K=V` items.
pub(crate) fn labels<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(environment(d)?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

pub(crate) fn build<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Build>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(context) => Ok(Some(Build {
            context,
            ..Build::default()
        })),
        v @ Value::Mapping(_) => {
            let mut map = match v {
                Value::Mapping(m) => m,
                _ => unreachable!(),
            };
            // `context` defaults to the project's directory.
            map.entry(Value::String("context".into()))
                .or_insert(Value::String(".".into()));
            long(Value::Mapping(map)).map(Some)
        }
        v => Err(expected("a context path or a mapping", &v)),
    }
}

pub(crate) fn depends_on<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Dependency>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(BTreeMap::new()),
        Value::Sequence(items) => items
            .iter()
            .map(|v| {
                scalar(v)
                    .map(|name| (name, Dependency::default()))
                    .ok_or_else(|| expected("a service name", v))
            })
            .collect(),
        v @ Value::Mapping(_) => nullable_map(v).map_err(D::Error::custom),
        v => Err(expected("a list of services or a mapping", &v)),
    }
}

pub(crate) fn service_networks<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Option<ServiceNetwork>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(BTreeMap::new()),
        Value::Sequence(items) => items
            .iter()
            .map(|v| {
                scalar(v)
                    .map(|name| (name, None))
                    .ok_or_else(|| expected("a network name", v))
            })
            .collect(),
        Value::Mapping(map) => map
            .into_iter()
            .map(|(k, v)| {
                let name = scalar(&k).ok_or_else(|| expected("a network name", &k))?;
                let network = match v {
                    Value::Null => None,
                    v => Some(item(v, Some(At::Key(&name)))?),
                };
                Ok((name, network))
            })
            .collect(),
        v => Err(expected("a list of networks or a mapping", &v)),
    }
}

/// `ports`: `"[HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL]"` (ranges give one entry per
/// port), a number, or the long form.
pub(crate) fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Port>, D::Error> {
    let items = list(d, "a list of ports")?;
    let mut ports = Vec::new();
    for (i, entry) in items.into_iter().enumerate() {
        match entry {
            v @ Value::Mapping(_) => ports.push(item(v, Some(At::Index(i)))?),
            v => {
                let text = scalar(&v).ok_or_else(|| expected("a port", &v))?;
                ports.extend(short_port(&text).map_err(D::Error::custom)?);
            }
        }
    }
    Ok(ports)
}

fn short_port(text: &str) -> Result<Vec<Port>, String> {
    let bad = || format!("{text:?} is not a port: write [HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL]");
    let (rest, protocol) = match text.rsplit_once('/') {
        Some((rest, p)) => (rest, p.to_string()),
        None => (text, "tcp".to_string()),
    };
    // An IPv6 host address comes in brackets.
    let (host_ip, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let (ip, after) = r.split_once("]:").ok_or_else(bad)?;
            (Some(ip.to_string()), after)
        }
        None => match rest.matches(':').count() {
            2 => {
                let (ip, after) = rest.split_once(':').ok_or_else(bad)?;
                (Some(ip.to_string()), after)
            }
            _ => (None, rest),
        },
    };
    let (published, target) = match rest.split_once(':') {
        Some((p, t)) => (Some(p), t),
        None => (None, rest),
    };
    let range = |s: &str| -> Result<(u16, u16), String> {
        let number = |n: &str| n.parse::<u16>().map_err(|_| bad());
        match s.split_once('-') {
            Some((a, b)) => Ok((number(a)?, number(b)?)),
            None => Ok((number(s)?, number(s)?)),
        }
    };
    let (first, last) = range(target)?;
    let published: Vec<Option<String>> = match published.filter(|p| !p.is_empty()) {
        None => vec![None; usize::from(last.saturating_sub(first)) + 1],
        Some(p) => {
            let (a, b) = range(p)?;
            if b - a == last - first {
                (a..=b).map(|n| Some(n.to_string())).collect()
            } else if first == last {
                // A host range for one target: any port of it.
                vec![Some(p.to_string())]
            } else {
                return Err(bad());
            }
        }
    };
    Ok((first..=last)
        .zip(published)
        .map(|(target, published)| Port {
            mode: "ingress".to_string(),
            host_ip: host_ip.clone().filter(|ip| !ip.is_empty()),
            target,
            published,
            protocol: protocol.clone(),
        })
        .collect())
}

/// `volumes` of a service: `SOURCE:TARGET[:MODE]`, `TARGET` (an anonymous volume), or
/// the long form. A source that is a path makes a bind.
pub(crate) fn volumes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ServiceVolume>, D::Error> {
    let items = list(d, "a list of volumes")?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, entry)| match entry {
            v @ Value::Mapping(_) => item(v, Some(At::Index(i))),
            v => {
                let text = scalar(&v).ok_or_else(|| expected("a volume", &v))?;
                short_volume(&text).map_err(D::Error::custom)
            }
        })
        .collect()
}

fn short_volume(text: &str) -> Result<ServiceVolume, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => (None, *target, None),
        [source, target] => (Some(*source), *target, None),
        [source, target, mode] => (Some(*source), *target, Some(*mode)),
        _ => {
            return Err(format!(
                "{text:?} is not a volume: write [SOURCE:]TARGET[:ro|rw]"
            ))
        }
    };
    if !target.starts_with('/') {
        return Err(format!(
            "{text:?}: the target {target:?} is not an absolute path"
        ));
    }
    let read_only = match mode {
        None | Some("rw") => false,
        Some(m) if m.split(',').any(|o| o == "ro") => true,
        Some(_) => false,
    };
    let is_path = |s: &str| s.starts_with('/') || s.starts_with('.') || s.starts_with('~');
    Ok(match source {
        Some(s) if is_path(s) => ServiceVolume {
            kind: VolumeKind::Bind,
            source: Some(s.to_string()),
            target: target.to_string(),
            read_only,
            bind: Some(crate::model::BindOptions {
                create_host_path: true,
            }),
            volume: None,
            tmpfs: None,
        },
        source => ServiceVolume {
            kind: VolumeKind::Volume,
            source: source.map(str::to_string),
            target: target.to_string(),
            read_only,
            bind: None,
            volume: Some(VolumeOptions::default()),
            tmpfs: None,
        },
    })
}

/// `secrets`/`configs` of a service: names, or the long form.
pub(crate) fn file_refs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<FileRef>, D::Error> {
    let items = list(d, "a list")?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, entry)| match entry {
            v @ Value::Mapping(_) => item(v, Some(At::Index(i))),
            v => scalar(&v)
                .map(|source| FileRef {
                    source,
                    ..FileRef::default()
                })
                .ok_or_else(|| expected("a name or a mapping", &v)),
        })
        .collect()
}

pub(crate) fn env_files<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EnvFile>, D::Error> {
    let items = match Value::deserialize(d)? {
        Value::Null => return Ok(Vec::new()),
        Value::Sequence(items) => items,
        v => vec![v],
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, entry)| match entry {
            v @ Value::Mapping(_) => item(v, Some(At::Index(i))),
            v => scalar(&v)
                .map(|path| EnvFile {
                    path,
                    required: true,
                })
                .ok_or_else(|| expected("a path or a mapping", &v)),
        })
        .collect()
}

/// A healthcheck's `test`: a string is `["CMD-SHELL", it]`.
pub(crate) fn healthcheck_test<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(vec!["CMD-SHELL".to_string(), s])),
        v => command(v).map_err(D::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ports_become_dockers_long_form() {
        let one = |s| short_port(s).unwrap();
        let p = &one("8080:80")[0];
        assert_eq!(
            (p.target, p.published.as_deref(), p.protocol.as_str()),
            (80, Some("8080"), "tcp")
        );
        let p = &one("127.0.0.1:5353:53/udp")[0];
        assert_eq!(p.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(p.protocol, "udp");
        assert_eq!(one("80")[0].published, None);
        let range = one("9000-9001:8000-8001");
        assert_eq!(range.len(), 2);
        assert_eq!(range[1].published.as_deref(), Some("9001"));
        assert_eq!(one("[::1]:8080:80")[0].host_ip.as_deref(), Some("::1"));
        assert!(short_port("x:80").is_err());
        assert!(short_port("1-3:1-2").is_err());
    }

    #[test]
    fn short_volumes_become_binds_or_volumes() {
        let v = short_volume("./data:/data:ro").unwrap();
        assert_eq!((v.kind, v.read_only), (VolumeKind::Bind, true));
        let v = short_volume("db:/var/lib/db").unwrap();
        assert_eq!(
            (v.kind, v.source.as_deref()),
            (VolumeKind::Volume, Some("db"))
        );
        let v = short_volume("/cache").unwrap();
        assert_eq!((v.kind, v.source), (VolumeKind::Volume, None));
        assert!(short_volume("db:relative").is_err());
    }

    #[test]
    fn commands_split_as_a_shell_splits() {
        assert_eq!(
            split_words(r#"sh -c 'echo "hi there"' a\ b "x\"y""#).unwrap(),
            ["sh", "-c", "echo \"hi there\"", "a b", "x\"y"]
        );
        assert!(split_words("echo 'open").is_err());
    }
}
