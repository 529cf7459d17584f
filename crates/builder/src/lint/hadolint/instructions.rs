//! hadolint's rules about instructions (not about what RUN runs).

use std::collections::BTreeMap;

use super::*;
use crate::ast::{Command, CommandLine, Instruction};
use crate::lint::stages::Recorder;

/// Names hadolint takes for secrets whatever their case (DL3064)...
const SENSITIVE_NAMES: [&str; 45] = [
    "APPLICATION_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "BITTREX_API_KEY",
    "BITTREX_API_SECRET",
    "CF_PASSWORD",
    "CF_USERNAME",
    "CI_DEPLOY_PASSWORD",
    "CI_DEPLOY_USER",
    "CIRCLE_TOKEN",
    "DOCKERHUB_PASSWORD",
    "DOCKER_EMAIL",
    "DOCKER_PASSWORD",
    "DOCKER_USERNAME",
    "FACEBOOK_ACCESS_TOKEN",
    "FACEBOOK_APP_ID",
    "FACEBOOK_APP_SECRET",
    "FIREBASE_API_TOKEN",
    "FIREBASE_TOKEN",
    "FOSSA_API_KEY",
    "GH_ENTERPRISE_TOKEN",
    "GH_TOKEN",
    "GITHUB_ENTERPRISE_TOKEN",
    "GITHUB_TOKEN",
    "HEROKU_API_KEY",
    "HEROKU_API_USER",
    "NPM_AUTH_TOKEN",
    "NPM_TOKEN",
    "OKTA_AUTHN_GROUPID",
    "OKTA_CLIENT_ORGURL",
    "OKTA_CLIENT_TOKEN",
    "OKTA_OAUTH2_CLIENTID",
    "OKTA_OAUTH2_CLIENTSECRET",
    "OPENAI_API_KEY",
    "OS_PASSWORD",
    "OS_USERNAME",
    "POSTGRES_PASSWORD",
    "SLACK_TOKEN",
    "STRIPE_API_KEY",
    "STRIPE_DEVICE_NAME",
    "TRAVIS_OS_NAME",
    "TRAVIS_SECURE_ENV_VARS",
    "TRAVIS_SUDO",
    "VAULT_CLIENT_KEY",
    "VAULT_TOKEN",
];

/// ...and the words that make any name one (lower-cased, anywhere in it).
const SENSITIVE_WORDS: [&str; 7] = [
    "api_key",
    "client_key",
    "password",
    "private",
    "secret",
    "token",
    "username",
];

/// DL3064: ARG or ENV names that look like secrets, as hadolint reads them.
fn sensitive_names<'a>(
    instr: &Instruction,
    names: impl Iterator<Item = &'a str>,
    out: &mut Vec<Finding>,
) {
    let found: Vec<&str> = names
        .filter(|name| {
            let lower = name.to_ascii_lowercase();
            SENSITIVE_NAMES.iter().any(|s| s.eq_ignore_ascii_case(name))
                || SENSITIVE_WORDS.iter().any(|w| lower.contains(w))
        })
        .collect();
    if !found.is_empty() {
        out.push(naming(&DL3064, instr, "name", &found));
    }
}

pub fn check(file: &File) -> Vec<Finding> {
    let mut out = Vec::new();
    consecutive_runs(file, &mut out);
    let mut aliases: Vec<String> = Vec::new();
    for (index, stage) in file.stages.iter().enumerate() {
        let Command::From(from) = &stage.from.command else {
            continue;
        };
        base_image(file, index, &mut out);
        if from.platform.as_deref().is_some_and(|p| !p.contains('$')) {
            out.push(plain(&DL3029, stage.from));
        }
        if matches!(
            from.platform.as_deref(),
            Some("$TARGETPLATFORM" | "${TARGETPLATFORM}")
        ) {
            out.push(plain(&DL3065, stage.from));
        }
        if let Some(alias) = &from.stage {
            if aliases.contains(alias) {
                out.push(plain(&DL3024, stage.from));
            }
            // hadolint compares as written: `AS Scratch` passes.
            if matches!(stage.name.as_deref(), Some("scratch" | "context")) {
                out.push(plain(&DL3063, stage.from));
            }
            aliases.push(alias.clone());
        }
        // WORKDIR set in this stage or a stage it is built on.
        let mut workdir = file.lineage(index).iter().skip(1).any(|&s| {
            file.stages[s]
                .instructions
                .iter()
                .any(|i| matches!(i.command, Command::Workdir(_)))
        });
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for instr in &stage.instructions {
            let kw = instr.command.keyword();
            let count = seen.entry(kw).or_default();
            *count += 1;
            match &instr.command {
                Command::Workdir(path) => {
                    workdir = true;
                    if !is_absolute(path) {
                        out.push(plain(&DL3000, instr));
                    }
                }
                Command::Healthcheck(_) if *count == 2 => out.push(plain(&DL3012, instr)),
                Command::Cmd(c) | Command::Entrypoint(c) => {
                    if matches!(c, CommandLine::Shell(_)) {
                        out.push(plain(&DL3025, instr));
                    }
                    if *count > 1 {
                        let rule = if kw == "cmd" { &DL4003 } else { &DL4004 };
                        out.push(plain(rule, instr));
                    }
                }
                Command::Maintainer(_) => out.push(plain(&DL4000, instr)),
                Command::Expose(ports) => {
                    let bad: Vec<&str> = ports
                        .iter()
                        .filter(|p| {
                            let spec = p.split('/').next().unwrap_or(p);
                            let spec = spec.rsplit(':').next().unwrap_or(spec);
                            spec.split('-')
                                .any(|n| n.parse::<u64>().is_ok_and(|n| n > 65535))
                        })
                        .map(String::as_str)
                        .collect();
                    if !bad.is_empty() {
                        out.push(naming(&DL3011, instr, "found", &bad));
                    }
                }
                Command::Copy(copy) => {
                    let spec = &copy.spec;
                    if spec.sources.len() > 1
                        && !spec.dest.ends_with(['/', '\\'])
                        && !spec.dest.contains('$')
                    {
                        out.push(plain(&DL3021, instr));
                    }
                    if !workdir && !is_absolute(&spec.dest) && !spec.dest.contains('$') {
                        out.push(naming(&DL3045, instr, "destination", &[&spec.dest]));
                    }
                    if let Some(source) = &copy.from {
                        copy_from(file, index, instr, source, &mut out);
                        if spec.sources.iter().any(|s| s == "/") && !scratch_stage(file, source) {
                            out.push(plain(&DL3067, instr));
                        }
                    }
                }
                Command::Add(add) => {
                    let spec = &add.spec;
                    let local_files = !spec.sources.is_empty()
                        && spec.sources.iter().all(|s| {
                            !s.contains("://")
                                && !s.starts_with("git@")
                                && !s.contains('$')
                                && !crate::ast::is_heredoc_word(s)
                                && !is_archive(s)
                        });
                    if local_files {
                        out.push(plain(&DL3020, instr));
                    }
                }
                Command::User(user) => {
                    let uid = user.split(':').next().unwrap_or(user);
                    if !uid.contains('$')
                        && !uid.chars().all(|c| c.is_ascii_digit())
                        && !is_windows_account(uid)
                    {
                        out.push(naming(&DL3066, instr, "user", &[uid]));
                    }
                }
                Command::Env(pairs) => {
                    self_referencing_env(file, instr, pairs, &mut out);
                    sensitive_names(instr, pairs.iter().map(|p| p.key.as_str()), &mut out);
                }
                Command::Arg(decls) => {
                    sensitive_names(instr, decls.iter().map(|d| d.name.as_str()), &mut out)
                }
                Command::Label(pairs) => {
                    let rec = Recorder::new(&file.global_values);
                    let bad: Vec<&str> = pairs
                        .iter()
                        .map(|p| p.key.as_str())
                        .filter(|k| {
                            !k.contains('$')
                                && !valid_label_key(
                                    crate::expand::word(k, file.df.escape, &rec)
                                        .as_deref()
                                        .unwrap_or(k),
                                )
                        })
                        .collect();
                    if !bad.is_empty() {
                        out.push(naming(&DL3048, instr, "key", &bad));
                    }
                }
                _ => {}
            }
        }
    }
    // The last USER of the final stage (or of the stages it is built on).
    if let Some(last) = file.target {
        let user = file.lineage(last).iter().find_map(|&s| {
            file.stages[s]
                .instructions
                .iter()
                .rev()
                .find_map(|i| match &i.command {
                    Command::User(u) => Some((*i, u)),
                    _ => None,
                })
        });
        if let Some((instr, user)) = user {
            let name = user.split(':').next().unwrap_or(user);
            if name == "root" || name == "0" {
                out.push(plain(&DL3002, instr));
            }
        }
    }
    out
}

/// DL3059: a RUN right after a RUN with the same flags, when neither runs more than two
/// commands (longer ones are most likely split on purpose).
fn consecutive_runs(file: &File, out: &mut Vec<Finding>) {
    let commands = |instr: &Instruction| {
        file.runs()
            .iter()
            .find(|r| std::ptr::eq(r.instr, instr))
            .map(|r| r.script.commands.len())
    };
    let mut previous: Option<(&Instruction, Option<usize>)> = None;
    for instr in &file.df.instructions {
        if !matches!(instr.command, Command::Run(_)) {
            previous = None;
            continue;
        }
        let count = commands(instr);
        if let Some((prev, prev_count)) = previous {
            let small = |c: Option<usize>| c.is_some_and(|c| c <= 2);
            if prev.flags == instr.flags && small(count) && small(prev_count) {
                out.push(plain(&DL3059, instr));
            }
        }
        previous = Some((instr, count));
    }
}

/// DL3006, DL3007: the base image names a tag, and not `latest`.
fn base_image(file: &File, index: usize, out: &mut Vec<Finding>) {
    let stage = &file.stages[index];
    let Some(image) = &stage.image else {
        return;
    };
    let earlier_stage = file.stages[..index].iter().any(|s| {
        s.name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(image))
    });
    if earlier_stage || image == "scratch" || image.contains('@') {
        return;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        None => out.push(naming(&DL3006, stage.from, "image", &[image])),
        Some((_, "latest")) => out.push(plain(&DL3007, stage.from)),
        Some(_) => {}
    }
}

/// DL3026: a FROM image from a registry outside `trusted` (hadolint's `trustedRegistries`:
/// names, `*.example.com` for its subdomains, `*` for any). An image without a registry is
/// from `docker.io`; stages and scratch come from none.
pub(super) fn trusted_registries(file: &File, trusted: &[String], out: &mut Vec<Finding>) {
    for (index, stage) in file.stages.iter().enumerate() {
        let Some(image) = &stage.image else {
            continue;
        };
        let earlier_stage = file.stages[..index].iter().any(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(image))
        });
        if earlier_stage || image == "scratch" || image.contains('$') {
            continue;
        }
        let registry = match image.split_once('/') {
            Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
            _ => "docker.io",
        };
        let allowed = trusted.iter().any(|t| match t.strip_prefix("*.") {
            _ if t == "*" => true,
            Some(domain) => registry.ends_with(&format!(".{domain}")),
            None => t == registry,
        });
        if !allowed {
            out.push(plain(&DL3026, stage.from));
        }
    }
}

/// DL3022, DL3023: `COPY --from` names an earlier stage (or an image).
fn copy_from(file: &File, index: usize, instr: &Instruction, source: &str, out: &mut Vec<Finding>) {
    if source.contains('$') {
        return;
    }
    let named = |s: &crate::lint::stages::Stage| {
        s.name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(source))
    };
    if named(&file.stages[index]) {
        out.push(plain(&DL3023, instr));
        return;
    }
    if let Ok(n) = source.parse::<usize>() {
        if n >= index {
            out.push(naming(&DL3022, instr, "stage", &[source]));
        }
        return;
    }
    let earlier = file.stages[..index].iter().any(named);
    let looks_like_image = source.contains([':', '/', '@', '.']);
    if !earlier && !looks_like_image {
        out.push(naming(&DL3022, instr, "stage", &[source]));
    }
}

/// DL3044: `ENV A=1 B=$A` reads A as it was before this ENV, not as set here.
fn self_referencing_env(
    file: &File,
    instr: &Instruction,
    pairs: &[crate::ast::KeyValue],
    out: &mut Vec<Finding>,
) {
    let defined_before = |name: &str| {
        file.df
            .instructions
            .iter()
            .take_while(|i| !std::ptr::eq(*i, instr))
            .any(|i| match &i.command {
                Command::Env(p) => p.iter().any(|p| p.key == name),
                Command::Arg(d) => d.iter().any(|d| d.name == name),
                _ => false,
            })
    };
    let mut bad: Vec<&str> = Vec::new();
    for (i, pair) in pairs.iter().enumerate() {
        let empty = BTreeMap::new();
        let rec = Recorder::new(&empty);
        let _ = crate::expand::word(&pair.value, file.df.escape, &rec);
        for name in rec.asked.into_inner() {
            let here = pairs[..i].iter().find(|p| p.key == name);
            if let Some(p) = here {
                if !defined_before(&name) && !bad.contains(&p.key.as_str()) {
                    bad.push(p.key.as_str());
                }
            }
        }
    }
    if !bad.is_empty() {
        out.push(naming(&DL3044, instr, "variable", &bad));
    }
}

fn is_absolute(path: &str) -> bool {
    let unquoted = path.trim_matches(['"', '\'']);
    let b = unquoted.as_bytes();
    let drive =
        b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' && matches!(b[2], b'\\' | b'/');
    unquoted.starts_with('/') || unquoted.starts_with('$') || drive
}

/// Files ADD unpacks (or fetches): COPY would not do the same.
fn is_archive(path: &str) -> bool {
    let p = path.to_lowercase();
    [
        ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".tar.zst",
        ".tzst", ".gz", ".bz2", ".xz", ".zst", ".lz", ".lzma", ".z",
    ]
    .iter()
    .any(|ext| p.ends_with(ext))
}

/// Windows images have no numeric user ids.
fn is_windows_account(name: &str) -> bool {
    matches!(
        name.to_lowercase().as_str(),
        "containeruser" | "containeradministrator"
    )
}

/// Label keys as Docker recommends: lower-case alphanumerics, `.` and `-`, starting and
/// ending with an alphanumeric, no doubled separators, not in Docker's own namespaces.
fn valid_label_key(key: &str) -> bool {
    let reserved = ["com.docker.", "io.docker.", "org.dockerproject."]
        .iter()
        .any(|ns| key.starts_with(ns));
    let chars_ok = key
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    let ends_ok = key.starts_with(|c: char| c.is_ascii_alphanumeric())
        && key.ends_with(|c: char| c.is_ascii_alphanumeric());
    let doubled = ["..", "--", ".-", "-."].iter().any(|d| key.contains(d));
    !reserved && chars_ok && ends_ok && !doubled
}

/// A stage built FROM scratch holds only what was put in it (`COPY --from=bin / /usr/bin/`
/// copies binaries, not an operating system).
fn scratch_stage(file: &File, name: &str) -> bool {
    let Some(i) = file.stages.iter().position(|s| {
        s.name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    }) else {
        return false;
    };
    let root = *file.lineage(i).last().unwrap();
    file.stages[root].image.as_deref() == Some("scratch")
}
