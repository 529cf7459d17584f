//! Bearer tokens: JWTs signed with HS256, carrying the Docker token spec's `access` claim
//! (`[{"type": "repository", "name": "...", "actions": ["pull", ...]}]`).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// One entry of the `access` claim: `actions` on resource `name` of type `kind`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Grant {
    /// `repository` (the only type this registry grants).
    #[serde(rename = "type")]
    pub kind: String,
    /// The repository name.
    pub name: String,
    /// `pull`, `push`, `delete`, as granted.
    pub actions: Vec<String>,
}

/// A token's claims (RFC 7519 names) and the Docker token spec's `access`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: this registry's configured issuer.
    pub iss: String,
    /// Subject: the user, empty for anonymous.
    pub sub: String,
    /// Audience: the service the token is for.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Not before, seconds since the epoch (a second early, for clock skew).
    pub nbf: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// A unique id.
    pub jti: String,
    /// What the token allows.
    pub access: Vec<Grant>,
}

/// Issues and verifies this registry's tokens with one HS256 secret (shared by every
/// replica of one storage).
pub struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The `iss` of tokens issued, and the only one accepted.
    pub issuer: String,
    /// The `aud` of tokens issued, and the only one accepted.
    pub service: String,
    /// Seconds a token lives.
    pub lifetime: u64,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Signer {
    /// A signer with `secret`, naming `issuer` and `service`, issuing tokens that live
    /// `lifetime` seconds.
    pub fn new(secret: &[u8], issuer: String, service: String, lifetime: u64) -> Signer {
        Signer {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            issuer,
            service,
            lifetime,
        }
    }

    /// A token for `subject` (empty for anonymous) granting `access`.
    pub fn issue(&self, subject: &str, access: Vec<Grant>) -> (String, Claims) {
        let iat = now();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: subject.to_string(),
            aud: self.service.clone(),
            exp: iat + self.lifetime,
            nbf: iat.saturating_sub(1),
            iat,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            access,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail");
        (token, claims)
    }

    /// The claims of a token this registry signed, still valid, for this service.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[&self.service]);
        validation.set_issuer(&[&self.issuer]);
        validation.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()
            .map(|t| t.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_their_secret_and_service() {
        let signer = Signer::new(b"secret", "kiln".into(), "svc".into(), 60);
        let grant = Grant {
            kind: "repository".into(),
            name: "a/b".into(),
            actions: vec!["pull".into()],
        };
        let (token, _) = signer.issue("alice", vec![grant.clone()]);
        let claims = signer.verify(&token).expect("valid");
        assert_eq!((claims.sub.as_str(), claims.access), ("alice", vec![grant]));
        assert!(Signer::new(b"other", "kiln".into(), "svc".into(), 60)
            .verify(&token)
            .is_none());
        assert!(Signer::new(b"secret", "kiln".into(), "other".into(), 60)
            .verify(&token)
            .is_none());
        let mut tampered = token.clone();
        tampered.insert(tampered.len() / 2, 'x');
        assert!(signer.verify(&tampered).is_none());
    }
}
