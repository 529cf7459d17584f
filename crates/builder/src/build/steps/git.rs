//! ADD of a git repository, as BuildKit reads one: `https://host/repo.git#REF:SUBDIR`,
//! `git://host/repo.git`, `ssh://git@host/repo.git`, `git@host:repo.git`. Fetched with
//! the `git` command (as BuildKit runs it): the ref alone, shallow, then its submodules;
//! `.git` is kept only with `--keep-git-dir`, and `--checksum` is the commit the ref must
//! be. An ssh URL authenticates through the agent `--ssh default` names.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A git source: where, which ref (default: the remote's HEAD), and which directory of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GitSource {
    pub url: String,
    pub reference: Option<String>,
    pub subdir: Option<String>,
}

impl GitSource {
    /// The source an ADD argument names, if it is a git repository.
    pub(super) fn parse(text: &str) -> Option<GitSource> {
        let (url, fragment) = match text.split_once('#') {
            Some((u, f)) => (u, Some(f)),
            None => (text, None),
        };
        let remote = url.starts_with("git://")
            || url.starts_with("ssh://")
            || url.starts_with("git@")
            || ((url.starts_with("https://") || url.starts_with("http://"))
                && url.trim_end_matches('/').ends_with(".git"));
        if !remote {
            return None;
        }
        let (reference, subdir) = match fragment {
            None => (None, None),
            Some(f) => match f.split_once(':') {
                Some((r, s)) => (Some(r), Some(s)),
                None => (Some(f), None),
            },
        };
        let nonempty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
        Some(GitSource {
            url: url.to_string(),
            reference: nonempty(reference),
            subdir: nonempty(subdir),
        })
    }

    fn is_ssh(&self) -> bool {
        self.url.starts_with("ssh://") || self.url.starts_with("git@")
    }
}

/// A fetched repository: the checkout (removed when dropped), and the directory ADD
/// copies from.
pub(super) struct Checkout {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
}

/// Fetches `source` into a fresh directory under `scratch`.
pub(super) fn fetch(
    source: &GitSource,
    keep_git_dir: bool,
    checksum: Option<&str>,
    ssh_agent: Option<&Path>,
    scratch: &Path,
) -> Result<Checkout, String> {
    if source.is_ssh() && ssh_agent.is_none() {
        return Err(format!(
            "{} is fetched over ssh: forward an agent with `kiln build --ssh default` (SSH_AUTH_SOCK)",
            source.url
        ));
    }
    let dir = tempfile::Builder::new()
        .prefix("git-")
        .tempdir_in(scratch)
        .or_else(|_| tempfile::tempdir())
        .map_err(|e| format!("a directory for {}: {e}", source.url))?;
    let git = |args: &[&str]| run_git(dir.path(), args, ssh_agent);
    git(&["init", "-q"])?;
    git(&["remote", "add", "origin", &source.url])?;
    let wanted = source.reference.as_deref().unwrap_or("HEAD");
    // The ref alone and shallow; a server that cannot (dumb HTTP) or will not (a commit
    // asked by its name) gets the whole history asked for instead, the ref found in it.
    let target = if git(&["fetch", "-q", "--depth", "1", "--no-tags", "origin", wanted]).is_ok() {
        "FETCH_HEAD".to_string()
    } else {
        git(&[
            "fetch",
            "-q",
            "--tags",
            "origin",
            "+refs/heads/*:refs/remotes/origin/*",
        ])?;
        [wanted.to_string(), format!("origin/{wanted}")]
            .iter()
            .find_map(|r| git(&["rev-parse", "--verify", "-q", &format!("{r}^{{commit}}")]).ok())
            .map(|c| c.trim().to_string())
            .ok_or_else(|| format!("{}: no branch, tag or commit {wanted}", source.url))?
    };
    git(&["checkout", "-q", "--detach", &target])?;
    let commit = git(&["rev-parse", "HEAD"])?.trim().to_string();
    if let Some(expected) = checksum {
        if expected != commit {
            return Err(format!(
                "{}#{wanted} is commit {commit}, not the --checksum {expected}",
                source.url
            ));
        }
    }
    if dir.path().join(".gitmodules").exists() {
        git(&[
            "submodule",
            "update",
            "-q",
            "--init",
            "--recursive",
            "--depth",
            "1",
        ])?;
    }
    if !keep_git_dir {
        std::fs::remove_dir_all(dir.path().join(".git"))
            .map_err(|e| format!("removing .git from the checkout: {e}"))?;
    }
    let root = match &source.subdir {
        None => dir.path().to_path_buf(),
        Some(sub) => {
            let root = dir.path().join(sub.trim_start_matches('/'));
            let inside = root
                .canonicalize()
                .ok()
                .filter(|r| r.starts_with(dir.path().canonicalize().unwrap_or_default()));
            if !inside.is_some_and(|r| r.is_dir()) {
                return Err(format!("{}: no directory {sub} at {wanted}", source.url));
            }
            root
        }
    };
    Ok(Checkout { dir, root })
}

/// Runs `git` in `dir` without prompts, with an ssh that trusts the host it is given and
/// asks the forwarded agent alone; returns its standard output, or its error in words.
fn run_git(dir: &Path, args: &[&str], ssh_agent: Option<&Path>) -> Result<String, String> {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env(
            "GIT_SSH_COMMAND",
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
        )
        .env_remove("SSH_AUTH_SOCK");
    if let Some(agent) = ssh_agent {
        cmd.env("SSH_AUTH_SOCK", agent);
    }
    let out = cmd.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            "ADD of a git repository runs `git`, which is not installed: install Debian's git"
                .to_string()
        }
        _ => format!("running git: {e}"),
    })?;
    if !out.status.success() {
        return Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_urls_are_told_apart_as_buildkit_tells_them() {
        let g = |s: &str| GitSource::parse(s);
        assert_eq!(
            g("https://example.com/app.git#v1.2:src/cmd"),
            Some(GitSource {
                url: "https://example.com/app.git".into(),
                reference: Some("v1.2".into()),
                subdir: Some("src/cmd".into()),
            })
        );
        assert_eq!(
            g("git@github.com:org/app.git").map(|s| (s.url, s.reference)),
            Some(("git@github.com:org/app.git".into(), None))
        );
        assert_eq!(
            g("git://127.0.0.1/app#:docs").map(|s| (s.reference, s.subdir)),
            Some((None, Some("docs".into())))
        );
        assert!(g("ssh://git@127.0.0.1:2222/srv/app.git").is_some());
        assert_eq!(g("https://example.com/app.tar.gz"), None);
        assert_eq!(g("https://example.com/app.git.tar"), None);
    }
}
