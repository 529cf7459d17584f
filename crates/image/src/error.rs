//! The image crate's one error type.

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
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest { digest: String, reason: String },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}; the data is corrupt or was changed while being read, nothing was stored")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("invalid reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("platform {text:?}: write OS/ARCH[/VARIANT], as linux/amd64 or linux/arm64")]
    Platform { text: String },
    #[error("{image}: no image for {platform} (it has: {offered}); choose one with --platform")]
    NoPlatform {
        image: String,
        platform: String,
        offered: String,
    },
    #[error("{reference}: not found in {host} (no such repository or tag)")]
    ManifestNotFound { reference: String, host: String },
    #[error("{what}: {reason}")]
    Signature { what: String, reason: String },
    #[error("{image} is refused by the signature policy {}: {reason}", policy.display())]
    PolicyRefused {
        image: String,
        policy: PathBuf,
        reason: String,
    },
    #[error("no such image: {0} (see `kiln images`)")]
    ImageNotFound(String),
    #[error("blob {0} is missing from the store")]
    BlobMissing(String),
    #[error("{what}: {reason}")]
    InvalidImage { what: String, reason: String },
    #[error("layer entry {path:?}: {reason}; nothing was written outside the target")]
    UnsafeLayerEntry { path: String, reason: String },
    #[error("{what}: not valid JSON: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Conflict(String),
    /// An answer larger than kiln reads for its kind: a registry that is broken or hostile.
    #[error("{what}: the answer is larger than {limit} bytes, more than any registry sends for it; refused")]
    TooLarge { what: String, limit: u64 },
    /// A request that got no answer (refused connection, TLS, timeout), with its causes
    /// and what to try.
    #[error("{host}: {reason}{hint}")]
    Unreachable {
        host: String,
        reason: String,
        /// Empty, or ` (…)`: what may help.
        hint: String,
    },
    /// An answer that is not a success, with the OCI error code its envelope gave.
    #[error("{request}: {status} {detail}")]
    Refused {
        request: String,
        status: u16,
        code: Option<String>,
        detail: String,
    },
    /// Refused for want of rights: no credentials, or a user without them.
    #[error("{host}: {}", match user { None => format!("unauthorized: run `kiln login {host}`"), Some(u) => format!("{u} may not {scope} (denied by the registry)") })]
    Denied {
        host: String,
        user: Option<String>,
        scope: String,
    },
    #[error("{host}: the credentials stored for it were refused (run `kiln login {host}` again)")]
    CredentialsRefused { host: String },
    #[error("{host}: login refused: wrong user name or password")]
    LoginRefused { host: String },
    #[error("{realm}: {reason}")]
    Token { realm: String, reason: String },
    /// A docker credential helper that failed: its program, the action, what it said.
    #[error("{program} {action}: {said}")]
    CredentialHelper {
        program: String,
        action: String,
        said: String,
    },
    /// A credential helper that has nothing stored for the registry.
    #[error("{program}: no credentials stored for this registry")]
    CredentialsNotFound { program: String },
    /// A settings file (docker's config.json, kiln's registry settings, a CA file) that
    /// does not read.
    #[error("{}: {reason}", path.display())]
    Settings { path: PathBuf, reason: String },
    /// A registry that does not keep to the protocol.
    #[error("{what}: {reason}")]
    Protocol { what: String, reason: String },
    #[error("{source} (after the mirrors {mirrors})")]
    AfterMirrors { source: Box<Error>, mirrors: String },
}

impl Error {
    /// A digest mismatch told about `what` (the request or entry the bytes came from);
    /// any other error as it is.
    pub fn about(self, what: impl Into<String>) -> Error {
        match self {
            Error::DigestMismatch {
                expected, actual, ..
            } => Error::DigestMismatch {
                what: what.into(),
                expected,
                actual,
            },
            other => other,
        }
    }

    /// An io error with the operation and the path it concerned.
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }

    pub fn json(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Error {
        let what = what.into();
        move |source| Error::Json { what, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
