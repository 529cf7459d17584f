//! kiln's registry settings, in TOML: `KILN_CONFIG`, else
//! `$XDG_CONFIG_HOME/kiln/config.toml` (`~/.config/kiln/config.toml`), else
//! `/etc/kiln/config.toml`; none is needed.
//!
//! ```toml
//! [registries]
//! # spoken to over plain HTTP, as Docker's "insecure-registries"
//! insecure = ["registry.lan:5000"]
//!
//! [registries.mirrors]
//! # tried in order for pulls from docker.io, before docker.io itself (pushes never go to
//! # a mirror); a mirror may say its scheme
//! "docker.io" = ["mirror.lan:5000", "http://10.0.0.7:5000"]
//!
//! [registries.ca]
//! # a CA (PEM) to trust for one registry, beside the system's roots, SSL_CERT_FILE and
//! # Docker's /etc/docker/certs.d/HOST/*.crt
//! "registry.corp:5000" = "/etc/kiln/corp-ca.pem"
//! ```

use std::collections::HashMap;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// kiln's settings file (`KILN_CONFIG`, else `$XDG_CONFIG_HOME/kiln/config.toml`):
/// how to reach which registry.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[registries]`.
    #[serde(default)]
    pub registries: Registries,
}

/// `[registries]`: plain-HTTP hosts, mirrors, CA files.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registries {
    /// Hosts (`name[:port]`) spoken to over plain HTTP.
    #[serde(default)]
    pub insecure: Vec<String>,
    /// Registry host → its mirrors, in the order they are tried.
    #[serde(default)]
    pub mirrors: HashMap<String, Vec<String>>,
    /// Registry host → a CA file (PEM) to trust for it.
    #[serde(default)]
    pub ca: HashMap<String, PathBuf>,
}

/// Where the config is looked for: the first that exists is read.
fn candidates() -> Vec<PathBuf> {
    if let Some(path) = std::env::var_os("KILN_CONFIG") {
        return vec![PathBuf::from(path)];
    }
    let mut out = Vec::new();
    match std::env::var_os("XDG_CONFIG_HOME") {
        Some(x) => out.push(PathBuf::from(x).join("kiln/config.toml")),
        None => {
            if let Some(home) = std::env::var_os("HOME") {
                out.push(PathBuf::from(home).join(".config/kiln/config.toml"));
            }
        }
    }
    out.push(PathBuf::from("/etc/kiln/config.toml"));
    out
}

impl Config {
    /// The config file, or the defaults when there is none. A `KILN_CONFIG` that is not
    /// there, or a file that does not read, is an error that names it.
    pub fn load() -> Result<Config> {
        let explicit = std::env::var_os("KILN_CONFIG").is_some();
        for path in candidates() {
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => continue,
                Err(e) => return Err(Error::io("read", &path)(e)),
            };
            return toml::from_str(&text).map_err(|e| Error::Settings {
                reason: format!(
                    "{} (see docs/push-pull.md, \"Registry settings\")",
                    e.to_string().trim_end()
                ),
                path,
            });
        }
        Ok(Config::default())
    }

    /// The mirrors of `host`, in order.
    pub fn mirrors(&self, host: &str) -> &[String] {
        self.registries
            .mirrors
            .get(host)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Whether `host` is spoken to over plain HTTP: loopback, the config's `insecure`
    /// list, or `KILN_INSECURE_REGISTRIES` (comma-separated), as Docker decides.
    pub fn insecure(&self, host: &str) -> bool {
        let name = host
            .rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(host, |(name, _)| name);
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let loopback = name == "localhost"
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        loopback
            || self.registries.insecure.iter().any(|h| h == host)
            || std::env::var("KILN_INSECURE_REGISTRIES")
                .unwrap_or_default()
                .split(',')
                .any(|h| h.trim() == host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_and_bad_ones_are_named() {
        let c: Config = toml::from_str(
            "[registries]\ninsecure = [\"reg.lan:5000\"]\n[registries.mirrors]\n\"docker.io\" = [\"m1:5000\", \"http://m2\"]\n",
        )
        .unwrap();
        assert!(c.insecure("reg.lan:5000") && c.insecure("127.0.0.1:5000"));
        assert!(c.insecure("localhost") && c.insecure("[::1]:80"));
        assert!(!c.insecure("reg.lan") && !c.insecure("docker.io"));
        assert_eq!(c.mirrors("docker.io"), ["m1:5000", "http://m2"]);
        assert!(c.mirrors("quay.io").is_empty());
        let e = toml::from_str::<Config>("[registries]\nmirror = []\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `mirror`"), "{e}");
    }
}
