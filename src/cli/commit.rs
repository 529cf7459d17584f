//! `kiln commit [-c INSTRUCTION]... [-m MESSAGE] [-a AUTHOR] CONTAINER [REPOSITORY[:TAG]]`,
//! `kiln diff CONTAINER` and `kiln export [-o FILE] CONTAINER`: a container's changes as
//! a new image's layer or as a list, or its whole tree as one tar.

use std::process::ExitCode;

use anyhow::{bail, Context};
use kiln_image::layer::{overlay_changes, write_changes, Compression, LayerOptions};
use kiln_image::store::{Store, TrustedBlobWriter};
use kiln_runtime::containers::{Container, Containers, Status};
use oci_spec::image::{Descriptor, MediaType};
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct CommitArgs {
    /// A Dockerfile instruction for the new image's config (CMD, ENTRYPOINT, ENV, EXPOSE,
    /// LABEL, ONBUILD, USER, VOLUME, WORKDIR), as docker commit takes it (repeatable).
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    changes: Vec<String>,
    /// The history entry's comment.
    #[arg(short, long)]
    message: Option<String>,
    /// The image's author.
    #[arg(short, long)]
    author: Option<String>,
    /// Freeze a running container while its layer is read (docker's default).
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set)]
    pause: bool,
    container: String,
    reference: Option<String>,
}

/// A stopped container (its layer is still while it is read).
fn stopped(name: &str) -> anyhow::Result<Container> {
    let c = Containers::open(&Store::default_root())?.find(name)?;
    if matches!(c.state.status, Status::Running | Status::Restarting) {
        bail!(
            "{} is running: stop it first (kiln reads a container's layer while it is still)",
            c.config.name
        );
    }
    Ok(c)
}

/// A running container's processes frozen while this lives (docker commit's pause).
struct Frozen<'a>(Option<&'a Container>);

impl<'a> Frozen<'a> {
    fn new(c: &'a Container, pause: bool) -> anyhow::Result<Frozen<'a>> {
        // One paused by its user stays so, and is read as it is.
        if !pause || c.state.status != Status::Running || c.state.paused {
            return Ok(Frozen(None));
        }
        kiln_runtime::cgroups::freeze(std::path::Path::new(&c.cgroup_path()), true)
            .with_context(|| format!("pausing {} to read its layer", c.config.name))?;
        Ok(Frozen(Some(c)))
    }
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.0 {
            let _ = kiln_runtime::cgroups::freeze(std::path::Path::new(&c.cgroup_path()), false);
        }
    }
}

/// Whether `rel` (a path in the layer) is one of the sandbox's mount points with nothing
/// of the container's in it: an empty file, or a directory holding only such.
fn bare_stub(upper: &std::path::Path, rel: &std::path::Path, stubs: &[String]) -> bool {
    let absolute = std::path::Path::new("/").join(rel);
    if !stubs.iter().any(|s| std::path::Path::new(s) == absolute) {
        return false;
    }
    let path = upper.join(rel);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_file() => m.len() == 0,
        Ok(m) if m.is_dir() => std::fs::read_dir(&path).is_ok_and(|entries| {
            entries
                .flatten()
                .all(|e| bare_stub(upper, &rel.join(e.file_name()), stubs))
        }),
        _ => false,
    }
}

/// The container's changes as its layer holds them, without its sandbox's empty mount
/// points; a running container's read while it is frozen (`pause`).
fn changes(
    c: &Container,
    pause: bool,
) -> anyhow::Result<(Frozen<'_>, Vec<kiln_image::layer::Change>)> {
    let frozen = Frozen::new(c, pause)?;
    let upper = c.upper();
    let mut changes = overlay_changes(&upper)?;
    changes.retain(|change| match change {
        kiln_image::layer::Change::Upsert(rel) => !bare_stub(&upper, rel, &c.state.mount_stubs),
        _ => true,
    });
    Ok((frozen, changes))
}

#[derive(clap::Args)]
pub struct DiffArgs {
    container: String,
}

/// `kiln diff CONTAINER`: docker's `A`dded, `C`hanged and `D`eleted paths, in order.
pub fn diff(args: DiffArgs) -> anyhow::Result<ExitCode> {
    use kiln_image::layer::Change;
    let c = Containers::open(&Store::default_root())?.find(&args.container)?;
    let in_image = |rel: &std::path::Path| {
        c.config
            .lowers
            .iter()
            .any(|l| std::fs::symlink_metadata(l.join(rel)).is_ok())
    };
    let (_frozen, changes) = changes(&c, true)?;
    let mut lines: Vec<(std::path::PathBuf, char)> = changes
        .iter()
        .map(|change| match change {
            Change::Upsert(rel) if in_image(rel) => (rel.clone(), 'C'),
            Change::Upsert(rel) => (rel.clone(), 'A'),
            Change::Delete(rel) => (rel.clone(), 'D'),
            Change::Opaque(rel) => (rel.clone(), 'C'),
        })
        .collect();
    lines.sort();
    lines.dedup_by(|a, b| a.0 == b.0);
    let mut out = std::io::stdout().lock();
    for (rel, kind) in lines {
        std::io::Write::write_all(&mut out, format!("{kind} /{}\n", rel.display()).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn commit(args: CommitArgs) -> anyhow::Result<ExitCode> {
    let c = Containers::open(&Store::default_root())?.find(&args.container)?;
    if c.state.status == Status::Restarting {
        bail!(
            "{} is restarting: commit it once it runs or stops",
            c.config.name
        );
    }
    let store = super::store()?;
    let image = store
        .resolve(&c.config.image)
        .ok()
        .filter(|i| i.id().to_string() == c.config.image_id)
        .map(Ok)
        .unwrap_or_else(|| store.resolve(&c.config.image_id))
        .with_context(|| {
            format!(
                "the image of {} ({}) is no longer in the store",
                c.config.name, c.config.image
            )
        })?;
    // The container's layer, as builds write theirs: uncompressed, its digest its diffID;
    // a running one's read while it is frozen, without its sandbox's mount points.
    let upper = c.upper();
    let info = {
        let _frozen = Frozen::new(&c, args.pause)?;
        let mut changes = overlay_changes(&upper)?;
        changes.retain(|change| match change {
            kiln_image::layer::Change::Upsert(rel) => !bare_stub(&upper, rel, &c.state.mount_stubs),
            _ => true,
        });
        let (info, writer) = write_changes(
            &upper,
            &changes,
            LayerOptions {
                compression: Compression::None,
                source_date_epoch: super::source_date_epoch()?,
            },
            TrustedBlobWriter::new(&store)?,
        )?;
        writer.commit(&info.digest)?;
        info
    };

    let mut config: Value = serde_json::from_slice(&image.config_bytes)?;
    let cc = &c.config;
    let mut run_config = config.get("config").cloned().unwrap_or_else(|| json!({}));
    // The container's own settings, as docker commit keeps them.
    run_config["Env"] = json!(cc.env);
    run_config["Cmd"] = json!(cc.cmd);
    run_config["Entrypoint"] = if cc.entrypoint.is_empty() {
        Value::Null
    } else {
        json!(cc.entrypoint)
    };
    run_config["WorkingDir"] = json!(cc.working_dir);
    run_config["User"] = json!(cc.user);
    run_config["Labels"] = json!(cc.labels);
    config["config"] = kiln_builder::build::apply_changes(run_config, &args.changes)?;
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    config["created"] = json!(now);
    if let Some(a) = &args.author {
        config["author"] = json!(a);
    }
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .context("the image's config has no rootfs.diff_ids")?
        .push(json!(info.diff_id.to_string()));
    let mut entry = json!({"created": now, "created_by": cc.args.join(" ")});
    if let Some(m) = &args.message {
        entry["comment"] = json!(m);
    }
    if let Some(a) = &args.author {
        entry["author"] = json!(a);
    }
    match config["history"].as_array_mut() {
        Some(h) => h.push(entry),
        None => config["history"] = json!([entry]),
    }
    let config_bytes = serde_json::to_vec(&config)?;
    let config_digest = store.write_blob_bytes(&config_bytes)?;
    let mut layers = image.manifest.layers().clone();
    layers.push(Descriptor::new(
        MediaType::ImageLayer,
        info.size,
        info.digest,
    ));
    let desc = store.write_manifest(
        Descriptor::new(
            MediaType::ImageConfig,
            config_bytes.len() as u64,
            config_digest.clone(),
        ),
        layers,
    )?;
    match &args.reference {
        Some(r) => store.tag(&kiln_image::Reference::parse(r)?, &desc)?,
        None => store.keep_untagged(&desc)?,
    }
    println!("{config_digest}");
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The tar to write (default: standard output).
    #[arg(short, long)]
    output: Option<std::path::PathBuf>,
    container: String,
}

pub fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let c = stopped(&args.container)?;
    let mut lowers = vec![c.upper()];
    lowers.extend(c.config.lowers.iter().cloned());
    let out = args.output.unwrap_or_else(|| "-".into());
    kiln_runtime::volumes::export(&lowers, &out, &Store::default_root().join("tmp"))?;
    Ok(ExitCode::SUCCESS)
}
