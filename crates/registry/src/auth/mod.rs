//! Authentication and authorization: none (the default), Basic against an htpasswd file,
//! or Bearer tokens from the built-in token endpoint; rights from the access rules.
//! The HTTP layer asks [`Auth::identify`] who is calling, [`Auth::permits`] whether they
//! may, and answers a refusal with [`Auth::challenge`].

mod access;
mod htpasswd;
mod limiter;
mod token;

pub use access::{Action, Who};
pub use token::{Claims, Grant};

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::config::AuthConfig;
use crate::errcode::{ApiError, Code};
use crate::Error;
use access::Access;
use htpasswd::Htpasswd;
use limiter::Limiter;
use token::Signer;

/// How long a verified password is remembered (bcrypt costs milliseconds per check, and
/// Basic clients send the password with every request).
const VERIFIED_FOR: Duration = Duration::from_secs(300);

/// Who is calling, as far as the request shows.
#[derive(Debug, Clone)]
pub enum Identity {
    /// Authentication is off: everything is allowed.
    Open,
    /// No credentials given.
    Anonymous,
    /// Logged in with Basic.
    User(String),
    /// A Bearer token this registry issued.
    Token(Claims),
}

/// The registry's authentication and access rules: checks a request's credentials
/// (Basic against htpasswd, or a Bearer token it issued), decides what they may do, and
/// issues tokens. Built once from `[auth]` and shared by every request.
pub struct Auth {
    users: Option<Htpasswd>,
    access: Access,
    realm: String,
    signer: Option<Signer>,
    /// The token endpoint's URL given in challenges: the configured one, or this
    /// server's own address (never the request's Host header, which the client chooses).
    token_realm: Option<String>,
    limiter: Limiter,
    verified: Mutex<HashMap<(String, [u8; 32]), Instant>>,
}

/// What an auth check refused: the error, and the `WWW-Authenticate` to send with it.
#[derive(Debug)]
pub struct Refusal {
    /// The error to answer (401 or 403, or 429 for too many failed logins).
    pub error: ApiError,
    /// The `WWW-Authenticate` header for a 401.
    pub challenge: Option<String>,
}

impl Auth {
    /// `own_url` is `scheme://address` of this server, for the default token realm;
    /// `None` when it listens on every address, where it cannot tell its own name.
    pub fn new(
        config: &AuthConfig,
        login_failures_per_minute: u32,
        own_url: Option<&str>,
    ) -> Result<Auth, Error> {
        let users = config.htpasswd.as_deref().map(Htpasswd::load).transpose()?;
        let signer = match &config.token {
            None => None,
            Some(t) => {
                let secret =
                    std::fs::read(&t.secret_file).map_err(Error::io("read", &t.secret_file))?;
                if secret.len() < 16 {
                    return Err(Error::Config {
                        path: t.secret_file.clone(),
                        message: "the token secret needs at least 16 bytes (e.g. head -c 32 /dev/urandom)".into(),
                    });
                }
                Some(Signer::new(
                    &secret,
                    t.issuer.clone().unwrap_or_else(|| "kiln".into()),
                    t.service.clone().unwrap_or_else(|| "kiln-registry".into()),
                    t.expiry_seconds.unwrap_or(300),
                ))
            }
        };
        if signer.is_some() && users.is_none() {
            return Err(Error::Config {
                path: "auth.token".into(),
                message: "tokens need users: set auth.htpasswd".into(),
            });
        }
        let token_realm = match &config.token {
            None => None,
            Some(t) => Some(match (&t.realm, own_url) {
                (Some(realm), _) => realm.clone(),
                (None, Some(own)) => format!("{own}/token"),
                (None, None) => {
                    return Err(Error::Config {
                        path: "auth.token.realm".into(),
                        message: "listening on every address, the registry cannot tell the URL clients reach its token endpoint at: set auth.token.realm (e.g. \"https://registry.example.com/token\")".into(),
                    })
                }
            }),
        };
        Ok(Auth {
            users,
            access: Access::new(&config.access),
            realm: config.realm.clone().unwrap_or_else(|| "kiln".into()),
            token_realm,
            signer,
            limiter: Limiter::new(login_failures_per_minute),
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// Checks a user's password, remembering success for a while; failures count
    /// against the caller's address.
    fn login(&self, user: &str, password: &str, peer: IpAddr) -> Result<(), Refusal> {
        if self.limiter.blocked(peer) {
            return Err(Refusal {
                error: ApiError::new(
                    Code::TooManyRequests,
                    "too many failed logins from this address: wait a minute",
                ),
                challenge: None,
            });
        }
        if self.recently_verified(user, password) {
            return Ok(());
        }
        let key = (user.to_string(), Sha256::digest(password.as_bytes()).into());
        if self
            .users
            .as_ref()
            .is_some_and(|u| u.verify(user, password))
        {
            let mut verified = self.verified.lock().expect("verified lock");
            if verified.len() > 10_000 {
                verified.clear();
            }
            verified.insert(key, Instant::now());
            return Ok(());
        }
        self.limiter.fail(peer);
        // `?`: the name as a quoted, escaped string; a newline in it cannot forge a line.
        tracing::warn!(user = ?user, %peer, "failed login");
        Err(Refusal {
            error: ApiError::new(
                Code::Unauthorized,
                format!("wrong user name or password for {user:?}"),
            ),
            challenge: None,
        })
    }

    /// Whether this user's password was checked a short while ago.
    fn recently_verified(&self, user: &str, password: &str) -> bool {
        let key = (user.to_string(), Sha256::digest(password.as_bytes()).into());
        let verified = self.verified.lock().expect("verified lock");
        verified
            .get(&key)
            .is_some_and(|t| t.elapsed() < VERIFIED_FOR)
    }

    /// Whether [`Auth::identify`] will check a password (a bcrypt, tens of milliseconds of
    /// CPU): the caller runs it off the async workers then.
    pub fn checks_password(&self, authorization: Option<&str>) -> bool {
        self.users.is_some()
            && self.signer.is_none()
            && authorization
                .and_then(basic)
                .is_some_and(|(user, password)| !self.recently_verified(&user, &password))
    }

    /// Who the request's `Authorization` header says is calling.
    pub fn identify(&self, authorization: Option<&str>, peer: IpAddr) -> Result<Identity, Refusal> {
        if self.users.is_none() {
            return Ok(Identity::Open);
        }
        let Some(value) = authorization else {
            return Ok(Identity::Anonymous);
        };
        if let Some(token) = value.strip_prefix("Bearer ") {
            return match self.signer.as_ref().and_then(|s| s.verify(token.trim())) {
                Some(claims) => Ok(Identity::Token(claims)),
                None => Err(Refusal {
                    error: ApiError::new(
                        Code::Unauthorized,
                        "the token is invalid or expired: get a new one",
                    ),
                    challenge: None,
                }),
            };
        }
        if self.signer.is_none() {
            if let Some((user, password)) = basic(value) {
                self.login(&user, &password, peer)?;
                return Ok(Identity::User(user));
            }
        }
        Ok(Identity::Anonymous)
    }

    /// Whether `who` may do `action` on `repository`.
    pub fn permits(&self, who: &Identity, repository: &str, action: Action) -> bool {
        match who {
            Identity::Open => true,
            Identity::Anonymous => self
                .access
                .allowed(&Who::Anonymous, repository)
                .contains(&action),
            Identity::User(u) => self
                .access
                .allowed(&Who::User(u.clone()), repository)
                .contains(&action),
            Identity::Token(claims) => claims.access.iter().any(|g| {
                g.kind == "repository"
                    && g.name == repository
                    && g.actions.iter().any(|a| a == action.name() || a == "*")
            }),
        }
    }

    /// Whether `who` may pull `repository`: what a token grants, or what the access rules
    /// give its subject (a catalog token names no repository, yet the catalog must show
    /// exactly the repositories its user may pull).
    pub fn may_pull(&self, who: &Identity, repository: &str) -> bool {
        if self.permits(who, repository, Action::Pull) {
            return true;
        }
        match who {
            Identity::Token(claims) => {
                let subject = if claims.sub.is_empty() {
                    Who::Anonymous
                } else {
                    Who::User(claims.sub.clone())
                };
                self.access
                    .allowed(&subject, repository)
                    .contains(&Action::Pull)
            }
            _ => false,
        }
    }

    /// Whether `who` may list the catalog: anyone logged in.
    pub fn permits_catalog(&self, who: &Identity) -> bool {
        match who {
            Identity::Open | Identity::User(_) => true,
            Identity::Anonymous => false,
            Identity::Token(claims) => claims
                .access
                .iter()
                .any(|g| g.kind == "registry" && g.name == "catalog"),
        }
    }

    /// The refusal for `who` lacking `scope` (`repository:NAME:ACTIONS`, or None for the
    /// base endpoint): 401 with a challenge to log in (or to get a token for the scope),
    /// or 403 for a logged-in Basic user who lacks the right.
    pub fn challenge(&self, who: &Identity, scope: Option<&str>) -> Refusal {
        if let (Identity::User(u), Some(scope)) = (who, scope) {
            return Refusal {
                error: ApiError::new(Code::Denied, format!("{u} may not {scope}")),
                challenge: None,
            };
        }
        let challenge = match &self.signer {
            Some(signer) => {
                let realm = self.token_realm.as_deref().unwrap_or_default();
                let mut c = format!("Bearer realm=\"{realm}\",service=\"{}\"", signer.service);
                if let Some(scope) = scope {
                    c.push_str(&format!(",scope=\"{scope}\""));
                }
                c
            }
            None => format!("Basic realm=\"{}\"", self.realm),
        };
        Refusal {
            error: ApiError::new(
                Code::Unauthorized,
                "log in first: docker login, podman login or skopeo --creds",
            ),
            challenge: Some(challenge),
        }
    }

    /// The token endpoint: a token granting what the user may of each requested scope.
    /// No credentials: anonymous (rights of `anonymous` rules only).
    pub fn issue_token(
        &self,
        credentials: Option<(String, String)>,
        scopes: &[String],
        peer: IpAddr,
    ) -> Result<serde_json::Value, Refusal> {
        let Some(signer) = &self.signer else {
            return Err(Refusal {
                error: ApiError::new(Code::Unsupported, "this registry does not issue tokens"),
                challenge: None,
            });
        };
        let who = match credentials {
            Some((user, password)) => {
                self.login(&user, &password, peer)?;
                Who::User(user)
            }
            None => Who::Anonymous,
        };
        let mut grants = Vec::new();
        for scope in scopes.iter().flat_map(|s| s.split(' ')) {
            let mut parts = scope.splitn(2, ':');
            let kind = parts.next().unwrap_or("");
            let Some((name, actions)) = parts.next().and_then(|rest| rest.rsplit_once(':')) else {
                continue;
            };
            match kind {
                "repository" => {
                    let allowed = self.access.allowed(&who, name);
                    let granted: Vec<String> = actions
                        .split(',')
                        .flat_map(Action::parse)
                        .filter(|a| allowed.contains(a))
                        .map(|a| a.name().to_string())
                        .collect();
                    grants.push(Grant {
                        kind: kind.into(),
                        name: name.into(),
                        actions: granted,
                    });
                }
                "registry" if name == "catalog" && matches!(who, Who::User(_)) => {
                    grants.push(Grant {
                        kind: kind.into(),
                        name: name.into(),
                        actions: vec!["*".into()],
                    })
                }
                _ => {}
            }
        }
        let subject = match &who {
            Who::User(u) => u.clone(),
            Who::Anonymous => String::new(),
        };
        let (token, claims) = signer.issue(&subject, grants);
        let issued =
            humantime::format_rfc3339(std::time::UNIX_EPOCH + Duration::from_secs(claims.iat))
                .to_string();
        Ok(serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": signer.lifetime,
            "issued_at": issued,
        }))
    }
}

/// The user and password of a `Basic` authorization header.
pub fn basic(value: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let encoded = value.strip_prefix("Basic ")?.trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}
