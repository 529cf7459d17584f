//! hadolint's configuration file (`.hadolint.yaml`), read as hadolint reads it so that a
//! team's file carries over: `ignored`, `override` (severities), `failure-threshold`,
//! `disable-ignore-pragma`, `no-fail`, `trustedRegistries` (DL3026), `label-schema` and
//! `strict-labels` (DL3049–DL3058). Its other keys (output settings) are accepted and not
//! acted on.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{rule, Finding, LabelSchema, LabelType, Severity};
use crate::Error;

/// A `.hadolint.yaml`, its keys as hadolint spells them.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Config {
    /// Rules never reported.
    #[serde(default)]
    pub ignored: Vec<String>,
    /// `override`: rules given another severity.
    #[serde(default, rename = "override")]
    pub overrides: Overrides,
    /// `failure-threshold`: the least severity that fails the run (a [`Severity`] name, or
    /// `none` or `ignore` for none).
    pub failure_threshold: Option<String>,
    /// `disable-ignore-pragma`: `# hadolint ignore=` comments are not honoured.
    #[serde(default)]
    pub disable_ignore_pragma: bool,
    /// `no-fail`: findings never fail the run.
    #[serde(default)]
    pub no_fail: bool,
    /// Registries FROM images may come from (DL3026), as hadolint spells the key.
    #[serde(default, rename = "trustedRegistries", alias = "trusted-registries")]
    pub trusted_registries: Vec<String>,
    /// Labels every stage must have, by name, with their format (`text`, `url`, ...).
    #[serde(default)]
    pub label_schema: std::collections::BTreeMap<String, String>,
    /// No labels but the schema's (DL3050).
    #[serde(default)]
    pub strict_labels: bool,
}

/// `override`: rule ids by the severity they get.
#[derive(Debug, Default, Deserialize)]
pub struct Overrides {
    /// Rules that become errors.
    #[serde(default)]
    pub error: Vec<String>,
    /// Rules that become warnings.
    #[serde(default)]
    pub warning: Vec<String>,
    /// Rules that become info.
    #[serde(default)]
    pub info: Vec<String>,
    /// Rules that become style.
    #[serde(default)]
    pub style: Vec<String>,
}

/// The file hadolint would read from `dir`: `.hadolint.yaml`, else `.hadolint.yml`.
pub fn find(dir: &Path) -> Option<PathBuf> {
    [".hadolint.yaml", ".hadolint.yml"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

impl Config {
    /// Reads `path`; an empty file is the default configuration. Unknown rule ids and
    /// severities are refused, naming the file.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |message: String| Error::Config {
            path: path.to_path_buf(),
            message,
        };
        let config: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_yaml_ng::from_str(&text).map_err(|e| bad(e.to_string()))?
        };
        let o = &config.overrides;
        for id in config
            .ignored
            .iter()
            .chain(&o.error)
            .chain(&o.warning)
            .chain(&o.info)
            .chain(&o.style)
        {
            // hadolint's ShellCheck rules (SC...) are not kiln's: named, they do nothing.
            if rule(id).is_none() && !id.starts_with("SC") {
                return Err(bad(format!("no such rule: {id}")));
            }
        }
        for (label, kind) in &config.label_schema {
            if LabelType::parse(kind).is_none() {
                return Err(bad(format!(
                    "label-schema: {label}: {kind}: use one of {}",
                    LabelType::NAMES
                )));
            }
        }
        if let Some(t) = &config.failure_threshold {
            if Severity::parse(t).is_none() && !matches!(t.as_str(), "none" | "ignore") {
                return Err(bad(format!(
                    "failure-threshold: {t}: use error, warning, info, style or none"
                )));
            }
        }
        Ok(config)
    }

    /// The label schema (checked by [`Config::load`]).
    pub fn label_schema(&self) -> LabelSchema {
        LabelSchema {
            labels: self
                .label_schema
                .iter()
                .filter_map(|(k, t)| Some((k.clone(), LabelType::parse(t)?)))
                .collect(),
            strict: self.strict_labels,
        }
    }

    /// Drops ignored rules' findings and sets overridden severities.
    pub fn apply(&self, findings: &mut Vec<Finding>) {
        findings.retain(|f| !self.ignored.iter().any(|i| i == f.rule));
        let o = &self.overrides;
        for (ids, severity) in [
            (&o.error, Severity::Error),
            (&o.warning, Severity::Warning),
            (&o.info, Severity::Info),
            (&o.style, Severity::Style),
        ] {
            for f in findings
                .iter_mut()
                .filter(|f| ids.iter().any(|i| i == f.rule))
            {
                f.severity = severity;
            }
        }
    }
}
