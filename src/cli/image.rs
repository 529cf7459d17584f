//! `kiln image inspect|prune|ls`

use std::process::ExitCode;

use anyhow::Context;
use kiln_image::store::Store;
use serde_json::{json, Map, Value};

use super::output::human_size;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Show images as JSON (as `docker image inspect`).
    Inspect {
        /// Print each image's SLSA provenance statements instead, by platform (from
        /// `kiln build --provenance`).
        #[arg(long)]
        provenance: bool,
        images: Vec<String>,
    },
    /// Remove untagged images (`-a`: every image) and the blobs nothing needs any more.
    Prune {
        #[arg(short, long)]
        all: bool,
        /// Accepted for docker compatibility; kiln never asks.
        #[arg(short, long)]
        force: bool,
    },
    /// List images (as `kiln images`).
    #[command(alias = "list")]
    Ls(super::images::Args),
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Inspect {
            provenance: true,
            images,
        } => provenance(&images),
        Command::Inspect { images, .. } => inspect(&images),
        Command::Prune { all, force: _ } => prune(all),
        Command::Ls(args) => super::images::run(args),
    }
}

fn inspect(names: &[String]) -> anyhow::Result<ExitCode> {
    let store = super::store()?;
    let mut out = Vec::new();
    let mut failed = false;
    for name in names {
        match store.resolve(name) {
            Ok(image) => {
                let config: Map<String, Value> =
                    serde_json::from_slice(&image.config_bytes).context("image config")?;
                let get = |k: &str| config.get(k).cloned().unwrap_or(Value::Null);
                let rootfs = config.get("rootfs").cloned().unwrap_or_default();
                // One digest per repository, however many of its tags name the image.
                let mut repo_digests: Vec<String> = image
                    .tags
                    .iter()
                    .map(|t| format!("{}@{}", t.familiar_name(), image.top.digest()))
                    .collect();
                repo_digests.sort();
                repo_digests.dedup();
                let mut entry = json!({
                    "Id": image.id().to_string(),
                    "RepoTags": image.tags.iter().filter(|t| t.tag.is_some()).map(|t| t.familiar()).collect::<Vec<_>>(),
                    "RepoDigests": repo_digests,
                    "Created": get("created"),
                    "Author": get("author"),
                    "Architecture": get("architecture"),
                    "Variant": get("variant"),
                    "Os": get("os"),
                    "Config": get("config"),
                    "RootFS": { "Type": rootfs.get("type").cloned().unwrap_or_default(), "Layers": rootfs.get("diff_ids").cloned().unwrap_or_default() },
                    "Size": image.manifest.layers().iter().map(|l| l.size()).sum::<u64>(),
                    "Descriptor": { "mediaType": image.top.media_type().to_string(), "digest": image.top.digest().to_string(), "size": image.top.size() },
                });
                // Fields the image does not have are left out, as docker leaves them.
                if let Some(map) = entry.as_object_mut() {
                    map.retain(|_, v| !v.is_null());
                }
                out.push(entry);
            }
            Err(e) => {
                eprintln!("kiln: {e}");
                failed = true;
            }
        }
    }
    super::print_inspected(&out, failed)
}

/// `inspect --provenance`: each image's statements, by the platform they are about.
fn provenance(names: &[String]) -> anyhow::Result<ExitCode> {
    use kiln_image::attestation;
    let store = super::store()?;
    let mut out = Vec::new();
    for name in names {
        let image = store.resolve(name)?;
        let mut by_platform = Map::new();
        if kiln_image::media::is_index(image.top.media_type().as_ref()) {
            let index: oci_spec::image::ImageIndex =
                serde_json::from_slice(&store.read_blob(image.top.digest())?)
                    .context("image index")?;
            for entry in index.manifests() {
                if !attestation::is_attestation(entry) || !store.has_blob(entry.digest()) {
                    continue;
                }
                let about = attestation::subject_of(entry);
                let platform = index
                    .manifests()
                    .iter()
                    .find(|m| Some(m.digest()) == about.as_ref())
                    .and_then(kiln_image::Platform::of_descriptor)
                    .map_or_else(|| entry.digest().to_string(), |p| p.to_string());
                for statement in attestation::statements(&store, entry)? {
                    by_platform.insert(platform.clone(), statement);
                }
            }
        }
        if by_platform.is_empty() {
            anyhow::bail!(
                "{name} has no provenance attestation: build it with --provenance=mode=min"
            );
        }
        out.push(Value::Object(by_platform));
    }
    let out = match out.as_slice() {
        [one] => one.clone(),
        _ => Value::Array(out),
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

fn prune(all: bool) -> anyhow::Result<ExitCode> {
    let store = super::store()?;
    let removed = store.remove_records(|r| all || r.reference.is_none())?;
    let report =
        store.gc_after(|| super::trim_cache(&store, &Store::default_root(), u64::MAX, &mut 0))?;
    if !removed.is_empty() || !report.removed_blobs.is_empty() {
        println!("Deleted Images:");
        for r in &removed {
            match &r.reference {
                Some(reference) => println!("untagged: {}", reference.familiar()),
                None => println!("deleted: {}", r.descriptor.digest()),
            }
        }
        for blob in &report.removed_blobs {
            println!("deleted: {blob}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(report.freed_bytes));
    Ok(ExitCode::SUCCESS)
}
