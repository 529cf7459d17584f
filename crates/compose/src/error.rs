//! The compose crate's one error type: each names the file (and the path in it) or the
//! service, and what was expected.

use std::path::PathBuf;

/// Why a Compose file cannot be read, merged or ordered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No Compose file in the directory or above it.
    #[error("no Compose file found in {} or above: write compose.yaml, or name one with -f", dir.display())]
    NoFile {
        /// Where the search started.
        dir: PathBuf,
    },
    /// A file that cannot be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A file that is not YAML.
    #[error("{}: {message}", file.display())]
    Yaml {
        /// The file.
        file: PathBuf,
        /// The YAML parser's message, with its line and column.
        message: String,
    },
    /// A value the Compose Specification does not allow there.
    #[error("{}: {path}: {message}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Where in the file: `services.web.ports[0]`.
        path: String,
        /// What was expected.
        message: String,
    },
    /// `${VAR:?message}` with `VAR` unset or empty.
    #[error("{}: {path}: required variable {variable} is missing a value: {message}", file.display())]
    RequiredVariable {
        /// The file.
        file: PathBuf,
        /// Where in the file.
        path: String,
        /// The variable.
        variable: String,
        /// The file's own message for it.
        message: String,
    },
    /// A `$` expression that does not parse.
    #[error("{}: {path}: invalid interpolation format in {text:?}", file.display())]
    Interpolation {
        /// The file.
        file: PathBuf,
        /// Where in the file.
        path: String,
        /// The text with the expression.
        text: String,
    },
    /// A `.env` or `env_file` line that does not read.
    #[error("{}: line {line}: {reason}", file.display())]
    EnvFile {
        /// The file.
        file: PathBuf,
        /// Its line, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// `extends` naming a service that is not there.
    #[error("service {service} extends {base}, which is not defined{}", file.as_ref().map(|f| format!(" in {}", f.display())).unwrap_or_default())]
    UnknownBase {
        /// The extending service.
        service: String,
        /// The service it names.
        base: String,
        /// The file it names, if any.
        file: Option<PathBuf>,
    },
    /// `depends_on` naming a service that is not there.
    #[error("service {service} depends on undefined service {dependency}: define it, or remove it from depends_on")]
    UnknownDependency {
        /// The dependent service.
        service: String,
        /// The service it names.
        dependency: String,
    },
    /// Services that depend on each other in a circle.
    #[error("dependency cycle between services: {}", cycle.join(" -> "))]
    Cycle {
        /// The services of the circle, in order, the first one again at the end.
        cycle: Vec<String>,
    },
    /// A service naming a network, volume, secret or config not defined at the top level.
    #[error("service {service} refers to undefined {kind} {name}: define it at the top level")]
    Undefined {
        /// The service.
        service: String,
        /// `network`, `volume`, `secret` or `config`.
        kind: &'static str,
        /// The name it uses.
        name: String,
    },
    /// A service with nothing to run.
    #[error("service {service} has neither an image nor a build section")]
    NoImage {
        /// The service.
        service: String,
    },
    /// A service named on the command line that the project lacks.
    #[error("no such service: {service}")]
    NoSuchService {
        /// The name given.
        service: String,
    },
    /// A project name Compose does not accept.
    #[error("project name {name:?}: use lowercase letters, digits, dashes and underscores, starting with a letter or digit")]
    ProjectName {
        /// The name given.
        name: String,
    },
}
