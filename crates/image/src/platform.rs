//! Platforms as images name them (`linux/amd64`, `linux/arm/v7`): Go's names for the
//! operating system, architecture and variant, as in an index's descriptors and an
//! image config's `os`/`architecture`/`variant`.

use std::fmt;

use oci_spec::image::{Arch, Descriptor, ImageConfiguration, Os};

use crate::error::{Error, Result};

/// Image architectures (Go's names) and the machine names `uname -m` gives them.
const MACHINES: &[(&str, &str)] = &[
    ("amd64", "x86_64"),
    ("arm64", "aarch64"),
    ("386", "i386"),
    ("arm", "arm"),
    ("ppc64le", "ppc64le"),
    ("riscv64", "riscv64"),
    ("s390x", "s390x"),
    ("mips64le", "mips64el"),
];

/// One platform: `os/architecture[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    /// `linux`, `windows`, ...
    pub os: String,
    /// The OCI architecture: `amd64`, `arm64`, `arm`, `386`, ...
    pub architecture: String,
    /// `v7`, `v8`, ...: none when the architecture has one kind.
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this machine runs natively.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// `linux/arm64`, `linux/arm/v7`, `arm64` (linux implied), as `--platform` takes them.
    pub fn parse(text: &str) -> Result<Platform> {
        let parts: Vec<&str> = text.trim().split('/').collect();
        let bad = || Error::Platform {
            text: text.to_string(),
        };
        let (os, architecture, variant) = match parts.as_slice() {
            [arch] => ("linux", *arch, None),
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(*variant)),
            _ => return Err(bad()),
        };
        let word = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !word(os) || !word(architecture) || variant.is_some_and(|v| !word(v)) {
            return Err(bad());
        }
        // Docker's normalisation: the names people write for the same platform.
        let architecture = match architecture {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            "armhf" => "arm",
            other => other,
        };
        let variant = match (architecture, variant) {
            ("arm64", Some("v8")) => None,
            (_, v) => v.map(str::to_string),
        };
        Ok(Platform {
            os: os.to_lowercase(),
            architecture: architecture.to_string(),
            variant,
        })
    }

    /// The platform an index descriptor names.
    pub fn of_descriptor(d: &Descriptor) -> Option<Platform> {
        d.platform().as_ref().map(|p| Platform {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone(),
        })
    }

    /// The platform an image config says it is for.
    pub fn of_config(c: &ImageConfiguration) -> Platform {
        Platform {
            os: c.os().to_string(),
            architecture: c.architecture().to_string(),
            variant: c.variant().clone(),
        }
    }

    /// Whether an image for `other` runs here: the same OS and architecture, and the
    /// same variant when both name one.
    pub fn accepts(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || other.variant.is_none() || self.variant == other.variant)
    }

    /// The descriptor's platform field for this platform.
    pub fn to_oci(&self) -> oci_spec::image::Platform {
        let mut p = oci_spec::image::Platform::default();
        p.set_os(Os::from(self.os.as_str()));
        p.set_architecture(Arch::from(self.architecture.as_str()));
        p.set_variant(self.variant.clone());
        p
    }

    /// The machine name `uname -m` prints for this architecture, which QEMU's user-mode
    /// emulators are named after (`qemu-aarch64`).
    pub fn machine(&self) -> &str {
        MACHINES
            .iter()
            .find(|(arch, _)| *arch == self.architecture)
            .map_or(self.architecture.as_str(), |(_, machine)| machine)
    }

    /// The Linux platform of a machine name (`aarch64` → `linux/arm64`), for the
    /// architectures images are made for.
    pub fn of_machine(machine: &str) -> Option<Platform> {
        MACHINES
            .iter()
            .find(|(_, m)| *m == machine)
            .map(|(arch, _)| Platform {
                os: "linux".into(),
                architecture: arch.to_string(),
                variant: None,
            })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_as_docker_reads_them() {
        let p = |s: &str| Platform::parse(s).unwrap().to_string();
        assert_eq!(p("linux/arm64"), "linux/arm64");
        assert_eq!(p("arm64"), "linux/arm64");
        assert_eq!(p("linux/aarch64"), "linux/arm64");
        assert_eq!(p("linux/arm64/v8"), "linux/arm64");
        assert_eq!(p("linux/x86_64"), "linux/amd64");
        assert_eq!(p("linux/arm/v7"), "linux/arm/v7");
        assert!(Platform::parse("linux/").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
        assert!(Platform::parse("linux/arm 64").is_err());
    }

    #[test]
    fn a_variant_is_compared_only_when_both_name_one() {
        let p = |s: &str| Platform::parse(s).unwrap();
        assert!(p("linux/arm").accepts(&p("linux/arm/v7")));
        assert!(!p("linux/arm/v6").accepts(&p("linux/arm/v7")));
        assert!(!p("linux/arm64").accepts(&p("linux/amd64")));
    }
}
