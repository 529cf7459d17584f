//! `kiln builder prune [-a] [--keep-storage SIZE]`, `kiln builder binfmt [--install]`

use std::process::ExitCode;

use super::output::{human_size, parse_size};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Remove the build cache: cached step results, unpacked layer snapshots and outlines,
    /// scratch directories and source hashes (`-a`: RUN --mount=type=cache contents too),
    /// then the layers no image needs. Waits for running builds.
    Prune {
        #[arg(short, long)]
        all: bool,
        /// Keep the most recently used cache entries up to this size (e.g. `5GB`): the
        /// others go, least recently used first. Cache mounts stay.
        #[arg(
            long,
            alias = "max-used-space",
            value_name = "SIZE",
            conflicts_with = "all"
        )]
        keep_storage: Option<String>,
        /// Accepted for docker compatibility; kiln never asks.
        #[arg(short, long)]
        force: bool,
    },
    /// The platforms RUN steps can run on here: this machine's, and those whose QEMU
    /// emulator (Debian's qemu-user-static) is registered with binfmt_misc.
    Binfmt {
        /// Register the emulators qemu-user-static installed that are not yet usable
        /// (with the F flag, so they run inside a build's root); needs root.
        #[arg(long)]
        install: bool,
    },
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    let (all, keep_storage) = match command {
        Command::Prune {
            all,
            keep_storage,
            force: _,
        } => (all, keep_storage),
        Command::Binfmt { install } => return binfmt(install),
    };
    let store = super::store()?;
    let root = kiln_image::store::Store::default_root();
    let mut freed = 0u64;
    if let Some(size) = keep_storage {
        let keep = parse_size(&size)?;
        let report = store.gc_after(|| super::trim_cache(&store, &root, keep, &mut freed))?;
        println!(
            "Total reclaimed space: {}",
            human_size(freed + report.freed_bytes)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut targets = vec![
        "buildcache",
        "snapshots",
        "outlines",
        "tmp",
        "context-hashes.json",
    ];
    if all {
        targets.push("cachemounts");
    }
    let report = store.gc_after(|| {
        for t in &targets {
            let path = root.join(t);
            freed += kiln_builder::build::disk_usage(&path);
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(kiln_image::Error::Io {
                        op: "remove",
                        path,
                        source: e,
                    })
                }
            }
        }
        Ok(Default::default())
    })?;
    println!(
        "Total reclaimed space: {}",
        human_size(freed + report.freed_bytes)
    );
    Ok(ExitCode::SUCCESS)
}

/// `kiln builder binfmt [--install]`: what `--platform` can build with RUN steps.
fn binfmt(install: bool) -> anyhow::Result<ExitCode> {
    use kiln_runtime::binfmt::{self, State};
    if install {
        for name in binfmt::install()? {
            println!("registered {name}");
        }
    }
    let host = kiln_image::Platform::host();
    println!("{host}\tnative");
    let emulators = binfmt::emulators()?;
    for e in &emulators {
        let Some(platform) = kiln_image::Platform::of_machine(&e.machine) else {
            continue;
        };
        if platform == host {
            continue;
        }
        let state = match e.state {
            State::Registered => "emulated",
            State::Unusable => "registered without the F flag: run kiln builder binfmt --install",
            State::Absent => "not registered: run kiln builder binfmt --install",
        };
        println!("{platform}\t{state} ({})", e.name);
    }
    if emulators.is_empty() {
        println!("no emulators: install Debian's qemu-user-static to build for other platforms");
    }
    Ok(ExitCode::SUCCESS)
}
