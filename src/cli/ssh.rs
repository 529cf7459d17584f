//! `kiln build --ssh default|ID[=SOCKET|KEY[,KEY…]]`: the ssh agents a build may use,
//! for `RUN --mount=type=ssh` and ADD of a git repository over ssh, as BuildKit takes
//! them: `default` (or an id alone) is the agent `SSH_AUTH_SOCK` names; `ID=SOCKET` an
//! agent's socket; `ID=KEY,…` keys, served by an OpenSSH `ssh-agent` started for the
//! build and stopped with it. Only the socket reaches a step: never a key, and nothing of
//! it lands in a layer, the cache key or the image's history.

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};

/// The agents, by id; the ones started here stop when this is dropped.
pub struct SshAgents {
    sockets: BTreeMap<String, PathBuf>,
    started: Vec<Child>,
    /// Where the started agents' sockets live.
    _dir: Option<tempfile::TempDir>,
}

impl SshAgents {
    pub fn start(specs: &[String]) -> anyhow::Result<SshAgents> {
        let mut agents = SshAgents {
            sockets: BTreeMap::new(),
            started: Vec::new(),
            _dir: None,
        };
        for spec in specs {
            let (id, paths) = match spec.split_once('=') {
                Some((id, paths)) => (id, Some(paths)),
                None => (spec.as_str(), None),
            };
            if id.is_empty() {
                bail!("--ssh {spec}: write default, ID, ID=SOCKET or ID=KEY[,KEY…]");
            }
            let socket = match paths {
                None => PathBuf::from(std::env::var_os("SSH_AUTH_SOCK").with_context(|| {
                    format!("--ssh {spec}: SSH_AUTH_SOCK is not set: start an agent (eval $(ssh-agent); ssh-add), or name keys: --ssh {id}=~/.ssh/id_ed25519")
                })?),
                Some(paths) => {
                    let paths: Vec<PathBuf> = paths.split(',').map(PathBuf::from).collect();
                    match paths.as_slice() {
                        [one] if is_socket(one) => one.clone(),
                        keys => agents.serve(id, keys)?,
                    }
                }
            };
            if !is_socket(&socket) {
                bail!(
                    "--ssh {spec}: {} is not an agent's socket",
                    socket.display()
                );
            }
            agents.sockets.insert(id.to_string(), socket);
        }
        Ok(agents)
    }

    pub fn sockets(&self) -> BTreeMap<String, PathBuf> {
        self.sockets.clone()
    }

    /// An `ssh-agent` holding `keys`; returns its socket.
    fn serve(&mut self, id: &str, keys: &[PathBuf]) -> anyhow::Result<PathBuf> {
        for key in keys {
            if !key.is_file() {
                bail!("--ssh {id}={}: no such key file", key.display());
            }
        }
        if self._dir.is_none() {
            self._dir = Some(
                tempfile::Builder::new()
                    .prefix("kiln-ssh-")
                    .tempdir()
                    .context("a directory for the ssh agent")?,
            );
        }
        let socket = self._dir.as_ref().expect("made above").path().join(id);
        let agent = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .context("starting ssh-agent (Debian's openssh-client) for --ssh keys")?;
        self.started.push(agent);
        wait_for_socket(&socket)?;
        let out = Command::new("ssh-add")
            .args(keys)
            .env("SSH_AUTH_SOCK", &socket)
            .stdin(Stdio::null())
            .output()
            .context("running ssh-add")?;
        if !out.status.success() {
            bail!(
                "--ssh {id}: ssh-add refused the keys (a key with a passphrase needs an agent: --ssh {id} with SSH_AUTH_SOCK): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(socket)
    }
}

impl Drop for SshAgents {
    fn drop(&mut self) {
        for agent in &mut self.started {
            let _ = agent.kill();
            let _ = agent.wait();
        }
    }
}

fn is_socket(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// `ssh-agent -D` makes its socket right after it starts.
fn wait_for_socket(socket: &Path) -> anyhow::Result<()> {
    for _ in 0..200 {
        if is_socket(socket) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    bail!("ssh-agent made no socket at {}", socket.display())
}
