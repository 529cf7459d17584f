//! Docker's default seccomp profile, turned into the OCI runtime spec's `linux.seccomp`
//! as Docker and podman do: rules whose `includes`/`excludes` name capabilities or
//! architectures are kept only when the process has (or lacks) them.
//!
//! The profile is the system's `/usr/share/containers/seccomp.json` where it is installed
//! (containers-common, which podman, buildah and CRI-O read, kept up to date with the
//! kernel's syscalls by Debian), else the copy built into kiln (`default.json`, the same
//! file from containers-common 0.50).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};

use crate::error::Error;

const SYSTEM_PROFILE: &str = "/usr/share/containers/seccomp.json";
const BUILT_IN: &str = include_str!("default.json");

/// The profile's JSON, read once per process.
fn profile() -> &'static (String, Value) {
    static PROFILE: OnceLock<(String, Value)> = OnceLock::new();
    PROFILE.get_or_init(|| {
        let system = std::fs::read_to_string(SYSTEM_PROFILE)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .filter(|v| v.get("syscalls").is_some_and(Value::is_array));
        match system {
            Some(v) => (SYSTEM_PROFILE.to_string(), v),
            None => (
                "kiln's built-in profile".to_string(),
                serde_json::from_str(BUILT_IN).expect("the built-in seccomp profile is JSON"),
            ),
        }
    })
}

/// The architecture names Docker's profiles use in `includes.arches`.
fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "x86",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// Docker's default profile for a process holding `capabilities` (names like
/// `CAP_SYS_ADMIN`), as the OCI `linux.seccomp` a runtime loads.
pub(crate) fn default_seccomp(capabilities: &[String]) -> Result<LinuxSeccomp, Error> {
    // Once per capability set: every step of a build asks with the same one.
    static MADE: OnceLock<Mutex<HashMap<Vec<String>, LinuxSeccomp>>> = OnceLock::new();
    let made = MADE.get_or_init(Default::default);
    if let Some(s) = made
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(capabilities)
    {
        return Ok(s.clone());
    }
    let (source, profile) = profile();
    let seccomp = from_docker_profile(profile, capabilities, native_arch()).map_err(|reason| {
        Error::SeccompProfile {
            path: Path::new(source).to_path_buf(),
            reason,
        }
    })?;
    made.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(capabilities.to_vec(), seccomp.clone());
    Ok(seccomp)
}

/// A profile in Docker's format (`--security-opt seccomp=FILE`) for a process holding
/// `capabilities`, as the OCI `linux.seccomp`.
pub(crate) fn from_profile(
    profile: &Value,
    capabilities: &[String],
) -> Result<LinuxSeccomp, Error> {
    from_docker_profile(profile, capabilities, native_arch()).map_err(|reason| {
        Error::SeccompProfile {
            path: Path::new("--security-opt seccomp=").to_path_buf(),
            reason,
        }
    })
}

/// Converts a profile in Docker's format (`defaultAction`, `archMap`, `syscalls` with
/// `includes`/`excludes`) into the OCI form for one architecture and capability set.
fn from_docker_profile(
    profile: &Value,
    capabilities: &[String],
    arch: &str,
) -> Result<LinuxSeccomp, String> {
    let has_cap = |c: &Value| {
        c.as_str()
            .is_some_and(|c| capabilities.iter().any(|h| h == c))
    };
    let is_arch = |a: &Value| a.as_str() == Some(arch);
    let list = |rule: &Value, side: &str, key: &str| -> Vec<Value> {
        rule.get(side)
            .and_then(|s| s.get(key))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let syscalls = profile
        .get("syscalls")
        .and_then(Value::as_array)
        .ok_or("no \"syscalls\" list")?;
    let mut kept = Vec::new();
    for rule in syscalls {
        let (inc_caps, inc_arches) = (
            list(rule, "includes", "caps"),
            list(rule, "includes", "arches"),
        );
        let (exc_caps, exc_arches) = (
            list(rule, "excludes", "caps"),
            list(rule, "excludes", "arches"),
        );
        let included = inc_caps.iter().all(has_cap)
            && (inc_arches.is_empty() || inc_arches.iter().any(is_arch));
        let excluded = exc_caps.iter().any(has_cap) || exc_arches.iter().any(is_arch);
        if !included || excluded {
            continue;
        }
        let mut entry = json!({ "names": rule["names"], "action": rule["action"] });
        if let Some(errno) = rule.get("errnoRet").filter(|v| !v.is_null()) {
            entry["errnoRet"] = errno.clone();
        }
        if let Some(args) = rule
            .get("args")
            .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
        {
            entry["args"] = args.clone();
        }
        kept.push(entry);
    }
    // The architectures of the native one's archMap entry: x86_64 with x86 and x32.
    let scmp_native = match arch {
        "amd64" => "SCMP_ARCH_X86_64",
        "arm64" => "SCMP_ARCH_AARCH64",
        "x86" => "SCMP_ARCH_X86",
        "arm" => "SCMP_ARCH_ARM",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        _ => "",
    };
    let architectures: Vec<Value> = profile
        .get("archMap")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|m| m["architecture"] == scmp_native)
        .map(|m| {
            std::iter::once(m["architecture"].clone())
                .chain(
                    m["subArchitectures"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                )
                .collect()
        })
        .unwrap_or_default();
    let mut spec = json!({
        "defaultAction": profile["defaultAction"],
        "architectures": architectures,
        "syscalls": kept,
    });
    if let Some(errno) = profile.get("defaultErrnoRet").filter(|v| !v.is_null()) {
        spec["defaultErrnoRet"] = errno.clone();
    }
    serde_json::from_value(spec).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(seccomp: &LinuxSeccomp, name: &str) -> bool {
        seccomp.syscalls().iter().flatten().any(|s| {
            s.names().iter().any(|n| n == name)
                && s.action() == oci_spec::runtime::LinuxSeccompAction::ScmpActAllow
        })
    }

    #[test]
    fn capability_gated_rules_follow_the_capabilities() {
        let profile: Value = serde_json::from_str(BUILT_IN).unwrap();
        let plain = from_docker_profile(&profile, &["CAP_CHOWN".into()], "amd64").unwrap();
        // bpf and the module calls are only for processes holding the capability.
        assert!(!allowed(&plain, "bpf"));
        assert!(!allowed(&plain, "init_module"));
        assert!(allowed(&plain, "read"));
        let admin = from_docker_profile(
            &profile,
            &["CAP_SYS_ADMIN".into(), "CAP_SYS_MODULE".into()],
            "amd64",
        )
        .unwrap();
        assert!(allowed(&admin, "bpf"));
        assert!(allowed(&admin, "init_module"));
        assert_eq!(
            plain.architectures().as_ref().map(Vec::len),
            Some(3),
            "x86_64 with its x86 and x32 sub-architectures"
        );
    }

    #[test]
    fn arch_gated_rules_follow_the_architecture() {
        let profile: Value = serde_json::from_str(BUILT_IN).unwrap();
        let amd64 = from_docker_profile(&profile, &[], "amd64").unwrap();
        let arm64 = from_docker_profile(&profile, &[], "arm64").unwrap();
        assert!(allowed(&amd64, "arch_prctl"));
        assert!(!allowed(&arm64, "arch_prctl"));
    }
}
