//! `kiln build`'s [`Executor`]: RUN steps in `kiln-runtime`'s sandbox, stage views as
//! read-only overlays; the builder owns the seam, so it never depends on the runtime.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::bail;
use kiln_builder::ast::NetworkMode;
use kiln_builder::build::{Executor, RunMount, RunMountKind, RunStep};
use kiln_builder::Error;
use kiln_runtime::{Network, ProcessSpec, Rootfs, Snapshotter};

/// RUN steps in `kiln-runtime`'s sandbox; stage views as read-only overlays (or, with
/// the copying snapshotter, read-only trees of hard links).
pub(super) struct SandboxExecutor {
    pub(super) snapshotter: Snapshotter,
    pub(super) cancel: Arc<AtomicBool>,
    pub(super) network: crate::cli::network::BuildNetwork,
}

/// `KILN_SNAPSHOTTER=overlay|copy`, or overlayfs when it mounts on the store's filesystem.
pub(super) fn snapshotter(root: &Path) -> anyhow::Result<Snapshotter> {
    match std::env::var("KILN_SNAPSHOTTER").as_deref() {
        Ok("overlay") => Ok(Snapshotter::Overlay),
        Ok("copy") => Ok(Snapshotter::Copy),
        Ok(other) => bail!("KILN_SNAPSHOTTER={other}: use overlay or copy"),
        Err(_) if kiln_runtime::overlay_works(&root.join("tmp")) => Ok(Snapshotter::Overlay),
        Err(_) => {
            eprintln!(
                "kiln build: overlayfs does not mount under {}: RUN steps use copies of the layers (slower)",
                root.display()
            );
            Ok(Snapshotter::Copy)
        }
    }
}

impl Executor for SandboxExecutor {
    fn can_run(&self, platform: &kiln_image::Platform) -> Result<(), String> {
        kiln_runtime::binfmt::can_run(platform.machine())
    }

    fn run(&self, step: &RunStep, output: &mut dyn FnMut(&str)) -> Result<i32, Error> {
        let mut mounts: Vec<&RunMount> = step.mounts.iter().collect();
        // Parents before children: /run before /run/secrets/id.
        mounts.sort_by_key(|m| m.destination.components().count());
        let mounts = mounts
            .into_iter()
            .map(|m| match &m.kind {
                RunMountKind::Bind { source, readonly } => {
                    kiln_runtime::bind_mount(&m.destination, source, *readonly)
                }
                RunMountKind::Overlay { lower, upper, work } => kiln_runtime::overlay_mount(
                    &m.destination,
                    std::slice::from_ref(lower),
                    upper,
                    work,
                ),
                RunMountKind::Tmpfs { size } => kiln_runtime::tmpfs_mount(&m.destination, *size),
            })
            .collect();
        let mut lower = step.lowers.clone();
        // overlayfs needs a lower directory; FROM scratch has none.
        if lower.is_empty() {
            let empty = step.work.with_file_name("empty-lower");
            std::fs::create_dir_all(&empty).map_err(|e| Error::Io {
                op: "create directory",
                path: empty.clone(),
                source: e,
            })?;
            lower.push(empty);
        }
        let failed = |e: kiln_runtime::Error| Error::Step {
            step: step.argv.join(" "),
            message: e.to_string(),
        };
        let spec = kiln_runtime::default_spec(&ProcessSpec {
            args: step.argv.clone(),
            env: step.env.clone(),
            cwd: step.cwd.clone().into(),
            uid: step.uid,
            gid: step.gid,
            groups: step.groups.clone(),
            hostname: step.hostname.clone(),
            network: match step.network {
                NetworkMode::None => Network::Loopback,
                NetworkMode::Host => Network::Host,
                NetworkMode::Default => {
                    Network::Join(self.network.namespace().map_err(|e| Error::Step {
                        step: step.argv.join(" "),
                        message: format!("setting up the build's network: {}", crate::message(&e)),
                    })?)
                }
            },
            privileged: step.insecure,
            rlimits: step.ulimits.clone(),
            shm_size: step.shm_size,
            mounts,
            ..Default::default()
        })
        .map_err(failed)?;
        let rootfs = Rootfs {
            lower,
            upper: step.upper.clone(),
            work: step.work.clone(),
            merged: match self.snapshotter {
                Snapshotter::Overlay => step.merged.clone(),
                // The copy is the root: a directory of the step's own (builds never use a
                // made root).
                Snapshotter::Copy | Snapshotter::Made => step.work.with_file_name("merged"),
            },
            snapshotter: self.snapshotter,
        };
        let (reader, writer) = std::io::pipe().map_err(|e| Error::Io {
            op: "make a pipe for",
            path: step.upper.clone(),
            source: e,
        })?;
        let writer2 = writer.try_clone().map_err(|e| Error::Io {
            op: "make a pipe for",
            path: step.upper.clone(),
            source: e,
        })?;
        if self.cancel.load(Ordering::SeqCst) {
            return Err(Error::Interrupted);
        }
        let sandboxed = kiln_runtime::spawn(
            &spec,
            &rootfs,
            Stdio::null(),
            Stdio::from(writer),
            Stdio::from(writer2),
        )
        .map_err(failed)?;
        // The signal may have come between the check and the start: stop it too.
        if self.cancel.load(Ordering::SeqCst) {
            kiln_runtime::stop_all();
        }
        for line in BufReader::new(reader).lines() {
            match line {
                Ok(l) => output(&l),
                Err(_) => break,
            }
        }
        let status = sandboxed.wait().map_err(failed)?;
        Ok(status.code().unwrap_or(255))
    }

    fn view(&self, lowers: &[PathBuf], at: &Path) -> Result<(), Error> {
        kiln_runtime::views::mount_view(lowers, at, self.snapshotter == Snapshotter::Copy).map_err(
            |source| Error::Io {
                op: "mount",
                path: at.to_path_buf(),
                source,
            },
        )
    }

    fn unview(&self, at: &Path) {
        kiln_runtime::views::unmount_view(at);
    }
}
