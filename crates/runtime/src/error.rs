//! The runtime's one error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the sandbox for {program:?}: {source} (kiln runs RUN steps as root, with overlayfs and namespaces)")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid sandbox configuration: {0}")]
    Config(String),
}
