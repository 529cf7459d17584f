//! The compose crate's one error type: each names the file (and the path in it) or the
//! service, and what was expected.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no Compose file found in {} or above: write compose.yaml, or name one with -f", dir.display())]
    NoFile { dir: PathBuf },
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", file.display())]
    Yaml { file: PathBuf, message: String },
    #[error("{}: {path}: {message}", file.display())]
    Invalid {
        file: PathBuf,
        /// Where in the file: `services.web.ports[0]`.
        path: String,
        message: String,
    },
    #[error("{}: {path}: required variable {variable} is missing a value: {message}", file.display())]
    RequiredVariable {
        file: PathBuf,
        path: String,
        variable: String,
        message: String,
    },
    #[error("{}: {path}: invalid interpolation format in {text:?}", file.display())]
    Interpolation {
        file: PathBuf,
        path: String,
        text: String,
    },
    #[error("{}: line {line}: {reason}", file.display())]
    EnvFile {
        file: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("service {service} extends {base}, which is not defined{}", file.as_ref().map(|f| format!(" in {}", f.display())).unwrap_or_default())]
    UnknownBase {
        service: String,
        base: String,
        file: Option<PathBuf>,
    },
    #[error("service {service} depends on undefined service {dependency}: define it, or remove it from depends_on")]
    UnknownDependency { service: String, dependency: String },
    #[error("dependency cycle between services: {}", cycle.join(" -> "))]
    Cycle { cycle: Vec<String> },
    #[error("service {service} refers to undefined {kind} {name}: define it at the top level")]
    Undefined {
        service: String,
        kind: &'static str,
        name: String,
    },
    #[error("service {service} has neither an image nor a build section")]
    NoImage { service: String },
    #[error("no such service: {service}")]
    NoSuchService { service: String },
    #[error("project name {name:?}: use lowercase letters, digits, dashes and underscores, starting with a letter or digit")]
    ProjectName { name: String },
}
