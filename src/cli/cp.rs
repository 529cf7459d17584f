//! `kiln cp CONTAINER:SRC DEST` and `kiln cp SRC CONTAINER:DEST`: files between a
//! container (running or not) and the host, as `docker cp` copies them. Every path in the
//! container is resolved inside its root — a symlink of the container never leads the copy
//! to the host's files, either way.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use kiln_image::store::Store;
use kiln_runtime::containers::{Container, Containers, Status};
use kiln_runtime::volumes;

#[derive(clap::Args)]
pub struct Args {
    /// CONTAINER:PATH or a host path (`-` is not taken yet).
    src: String,
    /// CONTAINER:PATH or a host path.
    dest: String,
}

/// `NAME:PATH` as a container and its path; a host path otherwise (write `./a:b` for a
/// host file with a colon, as with docker).
fn container_side(
    containers: &Containers,
    spec: &str,
) -> anyhow::Result<Option<(Container, PathBuf)>> {
    if spec.starts_with('/') || spec.starts_with('.') {
        return Ok(None);
    }
    match spec.split_once(':') {
        Some((name, path)) => {
            let c = containers.find(name)?;
            let path = if path.starts_with('/') {
                PathBuf::from(path)
            } else {
                Path::new(&c.config.working_dir).join(path)
            };
            Ok(Some((c, path)))
        }
        None => Ok(None),
    }
}

/// Runs `f` on the container's root: a running container's through its PID 1, a stopped
/// one's as an overlay of its layers (writable into its own layer when `write`).
fn with_root<T: Send + 'static>(
    c: &Container,
    write: bool,
    f: impl FnOnce(&Path) -> Result<T, kiln_runtime::Error> + Send + 'static,
) -> anyhow::Result<T> {
    if matches!(c.state.status, Status::Running) && c.state.pid != 0 {
        return Ok(f(Path::new(&format!("/proc/{}/root", c.state.pid)))?);
    }
    let scratch = Store::default_root().join("tmp");
    std::fs::create_dir_all(&scratch)?;
    if write {
        Ok(volumes::with_writable_view(
            &c.config.lowers,
            &c.upper(),
            &c.work(),
            &scratch,
            f,
        )?)
    } else {
        let mut lowers = vec![c.upper()];
        lowers.extend(c.config.lowers.iter().cloned());
        Ok(volumes::with_view(&lowers, &scratch, f)?)
    }
}

fn base_name(path: &Path) -> std::ffi::OsString {
    path.file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| ".".into())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let containers = Containers::open(&Store::default_root())?;
    match (
        container_side(&containers, &args.src)?,
        container_side(&containers, &args.dest)?,
    ) {
        (Some((c, src)), None) => copy_out(&c, src, PathBuf::from(&args.dest))?,
        (None, Some((c, dest))) => {
            copy_in(PathBuf::from(&args.src), &c, dest, args.dest.ends_with('/'))?
        }
        (Some(_), Some(_)) => {
            bail!("copying between containers is not supported: copy through the host")
        }
        (None, None) => bail!("one of SRC and DEST must be CONTAINER:PATH"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The container's `src` to the host's `dest` (into it, when it is a directory).
fn copy_out(c: &Container, src: PathBuf, dest: PathBuf) -> anyhow::Result<()> {
    let target = if dest.is_dir() {
        dest.join(base_name(&src))
    } else {
        dest
    };
    let shown = src.clone();
    with_root(c, false, move |root| {
        let found = volumes::open_in_root(root, &src)?;
        let status = std::process::Command::new("cp")
            .arg("-a")
            // The descriptor's /proc name is a link: followed (it alone, -H), so cp reads
            // what it was opened on.
            .arg("-H")
            .arg("-T")
            .arg(format!(
                "/proc/{}/fd/{}",
                std::process::id(),
                found.as_raw_fd()
            ))
            .arg(&target)
            .status()
            .map_err(|e| kiln_runtime::Error::Io {
                op: "run cp for",
                path: target.clone(),
                source: e,
            })?;
        if !status.success() {
            return Err(kiln_runtime::Error::Io {
                op: "copy to",
                path: target,
                source: std::io::Error::other(format!("cp exited with {status}")),
            });
        }
        Ok(())
    })
    .with_context(|| format!("copying {}:{}", c.config.name, shown.display()))
}

/// The host's `src` into the container at `dest` (into it, when it is a directory or
/// ends with `/`), written as a layer is applied: inside the root, never through a
/// symlink that leads out of it.
fn copy_in(src: PathBuf, c: &Container, dest: PathBuf, into: bool) -> anyhow::Result<()> {
    let meta = std::fs::symlink_metadata(&src).with_context(|| format!("{}", src.display()))?;
    // The archive is made now, on the host; where it lands is decided inside the root.
    let archive = tempfile::tempfile()?;
    let name = base_name(&src);
    {
        let mut builder = tar::Builder::new(&archive);
        builder.follow_symlinks(false);
        if meta.is_dir() {
            builder.append_dir_all(&name, &src)?;
        } else {
            builder.append_path_with_name(&src, &name)?;
        }
        builder.finish()?;
    }
    let shown = dest.clone();
    with_root(c, true, move |root| {
        let existing_dir = volumes::open_in_root(root, &dest).ok().is_some_and(|fd| {
            nix::sys::stat::fstat(&fd)
                .is_ok_and(|st| st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR)
        });
        // Where the entries go, as a path in the root: DEST/NAME into a directory, else
        // DEST itself (the archive's top entry renamed).
        let (parent, top) = if into || existing_dir {
            (dest.clone(), name.clone())
        } else {
            (
                dest.parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| "/".into()),
                base_name(&dest),
            )
        };
        let rel = parent.strip_prefix("/").unwrap_or(&parent).join(&top);
        let mut renamed = tempfile::tempfile().map_err(|e| kiln_runtime::Error::Io {
            op: "make a temporary file for",
            path: dest.clone(),
            source: e,
        })?;
        rename_top(&archive, &name, &rel, &mut renamed).map_err(|e| kiln_runtime::Error::Io {
            op: "read the archive for",
            path: dest.clone(),
            source: e,
        })?;
        std::io::Seek::rewind(&mut renamed).map_err(|e| kiln_runtime::Error::Io {
            op: "read",
            path: dest.clone(),
            source: e,
        })?;
        kiln_image::layer::apply(renamed, root).map_err(|e| kiln_runtime::Error::Io {
            op: "copy into",
            path: dest.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(())
    })
    .with_context(|| format!("copying into {}:{}", c.config.name, shown.display()))
}

/// Copies the tar `from` to `to`, its top entry `top` (and what is under it) renamed
/// `rel`.
fn rename_top(
    from: &std::fs::File,
    top: &std::ffi::OsStr,
    rel: &Path,
    to: &mut std::fs::File,
) -> std::io::Result<()> {
    let mut from = from.try_clone()?;
    std::io::Seek::rewind(&mut from)?;
    let mut archive = tar::Archive::new(from);
    let mut out = tar::Builder::new(to);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let under = path.strip_prefix(top).unwrap_or(&path);
        let new_path = if under.as_os_str().is_empty() {
            rel.to_path_buf()
        } else {
            rel.join(under)
        };
        let mut header = entry.header().clone();
        match entry.header().entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry.link_name()?.unwrap_or_default().into_owned();
                out.append_link(&mut header, &new_path, target)?;
            }
            _ => out.append_data(&mut header, &new_path, &mut entry)?,
        }
    }
    out.finish()
}
