//! Registry credentials where Docker keeps them, so `docker login` and `kiln login` share
//! them: `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`) with `auths`
//! (base64 `user:password`), `credHelpers` (a helper per registry) and `credsStore` (one
//! helper for all), a helper being the program `docker-credential-NAME` that answers
//! `get`, `store` and `erase` on standard input and output.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// A user name and password (or identity token) for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user (`<token>` for an identity token).
    pub username: String,
    /// The password or token.
    pub password: String,
}

/// The Docker config file kiln reads and writes.
pub fn config_path() -> PathBuf {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => PathBuf::from(dir).join("config.json"),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".docker/config.json"),
    }
}

fn read_config() -> Result<Map<String, Value>> {
    let path = config_path();
    match std::fs::read(&path) {
        Ok(data) => {
            match serde_json::from_slice(&data).map_err(Error::json(path.display().to_string()))? {
                Value::Object(map) => Ok(map),
                _ => Err(Error::Settings {
                    path,
                    reason: "not a JSON object".into(),
                }),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(Error::io("read", &path)(e)),
    }
}

fn write_config(config: &Map<String, Value>) -> Result<()> {
    let path = config_path();
    let dir = path.parent().expect("a config file in a directory");
    std::fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(Error::io("create a file in", dir))?;
    let data = serde_json::to_vec_pretty(config).map_err(Error::json("config.json"))?;
    tmp.write_all(&data).map_err(Error::io("write", &path))?;
    tmp.persist(&path)
        .map_err(|e| Error::io("write", &path)(e.error))?;
    Ok(())
}

/// The keys Docker uses in `auths`: `https://index.docker.io/v1/` for Docker Hub, the
/// host for the others (some tools write `https://host`; both are looked up).
fn auth_keys(host: &str) -> Vec<String> {
    if host == crate::reference::DEFAULT_DOMAIN {
        vec![
            "https://index.docker.io/v1/".into(),
            "docker.io".into(),
            "index.docker.io".into(),
        ]
    } else {
        vec![
            host.to_string(),
            format!("https://{host}"),
            format!("http://{host}"),
        ]
    }
}

/// The helper that holds `host`'s credentials, if one is configured.
fn helper(config: &Map<String, Value>, host: &str) -> Option<String> {
    let key = &auth_keys(host)[0];
    config
        .get("credHelpers")
        .and_then(|h| h.get(key))
        .or_else(|| config.get("credsStore"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn run_helper(name: &str, action: &str, input: &str) -> Result<String> {
    let program = format!("docker-credential-{name}");
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::CredentialHelper {
            program: program.clone(),
            action: action.to_string(),
            said: format!(
                "{e} (the credential helper named in {})",
                config_path().display()
            ),
        })?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())
        .map_err(Error::io("write to", &program))?;
    let out = child
        .wait_with_output()
        .map_err(Error::io("run", &program))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let said = if stdout.trim().is_empty() {
            String::from_utf8_lossy(&out.stderr).into_owned()
        } else {
            stdout
        };
        // docker-credential-helpers' own answer for nothing stored.
        if said.contains("credentials not found") {
            return Err(Error::CredentialsNotFound { program });
        }
        return Err(Error::CredentialHelper {
            program,
            action: action.to_string(),
            said: said.trim().to_string(),
        });
    }
    Ok(stdout)
}

/// The credentials stored for `host`, if any.
pub fn get(host: &str) -> Result<Option<Credentials>> {
    let config = read_config()?;
    if let Some(name) = helper(&config, host) {
        let key = &auth_keys(host)[0];
        return match run_helper(&name, "get", key) {
            Ok(out) => {
                let v: Value = serde_json::from_str(&out)
                    .map_err(Error::json(format!("docker-credential-{name} get")))?;
                Ok(Some(Credentials {
                    username: v["Username"].as_str().unwrap_or_default().to_string(),
                    password: v["Secret"].as_str().unwrap_or_default().to_string(),
                }))
            }
            Err(Error::CredentialsNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        };
    }
    let Some(auths) = config.get("auths").and_then(Value::as_object) else {
        return Ok(None);
    };
    for key in auth_keys(host) {
        let Some(entry) = auths.get(&key) else {
            continue;
        };
        if let Some(auth) = entry.get("auth").and_then(Value::as_str) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| Error::Settings {
                    path: config_path(),
                    reason: format!("auths.{key}.auth: {e}"),
                })?;
            let text = String::from_utf8_lossy(&decoded);
            if let Some((u, p)) = text.split_once(':') {
                return Ok(Some(Credentials {
                    username: u.into(),
                    password: p.into(),
                }));
            }
        }
    }
    Ok(None)
}

/// Stores `credentials` for `host`: in the helper if one is configured, else in `auths`.
pub fn store(host: &str, credentials: &Credentials) -> Result<()> {
    let mut config = read_config()?;
    let key = auth_keys(host).remove(0);
    if let Some(name) = helper(&config, host) {
        let input = json!({"ServerURL": key, "Username": credentials.username, "Secret": credentials.password});
        run_helper(&name, "store", &input.to_string())?;
        return Ok(());
    }
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", credentials.username, credentials.password));
    let auths = config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    auths[&key] = json!({ "auth": auth });
    write_config(&config)
}

/// Forgets `host`'s credentials; false when there were none.
pub fn erase(host: &str) -> Result<bool> {
    let mut config = read_config()?;
    if let Some(name) = helper(&config, host) {
        let key = &auth_keys(host)[0];
        run_helper(&name, "erase", key)?;
        return Ok(true);
    }
    let mut removed = false;
    if let Some(auths) = config.get_mut("auths").and_then(Value::as_object_mut) {
        for key in auth_keys(host) {
            removed |= auths.remove(&key).is_some();
        }
    }
    if removed {
        write_config(&config)?;
    }
    Ok(removed)
}
