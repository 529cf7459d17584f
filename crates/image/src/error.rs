//! The image crate's one error type.

use std::path::PathBuf;

/// Why an image operation failed. Each variant names what it concerned (a path, a
/// digest, a reference, a request) so the message can say where; `reason` and `detail`
/// fields are sentences for the user, never matched on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`read`, `rename into place`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A digest that does not parse (algorithm, hex, length).
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest {
        /// The text given.
        digest: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Bytes that do not hash to the digest they came with: nothing was stored.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}; the data is corrupt or was changed while being read, nothing was stored")]
    DigestMismatch {
        /// The request, file or entry the bytes came from.
        what: String,
        /// The digest they should have.
        expected: String,
        /// The digest they have.
        actual: String,
    },
    /// An image reference that does not parse.
    #[error("invalid reference {reference:?}: {reason}")]
    InvalidReference {
        /// The text given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A platform that is not `OS/ARCH[/VARIANT]`.
    #[error("platform {text:?}: write OS/ARCH[/VARIANT], as linux/amd64 or linux/arm64")]
    Platform {
        /// The text given.
        text: String,
    },
    /// A multi-platform image without the platform asked for.
    #[error("{image}: no image for {platform} (it has: {offered}); choose one with --platform")]
    NoPlatform {
        /// The image.
        image: String,
        /// The platform asked for.
        platform: String,
        /// The platforms it has, comma-separated.
        offered: String,
    },
    /// A registry that has no such repository or tag.
    #[error("{reference}: not found in {host} (no such repository or tag)")]
    ManifestNotFound {
        /// The reference asked for.
        reference: String,
        /// The registry.
        host: String,
    },
    /// A key or signature that cannot be made, read or checked.
    #[error("{what}: {reason}")]
    Signature {
        /// The key file, image or signature.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// An image the signature policy does not accept.
    #[error("{image} is refused by the signature policy {}: {reason}", policy.display())]
    PolicyRefused {
        /// The image, by digest.
        image: String,
        /// The policy file.
        policy: PathBuf,
        /// Which requirement it fails.
        reason: String,
    },
    /// No image by that name or id in the store.
    #[error("no such image: {0} (see `kiln images`)")]
    ImageNotFound(String),
    /// A blob the store should have and has not (its digest).
    #[error("blob {0} is missing from the store")]
    BlobMissing(String),
    /// An image, manifest, config or archive that does not keep to the OCI specs.
    #[error("{what}: {reason}")]
    InvalidImage {
        /// The image, file or entry.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A layer entry that would land outside the directory it is applied to.
    #[error("layer entry {path:?}: {reason}; nothing was written outside the target")]
    UnsafeLayerEntry {
        /// The entry's path in the tar.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// JSON that does not read as what it should be.
    #[error("{what}: not valid JSON: {source}")]
    Json {
        /// The file or answer.
        what: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// Something changed under the operation (a file shrank while it was archived, a
    /// name taken meanwhile): a sentence for the user.
    #[error("{0}")]
    Conflict(String),
    /// An answer larger than kiln reads for its kind: a registry that is broken or hostile.
    #[error("{what}: the answer is larger than {limit} bytes, more than any registry sends for it; refused")]
    TooLarge {
        /// The request.
        what: String,
        /// The most kiln reads for it.
        limit: u64,
    },
    /// A request that got no answer (refused connection, TLS, timeout), with its causes
    /// and what to try.
    #[error("{host}: {reason}{hint}")]
    Unreachable {
        /// The registry.
        host: String,
        /// The causes, outermost first.
        reason: String,
        /// Empty, or ` (…)`: what may help.
        hint: String,
    },
    /// An answer that is not a success, with the OCI error code its envelope gave.
    #[error("{request}: {status} {detail}")]
    Refused {
        /// The method and URL.
        request: String,
        /// The HTTP status.
        status: u16,
        /// The first error code of the envelope (`MANIFEST_UNKNOWN`, ...), if it had one.
        code: Option<String>,
        /// The envelope's message and detail, or the body's start.
        detail: String,
    },
    /// Refused for want of rights: no credentials, or a user without them.
    #[error("{host}: {}", match user { None => format!("unauthorized: run `kiln login {host}`"), Some(u) => format!("{u} may not {scope} (denied by the registry)") })]
    Denied {
        /// The registry.
        host: String,
        /// Who asked, None for no credentials.
        user: Option<String>,
        /// What was asked for (`pull on library/alpine`).
        scope: String,
    },
    /// Stored credentials the registry no longer takes.
    #[error("{host}: the credentials stored for it were refused (run `kiln login {host}` again)")]
    CredentialsRefused {
        /// The registry.
        host: String,
    },
    /// `kiln login` with a wrong user name or password.
    #[error("{host}: login refused: wrong user name or password")]
    LoginRefused {
        /// The registry.
        host: String,
    },
    /// A token endpoint that gives no usable token.
    #[error("{realm}: {reason}")]
    Token {
        /// The token endpoint's URL.
        realm: String,
        /// What went wrong.
        reason: String,
    },
    /// A docker credential helper that failed: its program, the action, what it said.
    #[error("{program} {action}: {said}")]
    CredentialHelper {
        /// The helper (`docker-credential-pass`).
        program: String,
        /// `get`, `store` or `erase`.
        action: String,
        /// Its standard error, or why it could not be run.
        said: String,
    },
    /// A credential helper that has nothing stored for the registry.
    #[error("{program}: no credentials stored for this registry")]
    CredentialsNotFound {
        /// The helper.
        program: String,
    },
    /// A settings file (docker's config.json, kiln's registry settings, a CA file) that
    /// does not read.
    #[error("{}: {reason}", path.display())]
    Settings {
        /// The file.
        path: PathBuf,
        /// What is wrong in it.
        reason: String,
    },
    /// A registry that does not keep to the protocol.
    #[error("{what}: {reason}")]
    Protocol {
        /// The request or answer.
        what: String,
        /// What it broke.
        reason: String,
    },
    /// The upstream's error, after every mirror failed too.
    #[error("{source} (after the mirrors {mirrors})")]
    AfterMirrors {
        /// The upstream registry's error.
        source: Box<Error>,
        /// The mirrors tried, comma-separated.
        mirrors: String,
    },
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

    /// For `map_err`: JSON of `what` that does not read.
    pub fn json(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Error {
        let what = what.into();
        move |source| Error::Json { what, source }
    }
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
