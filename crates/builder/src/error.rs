//! The builder's one error type.

use std::fmt;
use std::path::PathBuf;

/// Everything the Dockerfile front end can refuse.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Dockerfile BuildKit would reject; the diagnostic names the place.
    #[error("{0}")]
    Syntax(Box<Diagnostic>),
    /// A `${VAR...}` that cannot be expanded (bad syntax, or `${VAR:?msg}` on an unset
    /// VAR), at the start of the instruction that holds it.
    #[error("{}:{}: {message}", at.line, at.column)]
    Expand {
        /// Where the instruction starts.
        at: crate::ast::Position,
        /// What is wrong, as BuildKit says it.
        message: String,
    },
    /// A COPY/ADD source that climbs out of the context (`../x`).
    #[error("{path}: outside the build context")]
    OutsideContext {
        /// The source, as written.
        path: String,
    },
    /// A context symlink a COPY/ADD source follows out of the context.
    #[error("{path}: a symlink points out of the build context")]
    SymlinkOut {
        /// The symlink, relative to the context.
        path: String,
    },
    /// A COPY/ADD source pattern that is not one.
    #[error("{pattern}: {reason}")]
    BadPattern {
        /// The pattern, as written.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A COPY/ADD wildcard that matches nothing (BuildKit's wording).
    #[error("no source files were specified: {pattern} matches nothing in the build context")]
    NoSources {
        /// The pattern, as written.
        pattern: String,
    },
    /// A COPY/ADD source the context does not have.
    #[error("{pattern}: not found in the build context (is it in .dockerignore?)")]
    NotInContext {
        /// The source, as written.
        pattern: String,
    },
    /// A `.dockerignore` pattern that does not read.
    #[error(".dockerignore line {line}: {reason}")]
    Dockerignore {
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// `--target` names no stage.
    #[error("target stage {name:?} could not be found in the Dockerfile")]
    NoTarget {
        /// The stage asked for.
        name: String,
    },
    /// A base image the store does not have (for the platform asked).
    #[error("{source} (kiln builds FROM images in its store or pulls them)")]
    NoImage {
        /// The store's answer.
        #[source]
        source: kiln_image::Error,
    },
    /// A base image the store lacks, and pulling it failed.
    #[error("no such image {name} in the store, and pulling it failed: {source}")]
    PullFailed {
        /// The image as the Dockerfile names it.
        name: String,
        /// Why the pull failed.
        #[source]
        source: kiln_image::Error,
    },
    /// An `import --change` with an instruction that cannot change an image's config.
    #[error("--change {change:?}: {keyword} cannot be changed on import (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR can)")]
    Unchangeable {
        /// The `--change` value.
        change: String,
        /// Its instruction.
        keyword: String,
    },
    /// A `--cache-from`/`--cache-to` value that does not read.
    #[error("cache option {spec:?}: {reason}")]
    CacheOption {
        /// The option, as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A build cache (in a registry or a directory) that cannot be read or made.
    #[error("{what}: {reason}")]
    Cache {
        /// The cache (its reference or directory).
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// The image was made, but exporting its cache failed.
    #[error("the image is built and tagged, but its cache could not be exported to {location}: {source} (add ignore-error=true to --cache-to to let the build pass)")]
    CacheExport {
        /// Where the cache was going.
        location: String,
        /// Why the export failed.
        #[source]
        source: Box<Error>,
    },
    /// JSON kiln writes that would not encode.
    #[error("{what}: {source}")]
    Encode {
        /// What was being written.
        what: &'static str,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// A step that failed: which one, and why (for RUN: the exit code and the output's tail).
    #[error("{step}: {message}")]
    Step {
        /// The step (`line 4: RUN make`), or the stage (`stage build`).
        step: String,
        /// Why it failed.
        message: String,
    },
    /// A stage's thread panicked (a bug in kiln): the build fails instead of hanging.
    #[error("stage {stage}: kiln failed: {message} (a bug: please report it with the Dockerfile)")]
    StagePanicked {
        /// The stage's name or index.
        stage: String,
        /// The panic's message.
        message: String,
    },
    /// SIGINT or SIGTERM stopped the build; nothing was named.
    #[error("interrupted: the build stopped before finishing; the store holds what finished steps made, and no new tag")]
    Interrupted,
    /// A step that needs an entitlement the build was not given.
    #[error("line {line}: {step} needs the {entitlement} entitlement: build with --allow {entitlement} to let it {grants}")]
    NotAllowed {
        /// The step's line.
        line: usize,
        /// The flag that asks for it (`RUN --network=host`).
        step: &'static str,
        /// The entitlement it needs (`network.host`).
        entitlement: &'static str,
        /// What the entitlement gives.
        grants: &'static str,
    },
    /// The store, a layer or the registry client failed.
    #[error(transparent)]
    Image(#[from] kiln_image::Error),
    /// A lint configuration file (`.hadolint.yaml`) that does not read.
    #[error("{}: {message}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the place when the YAML reader gives one.
        message: String,
    },
    /// A file the build touched: what it did (`read`, `write`, `create directory`, …).
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
}

/// A message tied to a place in a Dockerfile, shown as `PATH:LINE:COL: message`, then the
/// line and a caret under the column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as the user named it (`-` or `<stdin>` for standard input).
    pub path: String,
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// The text of the offending line, without its line break.
    pub source_line: String,
}

impl Diagnostic {
    /// A diagnostic at `at` in `source`, quoting the line.
    pub fn new(path: &str, source: &str, at: crate::ast::Position, message: String) -> Self {
        let line = source
            .split('\n')
            .nth(at.line.saturating_sub(1))
            .unwrap_or_default();
        let line = line.strip_prefix('\u{feff}').unwrap_or(line);
        Diagnostic {
            path: path.to_string(),
            line: at.line,
            column: at.column,
            message,
            source_line: line.strip_suffix('\r').unwrap_or(line).to_string(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{}:{}: {}",
            self.path, self.line, self.column, self.message
        )?;
        let gutter = self.line.to_string();
        writeln!(f, "{gutter} | {}", self.source_line)?;
        // Tabs stay tabs under the caret so it lines up in a terminal.
        let pad: String = self
            .source_line
            .chars()
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "{} | {pad}^", " ".repeat(gutter.len()))
    }
}
