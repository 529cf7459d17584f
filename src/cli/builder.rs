//! `kiln builder prune [-a] [--keep-storage SIZE]`

use std::process::ExitCode;

use super::output::{human_size, parse_size};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Remove the build cache: cached step results, unpacked layer snapshots, scratch
    /// directories and source hashes (`-a`: RUN --mount=type=cache contents too), then
    /// the layers no image needs. Waits for running builds.
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
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    let Command::Prune {
        all,
        keep_storage,
        force: _,
    } = command;
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
    let mut targets = vec!["buildcache", "snapshots", "tmp", "context-hashes.json"];
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
