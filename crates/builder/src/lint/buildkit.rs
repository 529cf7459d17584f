//! BuildKit's build checks, with BuildKit's names and messages.

use std::collections::{BTreeMap, HashSet};

use super::stages::{File, Recorder};
use super::{keyword_as_written, words_as_written, Finding, Rule, Severity, Source};
use crate::ast::{Command, CommandLine, Instruction};

buildkit_rule!(
    STAGE_NAME_CASING,
    "StageNameCasing",
    "Stage names should be lowercase",
    "stage-name-casing"
);
buildkit_rule!(
    FROM_AS_CASING,
    "FromAsCasing",
    "The 'as' keyword should match the case of the 'from' keyword",
    "from-as-casing"
);
buildkit_rule!(
    NO_EMPTY_CONTINUATION,
    "NoEmptyContinuation",
    "Empty continuation lines will become errors in a future release",
    "no-empty-continuation"
);
buildkit_rule!(
    CONSISTENT_INSTRUCTION_CASING,
    "ConsistentInstructionCasing",
    "All commands within the Dockerfile should use the same casing (either upper or lower)",
    "consistent-instruction-casing"
);
buildkit_rule!(
    DUPLICATE_STAGE_NAME,
    "DuplicateStageName",
    "Stage names should be unique",
    "duplicate-stage-name"
);
buildkit_rule!(
    RESERVED_STAGE_NAME,
    "ReservedStageName",
    "Reserved words should not be used as stage names",
    "reserved-stage-name"
);
buildkit_rule!(JSON_ARGS_RECOMMENDED, "JSONArgsRecommended", "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals", "json-args-recommended");
buildkit_rule!(
    MAINTAINER_DEPRECATED,
    "MaintainerDeprecated",
    "The MAINTAINER instruction is deprecated, use a label instead to define an image author",
    "maintainer-deprecated"
);
buildkit_rule!(
    UNDEFINED_ARG_IN_FROM,
    "UndefinedArgInFrom",
    "FROM command must use declared ARGs",
    "undefined-arg-in-from"
);
buildkit_rule!(WORKDIR_RELATIVE_PATH, "WorkdirRelativePath", "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes", "workdir-relative-path");
buildkit_rule!(
    MULTIPLE_INSTRUCTIONS_DISALLOWED,
    "MultipleInstructionsDisallowed",
    "Multiple instructions of the same type should not be used in the same stage",
    "multiple-instructions-disallowed"
);
buildkit_rule!(
    LEGACY_KEY_VALUE_FORMAT,
    "LegacyKeyValueFormat",
    "Legacy key/value format with whitespace separator should not be used",
    "legacy-key-value-format"
);
buildkit_rule!(REDUNDANT_TARGET_PLATFORM, "RedundantTargetPlatform", "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior", "redundant-target-platform");
buildkit_rule!(
    SECRETS_USED_IN_ARG_OR_ENV,
    "SecretsUsedInArgOrEnv",
    "Sensitive data should not be used in the ARG or ENV commands",
    "secrets-used-in-arg-or-env"
);
buildkit_rule!(
    INVALID_DEFAULT_ARG_IN_FROM,
    "InvalidDefaultArgInFrom",
    "Default value for global ARG results in an empty or invalid base image name",
    "invalid-default-arg-in-from"
);
buildkit_rule!(
    FROM_PLATFORM_FLAG_CONST_DISALLOWED,
    "FromPlatformFlagConstDisallowed",
    "FROM --platform flag should not use a constant value",
    "from-platform-flag-const-disallowed"
);
buildkit_rule!(
    EXPOSE_PROTO_CASING,
    "ExposeProtoCasing",
    "Protocol in EXPOSE instruction should be lowercase",
    "expose-proto-casing"
);
buildkit_rule!(EXPOSE_INVALID_FORMAT, "ExposeInvalidFormat", "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release", "expose-invalid-format");

pub static RULES: [Rule; 18] = [
    STAGE_NAME_CASING,
    FROM_AS_CASING,
    NO_EMPTY_CONTINUATION,
    CONSISTENT_INSTRUCTION_CASING,
    DUPLICATE_STAGE_NAME,
    RESERVED_STAGE_NAME,
    JSON_ARGS_RECOMMENDED,
    MAINTAINER_DEPRECATED,
    UNDEFINED_ARG_IN_FROM,
    WORKDIR_RELATIVE_PATH,
    MULTIPLE_INSTRUCTIONS_DISALLOWED,
    LEGACY_KEY_VALUE_FORMAT,
    REDUNDANT_TARGET_PLATFORM,
    SECRETS_USED_IN_ARG_OR_ENV,
    INVALID_DEFAULT_ARG_IN_FROM,
    FROM_PLATFORM_FLAG_CONST_DISALLOWED,
    EXPOSE_PROTO_CASING,
    EXPOSE_INVALID_FORMAT,
];

/// The build arguments BuildKit defines without an ARG.
pub(super) const PREDEFINED_ARGS: [&str; 9] = [
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "TARGETSTAGE",
];

fn is_upper(s: &str) -> bool {
    s == s.to_uppercase()
}

/// Whether an ARG or ENV name reads as a secret: one of its words (split at `_`, `-` and
/// camelCase) is a secret word, and none is `public`.
pub(super) fn looks_secret(name: &str) -> bool {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        let boundary = !c.is_ascii_alphanumeric() || (c.is_ascii_uppercase() && prev_lower);
        if boundary && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        if c.is_ascii_alphanumeric() {
            current.push(c.to_ascii_lowercase());
        }
        prev_lower = c.is_ascii_lowercase();
    }
    if !current.is_empty() {
        words.push(current);
    }
    if words.iter().any(|w| w == "public") {
        return false;
    }
    let secret = |w: &str| {
        matches!(
            w,
            "apikey"
                | "auth"
                | "credential"
                | "credentials"
                | "password"
                | "passwd"
                | "pword"
                | "secret"
                | "secrets"
                | "token"
        )
    };
    // "key" alone is not enough (GPG_KEY holds a public fingerprint in many official
    // images, a false positive of BuildKit's): only keys that are private by name.
    words.iter().any(|w| secret(w))
        || words.windows(2).any(|p| {
            p[1] == "key"
                && matches!(
                    p[0].as_str(),
                    "api" | "private" | "secret" | "access" | "signing" | "encryption"
                )
        })
}

pub fn check(file: &File) -> Vec<Finding> {
    let mut out = Vec::new();
    let df = file.df;

    for w in &df.warnings {
        out.push(Finding {
            rule: NO_EMPTY_CONTINUATION.id,
            severity: NO_EMPTY_CONTINUATION.severity,
            message: "Empty continuation line".into(),
            line: w.span.start.line,
            column: w.span.start.column,
            end_line: w.span.end.line,
        });
    }

    // Keyword casing: the majority wins, the others are flagged.
    let keywords: Vec<(&Instruction, &str)> = df
        .instructions
        .iter()
        .map(|i| (i, keyword_as_written(i)))
        .collect();
    let upper = keywords.iter().filter(|(_, k)| is_upper(k)).count();
    let lower = keywords
        .iter()
        .filter(|(_, k)| *k == k.to_lowercase())
        .count();
    let majority_upper = upper >= lower;
    for (instr, k) in &keywords {
        let fits = if majority_upper {
            is_upper(k)
        } else {
            *k == k.to_lowercase()
        };
        if !fits {
            let casing = if majority_upper {
                "uppercase"
            } else {
                "lowercase"
            };
            out.push(Finding::at(
                &CONSISTENT_INSTRUCTION_CASING,
                instr,
                format!("Command '{k}' should match the case of the command majority ({casing})"),
            ));
        }
    }

    let globals: BTreeMap<String, String> = file
        .global_args
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
        .collect();
    let mut seen_names: HashSet<String> = HashSet::new();
    for stage in &file.stages {
        let Command::From(from) = &stage.from.command else {
            continue;
        };
        let words = words_as_written(stage.from);
        if let Some(i) = words.iter().position(|w| w.eq_ignore_ascii_case("as")) {
            let (from_kw, as_kw) = (keyword_as_written(stage.from), words[i].as_str());
            if is_upper(from_kw) != is_upper(as_kw) {
                out.push(Finding::at(
                    &FROM_AS_CASING,
                    stage.from,
                    format!("'{as_kw}' and '{from_kw}' keywords' casing do not match"),
                ));
            }
        }
        if let Some(name) = &stage.name {
            if name.chars().any(|c| c.is_ascii_uppercase()) {
                out.push(Finding::at(
                    &STAGE_NAME_CASING,
                    stage.from,
                    format!("Stage name '{name}' should be lowercase"),
                ));
            }
            let lower = name.to_lowercase();
            if !seen_names.insert(lower.clone()) {
                out.push(Finding::at(
                    &DUPLICATE_STAGE_NAME,
                    stage.from,
                    format!("Duplicate stage name \"{lower}\", stage names should be unique"),
                ));
            }
            if matches!(lower.as_str(), "scratch" | "context") {
                out.push(Finding::at(
                    &RESERVED_STAGE_NAME,
                    stage.from,
                    format!(
                        "Stage name should not use the same name as reserved stage \"{lower}\""
                    ),
                ));
            }
        }

        // The FROM line's variables: declared globally, or predefined.
        let recorder = Recorder::new(&globals);
        let image = crate::expand::word(&from.image, df.escape, &recorder).unwrap_or_default();
        if let Some(platform) = &from.platform {
            let _ = crate::expand::word(platform, df.escape, &recorder);
            // BuildKit's exception: a stage named for its platform's OS or architecture
            // (`AS build-arm64`) is one of several, each with its constant platform.
            let named_for_it = from.stage.as_deref().is_some_and(|name| {
                let name = name.to_ascii_lowercase();
                platform
                    .split('/')
                    .take(2)
                    .any(|part| !part.is_empty() && name.contains(&part.to_ascii_lowercase()))
            });
            if !platform.contains('$') && !named_for_it {
                out.push(Finding::at(
                    &FROM_PLATFORM_FLAG_CONST_DISALLOWED,
                    stage.from,
                    format!("FROM --platform flag should not use constant value \"{platform}\""),
                ));
            } else if matches!(platform.as_str(), "$TARGETPLATFORM" | "${TARGETPLATFORM}") {
                out.push(Finding::at(&REDUNDANT_TARGET_PLATFORM, stage.from, format!("Setting platform to predefined {platform} in FROM is redundant as this is the default behavior")));
            }
        }
        let asked = recorder.asked.into_inner();
        let mut undefined = false;
        for name in &asked {
            if !file.global_args.contains_key(name) && !PREDEFINED_ARGS.contains(&name.as_str()) {
                undefined = true;
                let hint = crate::suggest::closest(
                    name,
                    file.global_args
                        .keys()
                        .map(String::as_str)
                        .chain(PREDEFINED_ARGS),
                )
                .map(|s| format!(" (did you mean {s}?)"))
                .unwrap_or_default();
                out.push(Finding::at(
                    &UNDEFINED_ARG_IN_FROM,
                    stage.from,
                    format!("FROM argument '{name}' is not declared{hint}"),
                ));
            }
        }
        if !undefined && !asked.is_empty() {
            let bad = image.is_empty()
                || image.starts_with([':', '@'])
                || image.ends_with([':', '@', '/']);
            if bad {
                out.push(Finding::at(
                    &INVALID_DEFAULT_ARG_IN_FROM,
                    stage.from,
                    format!(
                        "Default value for ARG {} results in empty or invalid base image name",
                        from.image
                    ),
                ));
            }
        }

        let mut absolute_workdir = false;
        let mut shell_changed = false;
        let mut last: BTreeMap<&str, &Instruction> = BTreeMap::new();
        for instr in &stage.instructions {
            match &instr.command {
                Command::Maintainer(_) => out.push(Finding::at(
                    &MAINTAINER_DEPRECATED,
                    instr,
                    "Maintainer instruction is deprecated in favor of using label".into(),
                )),
                Command::Shell(_) => shell_changed = true,
                Command::Cmd(c) | Command::Entrypoint(c) => {
                    let name = instr.command.keyword().to_uppercase();
                    if matches!(c, CommandLine::Shell(_)) && !shell_changed {
                        out.push(Finding::at(&JSON_ARGS_RECOMMENDED, instr, format!("JSON arguments recommended for {name} to prevent unintended behavior related to OS signals")));
                    }
                }
                Command::Workdir(path) => {
                    // Absolute: `/...`, a Windows drive (`C:\...`), or a variable (unknown).
                    let b = path.as_bytes();
                    let drive = b.len() > 2
                        && b[0].is_ascii_alphabetic()
                        && b[1] == b':'
                        && matches!(b[2], b'\\' | b'/');
                    if path.starts_with('/') || path.starts_with('$') || drive {
                        absolute_workdir = true;
                    } else if !absolute_workdir {
                        out.push(Finding::at(&WORKDIR_RELATIVE_PATH, instr, format!("Relative workdir \"{path}\" can have unexpected results if the base image changes")));
                    }
                }
                Command::Env(pairs) | Command::Label(pairs) => {
                    let words = words_as_written(instr);
                    if words.first().is_some_and(|w| !w.contains('=')) && !pairs.is_empty() {
                        let name = instr.command.keyword().to_uppercase();
                        out.push(Finding::at(&LEGACY_KEY_VALUE_FORMAT, instr, format!("\"{name} key=value\" should be used instead of legacy \"{name} key value\" format")));
                    }
                    if matches!(instr.command, Command::Env(_)) {
                        for p in pairs.iter().filter(|p| looks_secret(&p.key)) {
                            out.push(Finding::at(&SECRETS_USED_IN_ARG_OR_ENV, instr, format!("Do not use ARG or ENV instructions for sensitive data (ENV \"{}\")", p.key)));
                        }
                    }
                }
                Command::Arg(decls) => {
                    for d in decls.iter().filter(|d| looks_secret(&d.name)) {
                        out.push(Finding::at(&SECRETS_USED_IN_ARG_OR_ENV, instr, format!("Do not use ARG or ENV instructions for sensitive data (ARG \"{}\")", d.name)));
                    }
                }
                Command::Expose(ports) => {
                    for port in ports {
                        let (spec, proto) = port.split_once('/').unwrap_or((port, ""));
                        if proto.chars().any(|c| c.is_ascii_uppercase()) {
                            out.push(Finding::at(&EXPOSE_PROTO_CASING, instr, format!("Defined protocol '{port}' in EXPOSE instruction should be lowercase")));
                        }
                        if spec.contains(':') {
                            out.push(Finding::at(&EXPOSE_INVALID_FORMAT, instr, format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{port}'")));
                        }
                    }
                }
                _ => {}
            }
            let kw = instr.command.keyword();
            if matches!(kw, "cmd" | "entrypoint" | "healthcheck") {
                if let Some(previous) = last.insert(kw, instr) {
                    out.push(Finding::at(&MULTIPLE_INSTRUCTIONS_DISALLOWED, previous, format!("Multiple {} instructions should not be used in the same stage because only the last one will be used", kw.to_uppercase())));
                }
            }
        }
    }
    // Global ARGs that look like secrets.
    for instr in df
        .instructions
        .iter()
        .take_while(|i| !matches!(i.command, Command::From(_)))
    {
        if let Command::Arg(decls) = &instr.command {
            for d in decls.iter().filter(|d| looks_secret(&d.name)) {
                out.push(Finding::at(
                    &SECRETS_USED_IN_ARG_OR_ENV,
                    instr,
                    format!(
                        "Do not use ARG or ENV instructions for sensitive data (ARG \"{}\")",
                        d.name
                    ),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::looks_secret;

    #[test]
    fn secret_names_are_told_by_their_words() {
        for yes in [
            "PASSWORD",
            "db_password",
            "GITHUB_TOKEN",
            "apiKey",
            "API_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "npmAuth",
        ] {
            assert!(looks_secret(yes), "{yes}");
        }
        for no in [
            "PUBLIC_KEY",
            "TOKENIZER_VERSION",
            "PASSWORDLESS",
            "AUTHOR",
            "KEYBOARD",
            "NODE_VERSION",
            "GPG_KEY",
        ] {
            assert!(!looks_secret(no), "{no}");
        }
    }
}
