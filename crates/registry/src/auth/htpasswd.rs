//! htpasswd files of bcrypt entries (`user:$2y$...`, as `htpasswd -B` writes them).

use std::collections::HashMap;
use std::path::Path;

use crate::Error;

pub struct Htpasswd {
    entries: HashMap<String, String>,
}

impl Htpasswd {
    /// Reads the file; an entry that is not bcrypt is refused (MD5 and SHA1 entries are
    /// too weak to accept).
    pub fn load(path: &Path) -> Result<Htpasswd, Error> {
        let text = std::fs::read_to_string(path).map_err(Error::io("read", path))?;
        let mut entries = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line.split_once(':').ok_or_else(|| Error::Config {
                path: path.to_path_buf(),
                message: format!("line {}: not user:hash", n + 1),
            })?;
            if !hash.starts_with("$2") {
                return Err(Error::Config {
                    path: path.to_path_buf(),
                    message: format!(
                        "line {}: {user}'s entry is not bcrypt: write it with htpasswd -B",
                        n + 1
                    ),
                });
            }
            entries.insert(user.to_string(), hash.to_string());
        }
        Ok(Htpasswd { entries })
    }

    /// Whether `password` is `user`'s (bcrypt: deliberately slow, so callers cache).
    pub fn verify(&self, user: &str, password: &str) -> bool {
        self.entries
            .get(user)
            .is_some_and(|hash| bcrypt::verify(password, hash).unwrap_or(false))
    }
}
