//! ECDSA P-256 keys as cosign writes them: the private key PKCS#8, encrypted in cosign's
//! format (`ENCRYPTED SIGSTORE PRIVATE KEY`: scrypt derives a key from the password,
//! NaCl's secretbox seals the key), the public key a `PUBLIC KEY` PEM (SPKI). Unencrypted
//! PKCS#8 and SEC1 private keys are read too.

use base64::Engine as _;
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use serde::{Deserialize, Serialize};
use xsalsa20poly1305::aead::{Aead, KeyInit};
use xsalsa20poly1305::XSalsa20Poly1305;

use crate::error::{Error, Result};

const ENCRYPTED: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// What cosign before 2.0 called it.
const ENCRYPTED_OLD: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// cosign's scrypt cost: N = 2^15, r = 8, p = 1.
const LOG_N: u8 = 15;

/// cosign's encrypted key file, the PEM's body.
#[derive(Serialize, Deserialize)]
struct Sealed {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
#[allow(non_snake_case)]
struct ScryptParams {
    N: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

fn bad(what: &str, reason: impl Into<String>) -> Error {
    Error::Signature {
        what: what.to_string(),
        reason: reason.into(),
    }
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").map_err(Error::io("open", "/dev/urandom"))?,
        &mut bytes,
    )
    .map_err(Error::io("read", "/dev/urandom"))?;
    Ok(bytes)
}

fn secretbox_key(password: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32) -> Result<[u8; 32]> {
    let params = scrypt::Params::new(log_n, r, p, 32)
        .map_err(|e| bad("the key file's scrypt parameters", e.to_string()))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut key)
        .map_err(|e| bad("deriving the key file's key", e.to_string()))?;
    Ok(key)
}

/// A new key pair: the private key encrypted with `password` as cosign writes it, and
/// the public key.
pub fn generate(password: &[u8]) -> Result<(String, String)> {
    let key = loop {
        if let Ok(k) = SigningKey::from_slice(&random::<32>()?) {
            break k;
        }
    };
    let der = key
        .to_pkcs8_der()
        .map_err(|e| bad("the new key", e.to_string()))?;
    let salt = random::<32>()?;
    let nonce = random::<24>()?;
    let cipher = XSalsa20Poly1305::new(&secretbox_key(password, &salt, LOG_N, 8, 1)?.into());
    let ciphertext = cipher
        .encrypt(&nonce.into(), der.as_bytes())
        .map_err(|_| bad("the new key", "sealing failed"))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let sealed = Sealed {
        kdf: Kdf {
            name: "scrypt".into(),
            params: ScryptParams {
                N: 1 << LOG_N,
                r: 8,
                p: 1,
            },
            salt: b64.encode(salt),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: b64.encode(nonce),
        },
        ciphertext: b64.encode(ciphertext),
    };
    let body = serde_json::to_vec(&sealed).map_err(Error::json("the new key"))?;
    let private = pem_encode(ENCRYPTED, &body);
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| bad("the new public key", e.to_string()))?;
    Ok((private, public))
}

/// Reads a private key file: cosign's encrypted form (opened with `password`), or an
/// unencrypted PKCS#8 or SEC1 PEM.
pub fn read_private(text: &str, password: &[u8], what: &str) -> Result<SigningKey> {
    let (label, body) = pem_decode(text).ok_or_else(|| bad(what, "not a PEM key file"))?;
    match label.as_str() {
        ENCRYPTED | ENCRYPTED_OLD => {
            let sealed: Sealed = serde_json::from_slice(&body).map_err(Error::json(what))?;
            if sealed.kdf.name != "scrypt" || sealed.cipher.name != "nacl/secretbox" {
                return Err(bad(
                    what,
                    format!(
                        "{} with {} is not cosign's form",
                        sealed.kdf.name, sealed.cipher.name
                    ),
                ));
            }
            let b64 = base64::engine::general_purpose::STANDARD;
            let decode = |s: &str| b64.decode(s).map_err(|e| bad(what, e.to_string()));
            let p = &sealed.kdf.params;
            if !p.N.is_power_of_two() {
                return Err(bad(what, "scrypt N is not a power of two"));
            }
            let key = secretbox_key(
                password,
                &decode(&sealed.kdf.salt)?,
                p.N.trailing_zeros() as u8,
                p.r,
                p.p,
            )?;
            let nonce: [u8; 24] = decode(&sealed.cipher.nonce)?
                .try_into()
                .map_err(|_| bad(what, "the nonce is not 24 bytes"))?;
            let der = XSalsa20Poly1305::new(&key.into())
                .decrypt(&nonce.into(), decode(&sealed.ciphertext)?.as_slice())
                .map_err(|_| {
                    bad(
                        what,
                        "wrong password (COSIGN_PASSWORD), or the file was changed",
                    )
                })?;
            SigningKey::from_pkcs8_der(&der).map_err(|e| bad(what, e.to_string()))
        }
        "PRIVATE KEY" => SigningKey::from_pkcs8_der(&body).map_err(|e| bad(what, e.to_string())),
        "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(&body)
            .map(SigningKey::from)
            .map_err(|e| bad(what, e.to_string())),
        other => Err(bad(
            what,
            format!("a {other} PEM is not an ECDSA P-256 private key"),
        )),
    }
}

/// Reads a `PUBLIC KEY` PEM.
pub fn read_public(text: &str, what: &str) -> Result<VerifyingKey> {
    VerifyingKey::from_public_key_pem(text.trim())
        .map_err(|e| bad(what, format!("not an ECDSA P-256 public key PEM: {e}")))
}

fn pem_encode(label: &str, body: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(body);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The first PEM block: its label and body.
fn pem_decode(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let (label, rest) = rest.split_once("-----")?;
    let end = rest.find(&format!("-----END {label}-----"))?;
    let b64: String = rest[..end].chars().filter(|c| !c.is_whitespace()).collect();
    let body = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    Some((label.to_string(), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_opens_with_its_password_only() {
        let (private, public) = generate(b"pw").unwrap();
        assert!(private.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
        let key = read_private(&private, b"pw", "key").unwrap();
        assert_eq!(*key.verifying_key(), read_public(&public, "pub").unwrap());
        let err = read_private(&private, b"other", "key")
            .unwrap_err()
            .to_string();
        assert!(err.contains("wrong password"), "{err}");
    }
}
