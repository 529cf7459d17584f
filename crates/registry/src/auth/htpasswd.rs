//! htpasswd files of bcrypt entries (`user:$2y$...`, as `htpasswd -B` writes them).

use std::collections::HashMap;
use std::path::Path;

use crate::Error;

pub struct Htpasswd {
    entries: HashMap<String, String>,
    /// A hash of the file's cost that no password matches: an unknown user is checked
    /// against it, so a wrong name takes as long as a wrong password (no user names
    /// told by timing).
    dummy: String,
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
        // The cost of `$2y$NN$...`; bcrypt's default when there is no entry.
        let cost = entries
            .values()
            .find_map(|h| h.get(4..6)?.parse::<u32>().ok())
            .unwrap_or(bcrypt::DEFAULT_COST);
        let dummy =
            bcrypt::hash(uuid::Uuid::new_v4().to_string(), cost).map_err(|e| Error::Config {
                path: path.to_path_buf(),
                message: format!("bcrypt cost {cost}: {e}"),
            })?;
        Ok(Htpasswd { entries, dummy })
    }

    /// Whether `password` is `user`'s (bcrypt: deliberately slow, so callers cache).
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let (hash, known) = match self.entries.get(user) {
            Some(hash) => (hash, true),
            None => (&self.dummy, false),
        };
        bcrypt::verify(password, hash).unwrap_or(false) && known
    }
}
