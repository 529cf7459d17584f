//! A registry client (OCI distribution v1.1 and Docker's registry v2): authentication
//! (Basic, and Bearer tokens from the realm a 401 names, anonymous or with credentials,
//! reused across requests and fetched again when they expire), retries with backoff on
//! 5xx answers and broken connections, and the pull and push of images into and out of
//! the store.
//!
//! Plain HTTP is used only for loopback registries and those the config
//! ([`config::Config`]) or `KILN_INSECURE_REGISTRIES` lists as insecure, as Docker does.

pub mod config;
pub mod credentials;
mod pull;
mod push;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{HeaderMap, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::StatusCode;

pub use config::Config;
pub use credentials::Credentials;
pub(crate) use pull::fetch_manifest;
pub use pull::{fetch_blob, fetch_image_manifest, pull, pull_image, Pulled};
pub use push::{push, push_manifest, Pushed};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;

/// What a pull or push tells as it goes: a line per blob and step (what `--progress
/// plain` prints), and bytes moved, for progress bars. A closure taking a line is one.
pub trait Report: Sync {
    /// One line of progress.
    fn line(&self, line: String);
    /// `done` of `total` bytes of blob `digest` have moved.
    fn bytes(&self, _digest: &Digest, _done: u64, _total: u64) {}
}

impl<F: Fn(String) + Sync> Report for F {
    fn line(&self, line: String) {
        self(line)
    }
}

/// How often a request is tried when the registry answers 5xx or the connection breaks.
const ATTEMPTS: u32 = 4;

/// One registry, with the credentials and tokens for it.
pub struct Registry {
    http: Client,
    /// `https://host` or `http://host`.
    base: String,
    host: String,
    credentials: Option<Credentials>,
    /// Bearer tokens by scope, with when they stop being valid.
    tokens: Mutex<HashMap<String, (String, Instant)>>,
    /// The registry asked for Basic: send the credentials up front.
    basic: Mutex<bool>,
}

impl Registry {
    /// A client for `host` (`docker.io` is served by `registry-1.docker.io`), with the
    /// credentials stored for it, over HTTP or HTTPS as kiln's config says.
    pub fn new(host: &str) -> Result<Registry> {
        Registry::configured(host, &Config::load()?)
    }

    /// [`Registry::new`] with the config at hand. `host` may name its scheme
    /// (`http://mirror:5000`), as a mirror in the config may.
    fn configured(host: &str, config: &Config) -> Result<Registry> {
        let (scheme, host) = match host.split_once("://") {
            Some((scheme, rest)) => (Some(scheme), rest.trim_end_matches('/')),
            None => (None, host),
        };
        let credentials = credentials::get(host)?;
        // A registry with a CA of its own speaks TLS, loopback or not.
        let insecure = scheme.map_or(
            config.insecure(host) && ca_files(host, config).is_empty(),
            |s| s == "http",
        );
        Registry::build(host, credentials, insecure, config)
    }

    /// A client for `host` with these credentials (`kiln login` checks them with it).
    pub fn with_credentials(
        host: &str,
        credentials: Option<Credentials>,
        insecure: bool,
    ) -> Result<Registry> {
        Registry::build(host, credentials, insecure, &Config::load()?)
    }

    fn build(
        host: &str,
        credentials: Option<Credentials>,
        insecure: bool,
        config: &Config,
    ) -> Result<Registry> {
        let served_by = if host == crate::reference::DEFAULT_DOMAIN {
            "registry-1.docker.io"
        } else {
            host
        };
        let scheme = if insecure { "http" } else { "https" };
        // The system's roots (and SSL_CERT_FILE / SSL_CERT_DIR) and the bundled ones come
        // with the client; a registry's own CA is added from Docker's and podman's
        // certs.d and from kiln's config.
        let mut builder = Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .timeout(None)
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")));
        for file in ca_files(host, config) {
            let pem = std::fs::read(&file).map_err(Error::io("read the CA file", &file))?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| Error::Settings {
                path: file.clone(),
                reason: format!("not a PEM certificate: {e}"),
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| Error::Unreachable {
            host: host.to_string(),
            reason: error_chain(&e),
            hint: String::new(),
        })?;
        Ok(Registry {
            http,
            base: format!("{scheme}://{served_by}"),
            host: host.to_string(),
            credentials,
            tokens: Mutex::new(HashMap::new()),
            basic: Mutex::new(false),
        })
    }

    /// The registry this client speaks to (`host[:port]`).
    pub fn host(&self) -> &str {
        &self.host
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Sends the request `make` builds (again on each attempt), authenticated for `scope`
    /// (`repository:NAME:pull` or `...:pull,push`). Retries 5xx answers and broken
    /// connections with backoff; answers a 401 by authenticating once.
    pub fn send(&self, scope: &str, make: impl Fn(&Client) -> RequestBuilder) -> Result<Response> {
        let mut authenticated = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = make(&self.http);
            if let Some(auth) = self.authorization(scope) {
                request = request.header(AUTHORIZATION, auth);
            }
            match request.send() {
                Ok(r) if r.status() == StatusCode::UNAUTHORIZED && !authenticated => {
                    authenticated = true;
                    self.authenticate(scope, r.headers())?;
                }
                Ok(r)
                    if r.status() == StatusCode::UNAUTHORIZED
                        || r.status() == StatusCode::FORBIDDEN =>
                {
                    return Err(Error::Denied {
                        host: self.host.clone(),
                        user: self.credentials.as_ref().map(|c| c.username.clone()),
                        scope: scope.to_string(),
                    });
                }
                Ok(r) if r.status().is_server_error() && attempt < ATTEMPTS => backoff(attempt),
                Ok(r) => return Ok(r),
                Err(e)
                    if attempt < ATTEMPTS
                        && (e.is_connect() || e.is_timeout() || e.is_request() || e.is_body()) =>
                {
                    backoff(attempt)
                }
                Err(e) => return Err(self.failed(&e)),
            }
        }
    }

    /// A request that got no answer, with its causes, and for HTTPS the hint that the
    /// registry may speak plain HTTP, or have a CA kiln does not know.
    fn failed(&self, e: &reqwest::Error) -> Error {
        let reason = error_chain(e);
        let hint = if reason.to_ascii_lowercase().contains("certificate") {
            format!(
                " (to trust the CA that signed {}'s certificate: SSL_CERT_FILE, \
                 /etc/docker/certs.d/{}/ca.crt, or [registries.ca] in kiln's config)",
                self.host, self.host
            )
        } else if self.base.starts_with("https://") && !e.is_timeout() {
            format!(
                " (if {} serves plain HTTP, list it under `insecure` in kiln's config: see \
                 docs/push-pull.md, \"Registry settings\")",
                self.host
            )
        } else {
            String::new()
        };
        Error::Unreachable {
            host: self.host.clone(),
            reason,
            hint,
        }
    }

    /// The Authorization header to send for `scope`, if one is known.
    fn authorization(&self, scope: &str) -> Option<String> {
        if let Some((token, until)) = self.tokens.lock().unwrap().get(scope) {
            if Instant::now() < *until {
                return Some(format!("Bearer {token}"));
            }
        }
        if *self.basic.lock().unwrap() {
            return self.credentials.as_ref().map(basic_header);
        }
        None
    }

    /// Answers a 401: a Bearer challenge gets a token from its realm (with the
    /// credentials, if any, else anonymously); a Basic challenge gets the credentials.
    fn authenticate(&self, scope: &str, headers: &HeaderMap) -> Result<()> {
        let challenge = headers
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let login_hint = || Error::Denied {
            host: self.host.clone(),
            user: None,
            scope: scope.to_string(),
        };
        let Some(params) = challenge
            .strip_prefix("Bearer ")
            .or_else(|| challenge.strip_prefix("bearer "))
        else {
            if self.credentials.is_none() {
                return Err(login_hint());
            }
            *self.basic.lock().unwrap() = true;
            return Ok(());
        };
        let params = challenge_params(params);
        let realm = params.get("realm").ok_or_else(|| Error::Protocol {
            what: self.host.clone(),
            reason: format!("a Bearer challenge without a realm: {challenge}"),
        })?;
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = params.get("service") {
            query.push(("service", service));
        }
        // One `scope=` per scope, as Docker asks (a mount needs two repositories).
        let asked = params.get("scope").map(String::as_str).unwrap_or(scope);
        for s in scope
            .split(' ')
            .chain(asked.split(' '))
            .filter(|s| !s.is_empty())
        {
            if !query.contains(&("scope", s)) {
                query.push(("scope", s));
            }
        }
        let mut request = self.http.get(realm).query(&query);
        if let Some(c) = &self.credentials {
            request = request.basic_auth(&c.username, Some(&c.password));
        }
        let answer = request.send().map_err(|e| Error::Unreachable {
            host: realm.clone(),
            reason: error_chain(&e),
            hint: String::new(),
        })?;
        match answer.status() {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if self.credentials.is_some() => {
                return Err(Error::CredentialsRefused {
                    host: self.host.clone(),
                });
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Err(login_hint()),
            s => {
                return Err(Error::Token {
                    realm: realm.clone(),
                    reason: format!("token request answered {s}"),
                })
            }
        }
        let body = read_capped(answer, MAX_TOKEN_ANSWER, realm)?;
        let body: serde_json::Value = serde_json::from_slice(&body).map_err(|_| Error::Token {
            realm: realm.clone(),
            reason: "the token answer is not JSON".into(),
        })?;
        let token = body["token"]
            .as_str()
            .or_else(|| body["access_token"].as_str())
            .ok_or_else(|| Error::Token {
                realm: realm.clone(),
                reason: "the token answer has no token".into(),
            })?;
        // Docker's default lifetime is 60 s; renew a little early. A day at most: a
        // token is asked again then, and a huge lifetime cannot overflow the clock.
        let lifetime = body["expires_in"]
            .as_u64()
            .unwrap_or(60)
            .clamp(10, MAX_TOKEN_LIFETIME);
        let until = Instant::now() + Duration::from_secs(lifetime - 5);
        self.tokens
            .lock()
            .unwrap()
            .insert(scope.to_string(), (token.to_string(), until));
        Ok(())
    }

    /// Checks the credentials: `GET /v2/` with them, authenticating as asked.
    pub fn login(&self) -> Result<()> {
        let r = self.send("", |c| c.get(self.url("/v2/")))?;
        match r.status() {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED => Err(Error::LoginRefused {
                host: self.host.clone(),
            }),
            _ => Err(refused(&format!("{}: GET /v2/", self.host), r)),
        }
    }
}

/// How many blobs move at once.
const PARALLEL: usize = 4;

/// `work` on each item, `PARALLEL` at a time; the results in no particular order.
fn in_parallel<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..PARALLEL.min(items.len()))
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    while let Some(item) =
                        items.get(next.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
                    {
                        out.push(work(item));
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a transfer thread"))
            .collect()
    })
}

fn backoff(attempt: u32) {
    std::thread::sleep(Duration::from_millis(200 * 2u64.pow(attempt - 1)));
}

fn basic_header(c: &Credentials) -> String {
    use base64::Engine;
    let pair = format!("{}:{}", c.username, c.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// `realm="https://auth",service="registry",scope="repository:a:pull"` as a map.
fn challenge_params(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_string();
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            },
            None => match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            },
        };
        out.insert(key, value.to_string());
        rest = next.trim_start_matches(',').trim();
    }
    out
}

/// `repository:PATH:ACTIONS`
fn scope(reference: &Reference, actions: &str) -> String {
    format!("repository:{}:{actions}", reference.path)
}

/// An error and each of its causes, `: `-joined: reqwest's own text ("error sending
/// request") says nothing of why.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// CA files to trust for `host`: Docker's and podman's `certs.d/HOST/*.crt`, and the
/// one kiln's config names.
fn ca_files(host: &str, config: &Config) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for root in ["/etc/docker/certs.d", "/etc/containers/certs.d"] {
        let Ok(entries) = std::fs::read_dir(std::path::Path::new(root).join(host)) else {
            continue;
        };
        let mut found: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "crt"))
            .collect();
        found.sort();
        out.extend(found);
    }
    out.extend(config.registries.ca.get(host).cloned());
    out
}

/// The most of a manifest kiln reads: distribution's own limit for a manifest it takes.
pub(crate) const MAX_MANIFEST: u64 = 4 << 20;
/// The most of a token answer or an error body kiln reads.
const MAX_TOKEN_ANSWER: u64 = 1 << 20;
const MAX_ERROR_BODY: u64 = 64 << 10;
const MAX_TOKEN_LIFETIME: u64 = 24 * 3600;

/// The body of `r`, refused past `limit` bytes (by its Content-Length before reading,
/// else when more arrives): memory stays bounded whatever the server sends.
pub(crate) fn read_capped(r: Response, limit: u64, what: &str) -> Result<Vec<u8>> {
    let too_large = || Error::TooLarge {
        what: what.to_string(),
        limit,
    };
    if r.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(r, limit + 1), &mut body).map_err(|e| {
        Error::Protocol {
            what: what.to_string(),
            reason: format!("the answer broke off: {e}"),
        }
    })?;
    if body.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(body)
}

/// An answer that is not a success, as an error that names the request.
fn refused(what: &str, r: Response) -> Error {
    let status = r.status();
    let body = read_capped(r, MAX_ERROR_BODY, what)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let envelope = serde_json::from_str::<serde_json::Value>(&body).ok();
    let errors = envelope
        .as_ref()
        .and_then(|v| v["errors"].as_array().cloned())
        .unwrap_or_default();
    let detail: String = if errors.is_empty() {
        body.chars().take(200).collect()
    } else {
        errors
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e["code"].as_str().unwrap_or("?"),
                    e["message"].as_str().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    Error::Refused {
        request: what.to_string(),
        status: status.as_u16(),
        code: errors
            .first()
            .and_then(|e| e["code"].as_str())
            .map(str::to_string),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_read_as_docker_reads_them() {
        let p = challenge_params(
            r#"realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(p["realm"], "https://auth.example/token");
        assert_eq!(p["service"], "registry.example");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
    }
}
