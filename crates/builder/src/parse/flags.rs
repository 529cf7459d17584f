//! Builder flags (`--from=build`, `--mount=...`): reading them as BuildKit does, checking
//! them against what each instruction takes, and the values of the structured ones.

use std::time::Duration;

use pest::iterators::Pair;
use pest::Parser;

use super::instruction::Fail;
use crate::ast::{CacheSharing, Mount, MountKind, NetworkMode, Security};
use crate::grammar::{DockerfileGrammar, Rule};

/// How a flag takes its value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `--link` or `--link=true|false`.
    Bool,
    /// `--from=NAME`, once.
    Text,
    /// `--mount=...`, any number of times.
    List,
}

/// The flags each instruction takes; all others are refused.
pub(super) fn allowed(keyword: &str) -> &'static [(&'static str, Kind)] {
    use Kind::*;
    match keyword {
        "from" => &[("platform", Text)],
        "run" => &[("mount", List), ("network", Text), ("security", Text)],
        "copy" => &[
            ("from", Text),
            ("chown", Text),
            ("chmod", Text),
            ("link", Bool),
            ("parents", Bool),
            ("exclude", List),
        ],
        "add" => &[
            ("chown", Text),
            ("chmod", Text),
            ("link", Bool),
            ("exclude", List),
            ("checksum", Text),
            ("keep-git-dir", Bool),
        ],
        "healthcheck" => &[
            ("interval", Text),
            ("timeout", Text),
            ("start-period", Text),
            ("start-interval", Text),
            ("retries", Text),
        ],
        _ => &[],
    }
}

struct Flag {
    name: String,
    value: Option<String>,
    /// `--name=value` with quotes and escapes removed, as BuildKit's AST keeps it.
    word: String,
    offset: usize,
}

/// The flags of one instruction, checked.
pub(super) struct Flags {
    flags: Vec<Flag>,
}

impl Flags {
    pub(super) fn read(pair: Pair<'_, Rule>, keyword: &str) -> Result<Flags, Fail> {
        let allowed = allowed(keyword);
        let mut flags: Vec<Flag> = Vec::new();
        for flag in pair.into_inner() {
            let offset = flag.as_span().start();
            let word = unquote_flag(flag.as_str());
            let body = &word[2..];
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (body.to_string(), None),
            };
            let Some(&(_, kind)) = allowed.iter().find(|(n, _)| *n == name) else {
                let takes = if allowed.is_empty() {
                    format!("{} takes no flags", keyword.to_uppercase())
                } else {
                    let names: Vec<String> =
                        allowed.iter().map(|(n, _)| format!("--{n}")).collect();
                    format!("{} takes {}", keyword.to_uppercase(), names.join(", "))
                };
                return Err((offset, format!("unknown flag: --{name} ({takes})")));
            };
            if kind != Kind::List && flags.iter().any(|f| f.name == name) {
                return Err((offset, format!("duplicate flag specified: --{name}")));
            }
            match (kind, value.as_deref()) {
                (Kind::Bool, Some(v))
                    if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") =>
                {
                    return Err((
                        offset,
                        format!("expecting boolean value for flag --{name}, not: {v}"),
                    ))
                }
                (Kind::Text | Kind::List, None) => {
                    return Err((
                        offset,
                        format!("missing a value on flag: --{name} (write --{name}=VALUE)"),
                    ))
                }
                _ => {}
            }
            flags.push(Flag {
                name,
                value,
                word,
                offset,
            });
        }
        Ok(Flags { flags })
    }

    pub(super) fn words(&self) -> Vec<String> {
        self.flags.iter().map(|f| f.word.clone()).collect()
    }

    pub(super) fn text(&self, name: &str) -> Option<String> {
        self.flags
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.value.clone())
    }

    pub(super) fn bool(&self, name: &str) -> bool {
        self.flags.iter().find(|f| f.name == name).is_some_and(|f| {
            f.value
                .as_deref()
                .is_none_or(|v| v.eq_ignore_ascii_case("true"))
        })
    }

    fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Flag> + 's {
        self.flags.iter().filter(move |f| f.name == name)
    }

    pub(super) fn list(&self, name: &str) -> Vec<String> {
        self.all(name).filter_map(|f| f.value.clone()).collect()
    }

    fn offset(&self, name: &str) -> usize {
        self.all(name).next().map_or(0, |f| f.offset)
    }

    pub(super) fn network(&self) -> Result<Option<NetworkMode>, Fail> {
        self.text("network")
            .map(|v| match v.as_str() {
                "default" => Ok(NetworkMode::Default),
                "none" => Ok(NetworkMode::None),
                "host" => Ok(NetworkMode::Host),
                _ => Err((
                    self.offset("network"),
                    format!("unsupported network mode {v:?} (use default, none or host)"),
                )),
            })
            .transpose()
    }

    pub(super) fn security(&self) -> Result<Option<Security>, Fail> {
        self.text("security")
            .map(|v| match v.as_str() {
                "sandbox" => Ok(Security::Sandbox),
                "insecure" => Ok(Security::Insecure),
                _ => Err((
                    self.offset("security"),
                    format!("unsupported security mode {v:?} (use sandbox or insecure)"),
                )),
            })
            .transpose()
    }

    pub(super) fn mounts(&self) -> Result<Vec<Mount>, Fail> {
        self.all("mount")
            .map(|f| parse_mount(f.value.as_deref().unwrap_or_default()).map_err(|m| (f.offset, m)))
            .collect()
    }

    pub(super) fn duration(&self, name: &str) -> Result<Option<Duration>, Fail> {
        let Some(v) = self.text(name) else {
            return Ok(None);
        };
        let at = self.offset(name);
        let d = parse_go_duration(&v).ok_or_else(|| {
            (
                at,
                format!("--{name}: invalid duration {v:?} (write e.g. 30s, 1m30s, 500ms)"),
            )
        })?;
        if !d.is_zero() && d < Duration::from_millis(1) {
            return Err((at, format!("--{name} cannot be less than 1ms")));
        }
        Ok(Some(d))
    }

    pub(super) fn retries(&self) -> Result<Option<u32>, Fail> {
        self.text("retries")
            .map(|v| {
                v.parse::<u32>().map_err(|_| {
                    (
                        self.offset("retries"),
                        format!("--retries must be a whole number 0 or more, not {v:?}"),
                    )
                })
            })
            .transpose()
    }
}

/// Removes quotes and `\` escapes from a flag word, as BuildKit's extractBuilderFlags.
fn unquote_flag(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut quote: Option<char> = None;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (_, c) => out.push(c),
        }
    }
    out
}

fn parse_mount(spec: &str) -> Result<Mount, String> {
    let fields = DockerfileGrammar::parse(Rule::mount_spec, spec)
        .map_err(|_| format!("cannot read mount {spec:?}: write type=TYPE,key=value,..."))?;
    let mut mount = Mount {
        kind: MountKind::Bind,
        target: None,
        source: None,
        from: None,
        readonly: None,
        id: None,
        sharing: None,
        mode: None,
        uid: None,
        gid: None,
        required: None,
        size: None,
        env: None,
    };
    let mut fields: Vec<String> = fields
        .flat_map(|p| p.into_inner())
        .filter(|p| p.as_rule() == Rule::mount_field)
        .map(|p| csv_unquote(p.as_str()))
        .collect();
    // The type decides which keys are valid, so read it first wherever it stands.
    if let Some(i) = fields.iter().position(|f| {
        f.split('=')
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("type"))
    }) {
        let field = fields.remove(i);
        let value = field.split_once('=').map_or("", |(_, v)| v);
        mount.kind = match value.to_ascii_lowercase().as_str() {
            "bind" => MountKind::Bind,
            "cache" => MountKind::Cache,
            "tmpfs" => MountKind::Tmpfs,
            "secret" => MountKind::Secret,
            "ssh" => MountKind::Ssh,
            _ => {
                return Err(format!(
                    "unsupported mount type {value:?} (use bind, cache, tmpfs, secret or ssh)"
                ))
            }
        };
    }
    for field in fields.iter().filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| {
            v.map(str::to_string)
                .ok_or_else(|| format!("mount option {key} needs a value: {key}=..."))
        };
        let flag = |v: Option<&str>| match v.map(str::to_ascii_lowercase).as_deref() {
            None | Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(format!(
                "mount option {key}: expected true or false, not {other:?}"
            )),
        };
        let number = |v: Option<&str>, radix: u32| -> Result<u64, String> {
            let v = v.ok_or_else(|| format!("mount option {key} needs a value"))?;
            u64::from_str_radix(v, radix)
                .map_err(|_| format!("mount option {key}: invalid number {v:?}"))
        };
        let kind = mount.kind;
        let valid = match key.as_str() {
            "target" | "dst" | "destination" => {
                mount.target = Some(need(value)?);
                true
            }
            "source" | "src" => {
                mount.source = Some(need(value)?);
                kind != MountKind::Tmpfs
            }
            "from" => {
                mount.from = Some(need(value)?);
                matches!(kind, MountKind::Bind | MountKind::Cache)
            }
            "readonly" | "ro" => {
                mount.readonly = Some(flag(value)?);
                matches!(kind, MountKind::Bind | MountKind::Cache)
            }
            "readwrite" | "rw" => {
                mount.readonly = Some(!flag(value)?);
                matches!(kind, MountKind::Bind | MountKind::Cache)
            }
            "id" => {
                mount.id = Some(need(value)?);
                matches!(kind, MountKind::Cache | MountKind::Secret | MountKind::Ssh)
            }
            "sharing" => {
                let v = need(value)?;
                mount.sharing = Some(match v.to_ascii_lowercase().as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    _ => {
                        return Err(format!(
                            "unsupported sharing value {v:?} (use shared, private or locked)"
                        ))
                    }
                });
                kind == MountKind::Cache
            }
            "mode" => {
                mount.mode = Some(
                    u32::try_from(number(value, 8)?)
                        .map_err(|_| "mount mode out of range".to_string())?,
                );
                matches!(kind, MountKind::Cache | MountKind::Secret | MountKind::Ssh)
            }
            "uid" | "gid" => {
                let n = u32::try_from(number(value, 10)?)
                    .map_err(|_| format!("mount {key} out of range"))?;
                if key == "uid" {
                    mount.uid = Some(n)
                } else {
                    mount.gid = Some(n)
                }
                matches!(kind, MountKind::Cache | MountKind::Secret | MountKind::Ssh)
            }
            "required" => {
                mount.required = Some(flag(value)?);
                matches!(kind, MountKind::Secret | MountKind::Ssh)
            }
            "size" => {
                mount.size = Some(
                    crate::size::parse(&need(value)?)
                        .ok_or_else(|| format!("mount size: invalid size {field:?}"))?,
                );
                kind == MountKind::Tmpfs
            }
            "env" => {
                mount.env = Some(need(value)?);
                kind == MountKind::Secret
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        };
        if !valid {
            return Err(format!(
                "mount option {key} does not apply to type={}",
                kind_name(kind)
            ));
        }
    }
    Ok(mount)
}

fn kind_name(kind: MountKind) -> &'static str {
    match kind {
        MountKind::Bind => "bind",
        MountKind::Cache => "cache",
        MountKind::Tmpfs => "tmpfs",
        MountKind::Secret => "secret",
        MountKind::Ssh => "ssh",
    }
}

fn csv_unquote(field: &str) -> String {
    match field.strip_prefix('"').and_then(|f| f.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => field.to_string(),
    }
}

/// Go's `time.ParseDuration` for the non-negative values HEALTHCHECK takes.
fn parse_go_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * nanos;
        rest = &rest[unit_len..];
    }
    Some(Duration::from_nanos(total as u64))
}
