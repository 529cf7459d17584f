//! The registry's configuration file (TOML). Every field is optional; command-line flags
//! win over the file. See "Registry configuration" in docs/registry.md for an annotated
//! example.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Error;

/// The whole file: `kiln registry serve --config FILE`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where to listen (`--addr`).
    pub addr: Option<SocketAddr>,
    /// `[storage]`: where blobs, manifests and uploads live.
    #[serde(default)]
    pub storage: StorageConfig,
    /// `[limits]`: sizes, timeouts, and what may be written.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// `[auth]`: who may log in and what they may do (open without it).
    #[serde(default)]
    pub auth: AuthConfig,
    /// `[tls]`: serve HTTPS instead of HTTP.
    pub tls: Option<TlsConfig>,
}

/// `[storage]`: one of a directory or an S3 bucket.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// The filesystem backend's directory (`--root`).
    pub root: Option<PathBuf>,
    /// An S3-compatible bucket instead: several registries can serve one.
    pub s3: Option<S3Config>,
}

/// `[storage.s3]`: an S3-compatible bucket.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The bucket's name.
    pub bucket: String,
    /// For S3-compatible services (MinIO, Ceph, moto): `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// The region (unset: the S3 client's default, `us-east-1`).
    pub region: Option<String>,
    /// Keys under this prefix.
    pub prefix: Option<String>,
    /// Otherwise from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    pub access_key_id: Option<String>,
    /// The secret key that goes with `access_key_id`.
    pub secret_access_key: Option<String>,
}

/// `[limits]`: every figure has a default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest manifest accepted (default 4 MiB, the spec's minimum).
    pub max_manifest_bytes: Option<usize>,
    /// Allow DELETE of manifests, tags and blobs (default true).
    pub delete: Option<bool>,
    /// Refuse every write (`--read-only`).
    pub read_only: Option<bool>,
    /// Failed logins from one address in a minute before it gets 429 (default 5).
    pub login_failures_per_minute: Option<u32>,
    /// Seconds a client has to send a request's headers (default 30).
    pub header_timeout_seconds: Option<u64>,
    /// Seconds a connection may send nothing, in a body or between requests, before it
    /// is closed (default 120).
    pub idle_timeout_seconds: Option<u64>,
    /// Connections served at once; more wait to be accepted (default 4096).
    pub max_connections: Option<usize>,
}

/// `[auth]`: authentication (htpasswd, Basic or bearer tokens) and access rules.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// An htpasswd file of bcrypt entries (`htpasswd -B`): turns authentication on.
    pub htpasswd: Option<PathBuf>,
    /// The realm of Basic challenges (default "kiln").
    pub realm: Option<String>,
    /// Bearer tokens from the built-in token endpoint instead of Basic on every request.
    pub token: Option<TokenConfig>,
    /// Who may do what; without rules every logged-in user may do everything.
    #[serde(default)]
    pub access: Vec<AccessRule>,
}

/// `[auth.token]`: the built-in token endpoint (docker's token authentication).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// A file holding the secret tokens are signed with (HS256): every replica serving
    /// one storage must have the same.
    pub secret_file: PathBuf,
    /// The token endpoint's URL given in challenges (default: this server's `/token`).
    pub realm: Option<String>,
    /// The `service` of challenges and the tokens' audience (default "kiln-registry").
    pub service: Option<String>,
    /// The tokens' issuer (default "kiln").
    pub issuer: Option<String>,
    /// Token lifetime in seconds (default 300).
    pub expiry_seconds: Option<u64>,
}

/// `users` (names, `*` for any logged-in user, `anonymous` for no login) may do
/// `actions` (`pull`, `push`, `delete`, `*`) on `repositories` (names; `*` matches within
/// one path component, `**` across them).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// Who the rule is for.
    pub users: Vec<String>,
    /// Which repositories it covers (patterns).
    pub repositories: Vec<String>,
    /// What it allows there.
    pub actions: Vec<String>,
}

/// `[tls]`: a PEM certificate chain and its private key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM.
    pub cert: PathBuf,
    /// The private key, PEM.
    pub key: PathBuf,
}

impl Config {
    /// Reads and checks the file: an unknown key or a wrong type is an error naming it.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(Error::io("read", path))?;
        toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}
