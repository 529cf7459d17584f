//! COPY and ADD: where the sources come from, where they go, and as whom.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::git::{self, GitSource};
use super::{step_error, Builder, State};
use crate::ast::{Command, Instruction};
use crate::build::config::ImageConfig;
use crate::build::copy::{self, Attrs};
use crate::context::Dockerignore;
use crate::Error;
use kiln_image::tree::id_of;

/// What COPY/ADD reads: the source root (the context, or a mounted view of a stage to
/// unmount after the copy), the chosen sources, and their content key and digests.
pub(super) struct CopyInput {
    pub(super) root: PathBuf,
    pub(super) sources: Vec<copy::Source>,
    pub(super) key: String,
    pub(super) files: BTreeMap<String, String>,
    pub(super) view: Option<PathBuf>,
    /// `--exclude` patterns.
    pub(super) exclude: Option<Dockerignore>,
    /// ADD of URLs or a git repository: the directory the files were downloaded or
    /// checked out to (removed when dropped).
    pub(super) downloads: Option<tempfile::TempDir>,
}

impl Builder<'_> {
    /// The source root, the chosen sources and their content key for COPY/ADD; for
    /// `--from`, the mounted view of that stage or image (to be unmounted after the copy).
    pub(super) fn copy_sources(
        &self,
        instr: &Instruction,
        expanded: &Instruction,
        done: &BTreeMap<usize, State>,
    ) -> Result<CopyInput, Error> {
        let (spec, from) = match &expanded.command {
            Command::Copy(c) => (&c.spec, c.from.clone()),
            Command::Add(a) => (&a.spec, None),
            _ => unreachable!("only COPY and ADD have sources"),
        };
        let sources: Vec<String> = spec
            .sources
            .iter()
            .filter(|s| spec.json || !crate::ast::is_heredoc_word(s))
            .cloned()
            .collect();
        let is_url = |s: &String| s.starts_with("http://") || s.starts_with("https://");
        let mut downloads = None;
        if let Command::Add(add) = &expanded.command {
            if let Some(git) = sources.iter().find_map(|s| GitSource::parse(s)) {
                if sources.len() != 1 {
                    return Err(step_error(
                        instr,
                        "ADD of a git repository takes it as its only source: use one ADD for it",
                    ));
                }
                let checkout = git::fetch(
                    &git,
                    add.keep_git_dir,
                    add.checksum.as_deref(),
                    self.opts.ssh.get("default").map(PathBuf::as_path),
                    self.snapshots.build_dir(),
                )
                .map_err(|m| step_error(instr, m))?;
                return self.whole_directory(instr, checkout.root, checkout.dir);
            }
            if sources.iter().any(is_url) {
                if !sources.iter().all(is_url) {
                    return Err(step_error(instr, "ADD mixing URLs and local files is not supported yet: use one ADD for each"));
                }
                downloads = Some(
                    download(&sources, add.checksum.as_deref())
                        .map_err(|m| step_error(instr, m))?,
                );
            }
        }
        if let Some((dir, names)) = downloads {
            // Downloaded files are read from a directory of their own, with no
            // .dockerignore, and are not unpacked (Docker unpacks local archives only).
            let root = dir.path().to_path_buf();
            let sources: Vec<copy::Source> = names
                .iter()
                .map(|n| copy::Source {
                    path: PathBuf::from(n),
                })
                .collect();
            return self.fetched(instr, root, sources, dir);
        }
        let (root, view) = match &from {
            None => (self.opts.context.clone(), None),
            Some(name) => match self.context_dir(name) {
                Some(dir) => (dir.to_path_buf(), None),
                None => {
                    let at = self.view_of(instr, self.source_name(name), done)?;
                    (at.clone(), Some(at))
                }
            },
        };
        let ignore = if from.is_none() {
            Some(&self.opts.ignore)
        } else {
            None
        };
        let exclude = match spec.exclude.is_empty() {
            true => None,
            false => Some(
                Dockerignore::parse(&spec.exclude.join("\n"))
                    .map_err(|e| step_error(instr, e.to_string()))?,
            ),
        };
        let chosen = copy::select(&root, &sources, ignore).and_then(|s| {
            let key = copy::content_key(
                &root,
                &s,
                ignore,
                exclude.as_ref(),
                &mut self.hashes.lock().expect("hashes lock"),
            )?;
            Ok((s, key))
        });
        match chosen {
            Ok((sources, (key, files))) => Ok(CopyInput {
                root,
                sources,
                key,
                files,
                view,
                exclude,
                downloads: None,
            }),
            Err(e) => {
                if let Some(v) = &view {
                    self.exec.unview(v);
                }
                Err(step_error(instr, e.to_string()))
            }
        }
    }
}

impl Builder<'_> {
    /// Everything in `root` (a fetched repository's checkout, kept in `dir` until the
    /// copy is done) as COPY's sources, without `.dockerignore`.
    fn whole_directory(
        &self,
        instr: &Instruction,
        root: PathBuf,
        dir: tempfile::TempDir,
    ) -> Result<CopyInput, Error> {
        let sources = copy::select(&root, &[".".to_string()], None)
            .map_err(|e| step_error(instr, e.to_string()))?;
        self.fetched(instr, root, sources, dir)
    }

    /// `sources` under `root`, fetched into `dir` (kept until the copy is done), keyed
    /// by their content.
    fn fetched(
        &self,
        instr: &Instruction,
        root: PathBuf,
        sources: Vec<copy::Source>,
        dir: tempfile::TempDir,
    ) -> Result<CopyInput, Error> {
        let (key, files) = copy::content_key(
            &root,
            &sources,
            None,
            None,
            &mut self.hashes.lock().expect("hashes lock"),
        )
        .map_err(|e| step_error(instr, e.to_string()))?;
        Ok(CopyInput {
            root,
            sources,
            key,
            files,
            view: None,
            exclude: None,
            downloads: Some(dir),
        })
    }
}

/// COPY's destination, absolute: relative ones are under WORKDIR.
pub(super) fn copy_dest(expanded: &Instruction, config: &ImageConfig) -> String {
    let dest = match &expanded.command {
        Command::Copy(c) => c.spec.dest.clone(),
        Command::Add(a) => a.spec.dest.clone(),
        _ => String::new(),
    };
    if dest.starts_with('/') {
        dest
    } else {
        let cwd = config.str("WorkingDir").unwrap_or_else(|| "/".into());
        let joined = Path::new(&cwd).join(&dest).to_string_lossy().into_owned();
        if dest.ends_with('/') || dest == "." {
            format!("{}/", joined.trim_end_matches('/'))
        } else {
            joined
        }
    }
}

/// ADD's URLs, downloaded into a fresh directory (named after each URL's last path
/// segment, mode 600 as Docker makes them), checked against `--checksum` when given.
fn download(
    urls: &[String],
    checksum: Option<&str>,
) -> Result<(tempfile::TempDir, Vec<String>), String> {
    use sha2::Digest as _;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().map_err(|e| format!("a directory for downloads: {e}"))?;
    if checksum.is_some() && urls.len() != 1 {
        return Err("--checksum takes one URL".into());
    }
    let client = reqwest::blocking::Client::builder()
        .build()
        .map_err(|e| format!("an HTTP client: {e}"))?;
    let mut names = Vec::new();
    for url in urls {
        let name = url
            .split(['?', '#'])
            .next()
            .unwrap_or(url)
            .rsplit('/')
            .find(|p| !p.is_empty() && !p.contains(':'))
            .unwrap_or("download")
            .to_string();
        let mut response = client
            .get(url)
            .send()
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("downloading {url}: {}", kiln_image::client::error_chain(&e)))?;
        let path = dir.path().join(&name);
        let mut file =
            std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = std::io::Read::read(&mut response, &mut buf).map_err(|e| {
                format!("downloading {url}: {}", kiln_image::client::error_chain(&e))
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            std::io::Write::write_all(&mut file, &buf[..n])
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        let got = format!("sha256:{}", hex::encode(hasher.finalize()));
        if let Some(want) = checksum {
            if want != got {
                return Err(format!(
                    "{url}: checksum mismatch: --checksum says {want}, the download is {got}"
                ));
            }
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        // A fixed time, so the layer depends on the content only.
        let t = nix::sys::time::TimeSpec::new(0, 0);
        let _ = nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &path,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        );
        names.push(name);
    }
    Ok((dir, names))
}

/// The destination with the image's symlinks in it resolved, as Docker resolves them (in
/// the image's root: an absolute link target starts from the image's `/`, `..` stops at
/// it): `COPY f /app/` where `/app -> /srv` writes `/srv/f` and keeps the link. Without
/// this, the copied directory would hide the link (and on a usr-merged base, `/bin`).
/// A final component without `/` is a name and stays as it is.
pub(super) fn resolve_dest(layers: &[PathBuf], dest: &str) -> String {
    let trailing = dest.ends_with('/');
    let mut todo: Vec<String> = dest
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .map(str::to_string)
        .collect();
    let last = if trailing { None } else { todo.pop() };
    todo.reverse();
    let mut resolved: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let rel: PathBuf = resolved.iter().chain([&part]).collect();
        match lookup(layers, &rel) {
            Some(target) if hops < 40 => {
                hops += 1;
                if target.starts_with('/') {
                    resolved.clear();
                }
                todo.extend(
                    target
                        .split('/')
                        .filter(|p| !p.is_empty() && *p != ".")
                        .rev()
                        .map(str::to_string),
                );
            }
            _ => resolved.push(part),
        }
    }
    let mut out = format!("/{}", resolved.join("/"));
    match last {
        Some(name) => {
            if !out.ends_with('/') {
                out.push('/');
            }
            out.push_str(&name);
        }
        None if out != "/" => out.push('/'),
        None => {}
    }
    out
}

/// The symlink target at `rel` in the image (a path without symlinks among its
/// parents), or None when it is not a symlink or not there.
fn lookup(layers: &[PathBuf], rel: &Path) -> Option<String> {
    let (host, meta) = super::union::entry(layers, rel)?;
    meta.file_type()
        .is_symlink()
        .then(|| std::fs::read_link(&host).ok())
        .flatten()
        .map(|t| t.to_string_lossy().into_owned())
}

/// `--chown` and `--chmod`: owners by number or by name from the image's `/etc/passwd`
/// and `/etc/group`; a user without a group gets its uid as gid, as Docker does.
pub(super) fn copy_attrs(expanded: &Instruction, layers: &[PathBuf]) -> Result<Attrs, String> {
    let spec = match &expanded.command {
        Command::Copy(c) => &c.spec,
        Command::Add(a) => &a.spec,
        _ => unreachable!(),
    };
    let (uid, gid) = match &spec.chown {
        Some(c) => {
            let (u, g) = match c.split_once(':') {
                Some((u, g)) => (u, Some(g)),
                None => (c.as_str(), None),
            };
            let uid = id_of(layers, "etc/passwd", u)?.ok_or(format!(
                "--chown={c}: unable to find user {u} in the image's /etc/passwd"
            ))?;
            let gid = match g {
                Some(g) => id_of(layers, "etc/group", g)?.ok_or(format!(
                    "--chown={c}: unable to find group {g} in the image's /etc/group"
                ))?,
                None => uid,
            };
            (uid, gid)
        }
        None => (0, 0),
    };
    let chmod = spec
        .chmod
        .as_deref()
        .map(|m| {
            u32::from_str_radix(m, 8).map_err(|_| format!("--chmod={m}: an octal mode, like 0755"))
        })
        .transpose()?;
    Ok(Attrs { uid, gid, chmod })
}

/// COPY <<EOF /dest: each heredoc becomes a file (expanded already when it should be),
/// owned and moded as `--chown`/`--chmod` say (root and 0644 otherwise).
pub(super) fn write_heredocs(
    expanded: &Instruction,
    dest: &str,
    upper: &Path,
    attrs: Attrs,
) -> std::io::Result<()> {
    let sources = match &expanded.command {
        Command::Copy(c) => &c.spec.sources,
        Command::Add(a) => &a.spec.sources,
        _ => return Ok(()),
    };
    let docs: Vec<_> = expanded.heredocs.iter().collect();
    if docs.is_empty() {
        return Ok(());
    }
    let dest_is_dir = dest.ends_with('/') || sources.len() > 1;
    for doc in docs {
        let rel = dest.trim_start_matches('/');
        let path = if dest_is_dir {
            upper.join(rel).join(&doc.name)
        } else {
            upper.join(rel)
        };
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        // Never write through: the path may be a hard link into an earlier snapshot.
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, &doc.content)?;
        std::os::unix::fs::chown(&path, Some(attrs.uid), Some(attrs.gid))?;
        std::fs::set_permissions(
            &path,
            std::os::unix::fs::PermissionsExt::from_mode(attrs.chmod.unwrap_or(0o644)),
        )?;
    }
    Ok(())
}
