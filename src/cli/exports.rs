//! `kiln build --output`: where a build's result goes besides the store, as BuildKit's
//! exporters name it: `type=local,dest=DIR` and `type=tar,dest=FILE|-` (the final
//! stage's files), `type=oci|docker,dest=FILE|-[,compression=…]` (the image as an
//! archive), `type=image|registry,name=N[,push=true]` (tags, and a push). A bare `DIR`
//! is `type=local`, a bare `-` `type=tar` to standard output, as buildx reads them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use kiln_builder::build::Built;
use kiln_image::layer::Compression;
use kiln_image::store::Store;
use kiln_image::Platform;

/// Where a file goes: a path, or standard output (`-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    File(PathBuf),
    Stdout,
}

impl Dest {
    fn parse(text: &str) -> Dest {
        if text == "-" {
            Dest::Stdout
        } else {
            Dest::File(PathBuf::from(text))
        }
    }

    fn open(&self) -> anyhow::Result<Box<dyn Write + Send>> {
        Ok(match self {
            Dest::Stdout => Box::new(std::io::stdout()),
            Dest::File(path) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            )),
        })
    }
}

impl std::fmt::Display for Dest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dest::Stdout => f.write_str("standard output"),
            Dest::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One `--output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The final stage's files in a directory (one per platform when there are several).
    Local(PathBuf),
    /// Those files as one tar.
    Tar(Dest),
    /// The image as one tar that is both an OCI layout and a docker-archive.
    Archive {
        dest: Dest,
        compression: Option<Compression>,
    },
    /// More names for the image, pushed with `push=true`.
    Image { names: Vec<String>, push: bool },
}

impl Output {
    pub fn parse(spec: &str) -> anyhow::Result<Output> {
        if !spec.contains('=') {
            return Ok(match spec {
                "-" => Output::Tar(Dest::Stdout),
                dir => Output::Local(PathBuf::from(dir)),
            });
        }
        let mut kind = None;
        let mut dest = None;
        let mut names = Vec::new();
        let mut push = false;
        let mut compression = None;
        for part in spec.split(',') {
            let Some((key, value)) = part.split_once('=') else {
                bail!("--output {spec}: {part:?} is not KEY=VALUE");
            };
            match key {
                "type" => kind = Some(value.to_string()),
                "dest" => dest = Some(value.to_string()),
                "name" => names.extend(value.split(';').map(str::to_string)),
                "push" => push = value.parse().context("push: true or false")?,
                "compression" => {
                    compression = Some(
                        value
                            .parse()
                            .map_err(|e| anyhow::anyhow!("--output {spec}: {e}"))?,
                    )
                }
                // BuildKit's options that change nothing here.
                "oci-mediatypes" | "compression-level" | "force-compression" | "tar" => {}
                other => bail!(
                    "--output {spec}: unknown key {other:?} (known: type, dest, name, push, compression)"
                ),
            }
        }
        let need_dest = |what: &str| {
            dest.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "--output {spec}: {what} needs dest=… (a path, or - for standard output)"
                )
            })
        };
        Ok(match kind.as_deref() {
            Some("local") => match need_dest("type=local")?.as_str() {
                "-" => bail!("--output {spec}: type=local writes a directory: give dest=DIR"),
                dir => Output::Local(PathBuf::from(dir)),
            },
            Some("tar") => Output::Tar(Dest::parse(&need_dest("type=tar")?)),
            Some("oci" | "docker") => Output::Archive {
                dest: Dest::parse(&need_dest("type=oci and type=docker")?),
                compression,
            },
            Some("image") => Output::Image { names, push },
            Some("registry") => Output::Image { names, push: true },
            Some(other) => bail!(
                "--output {spec}: type {other:?} is not one kiln writes (local, tar, oci, docker, image, registry)"
            ),
            None => bail!("--output {spec}: name the exporter with type=local|tar|oci|docker|image|registry"),
        })
    }

    /// Whether it writes to standard output.
    pub fn to_stdout(&self) -> bool {
        matches!(
            self,
            Output::Tar(Dest::Stdout)
                | Output::Archive {
                    dest: Dest::Stdout,
                    ..
                }
        )
    }

    /// Writes what `built` made where this output says (`Image` is the caller's: its
    /// names and push are a build's tags and `--push`). Says what it wrote through `tell`.
    pub fn write(
        &self,
        store: &Store,
        built: &Built,
        compression: Compression,
        tell: &dyn Fn(String),
    ) -> anyhow::Result<()> {
        match self {
            Output::Local(dir) => {
                unpack_platforms(store, built, dir)?;
                tell(format!("copying files to {} done", dir.display()));
            }
            Output::Tar(dest) => {
                // Unpacked beside the store (on its file system), then written as one tar.
                let scratch = tempfile::tempdir_in(Store::default_root().join("tmp"))
                    .or_else(|_| tempfile::tempdir())
                    .context("a directory to unpack the image in")?;
                unpack_platforms(store, built, scratch.path())?;
                let options = kiln_image::layer::LayerOptions {
                    compression: Compression::None,
                    source_date_epoch: super::source_date_epoch()?,
                };
                let (_, mut out) =
                    kiln_image::layer::write_dir(scratch.path(), options, dest.open()?)?;
                out.flush()?;
                tell(format!("sending tarball to {dest} done"));
            }
            Output::Archive {
                dest,
                compression: chosen,
            } => {
                let image = store.resolve(built.manifest.as_ref())?;
                let mut out = kiln_image::archive::save(
                    store,
                    &[(image, built.tags.clone())],
                    chosen.unwrap_or(compression),
                    dest.open()?,
                )?;
                out.flush()?;
                tell(format!("exporting to {dest} done"));
            }
            Output::Image { .. } => {}
        }
        Ok(())
    }
}

/// Each platform's files in `dir`, or in `dir/OS_ARCH[_VARIANT]` when there are several
/// (BuildKit's layout).
fn unpack_platforms(store: &Store, built: &Built, dir: &Path) -> anyhow::Result<()> {
    let several = built.platforms.len() > 1;
    for (platform, _) in &built.platforms {
        let target = if several {
            dir.join(platform_dir(platform))
        } else {
            dir.to_path_buf()
        };
        std::fs::create_dir_all(&target)
            .with_context(|| format!("creating {}", target.display()))?;
        let image = store.resolve_for(built.manifest.as_ref(), platform)?;
        for layer in image.manifest.layers() {
            kiln_image::layer::apply(store.open_blob(layer.digest())?, &target)?;
        }
    }
    Ok(())
}

/// `linux_arm64`, `linux_arm_v7`.
fn platform_dir(p: &Platform) -> String {
    p.to_string().replace('/', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_read_as_buildx_reads_them() {
        assert_eq!(
            Output::parse("out").unwrap(),
            Output::Local(PathBuf::from("out"))
        );
        assert_eq!(Output::parse("-").unwrap(), Output::Tar(Dest::Stdout));
        assert_eq!(
            Output::parse("type=local,dest=out").unwrap(),
            Output::Local(PathBuf::from("out"))
        );
        assert_eq!(
            Output::parse("type=oci,dest=a.tar,compression=zstd").unwrap(),
            Output::Archive {
                dest: Dest::File("a.tar".into()),
                compression: Some(Compression::Zstd)
            }
        );
        assert_eq!(
            Output::parse("type=registry,name=r/a:1;r/a:latest").unwrap(),
            Output::Image {
                names: vec!["r/a:1".into(), "r/a:latest".into()],
                push: true
            }
        );
        for (spec, says) in [
            ("type=local", "needs dest"),
            ("type=local,dest=-", "writes a directory"),
            ("type=cacheonly", "not one kiln writes"),
            ("type=tar,dest=x,colour=red", "unknown key"),
        ] {
            let e = Output::parse(spec).unwrap_err().to_string();
            assert!(e.contains(says), "{spec}: {e}");
        }
    }
}
