//! `kiln images [REPOSITORY[:TAG]] [-q] [--digests] [--no-trunc] [--tree] [--filter dangling=BOOL] [--format json]`

use std::process::ExitCode;

use anyhow::{bail, Context};
use kiln_image::store::Store;

use super::output::{human_size, parse_time, short_id, since, table};

#[derive(clap::Args)]
pub struct Args {
    /// Only images of this repository (and tag).
    reference: Option<String>,
    /// Only image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Show the manifest digest.
    #[arg(long)]
    digests: bool,
    /// Do not shorten IDs.
    #[arg(long)]
    no_trunc: bool,
    /// `dangling=true` for untagged images only, `dangling=false` for tagged ones.
    #[arg(short, long, value_name = "FILTER")]
    filter: Vec<String>,
    /// `table` (default) or `json` (one object per line, as docker's `--format json`,
    /// with the image's `Platforms`).
    #[arg(long, default_value = "table")]
    format: String,
    /// Each image with its platforms under it, as `docker image ls --tree` shows them
    /// (a platform the store lacks — pulled for another — is marked).
    #[arg(long)]
    tree: bool,
}

/// One row: an image under one name.
pub struct Row {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    pub id: String,
    pub created: Option<std::time::SystemTime>,
    pub created_at: String,
    pub size: u64,
    /// Each platform of the image, and whether the store has it.
    pub platforms: Vec<(kiln_image::Platform, bool)>,
}

pub fn rows(store: &Store) -> anyhow::Result<Vec<Row>> {
    let records = store.records()?;
    let mut rows = Vec::new();
    for rec in &records {
        let image = store
            .read_image(&rec.descriptor, &records)
            .with_context(|| format!("reading image {}", rec.descriptor.digest()))?;
        let created_at = image.config.created().clone().unwrap_or_default();
        let size = image
            .manifest
            .layers()
            .iter()
            .map(|l| l.size())
            .sum::<u64>();
        let (repository, tag) = match &rec.reference {
            Some(r) => (
                r.familiar_name(),
                r.tag.clone().unwrap_or_else(|| "<none>".into()),
            ),
            None => ("<none>".into(), "<none>".into()),
        };
        rows.push(Row {
            repository,
            tag,
            digest: rec.descriptor.digest().to_string(),
            id: image.id().to_string(),
            created: parse_time(Some(&created_at)),
            created_at,
            size,
            platforms: store.platforms(&rec.descriptor)?,
        });
    }
    rows.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then(a.repository.cmp(&b.repository))
            .then(a.tag.cmp(&b.tag))
    });
    Ok(rows)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = super::store()?;
    let mut dangling = None;
    for f in &args.filter {
        match f.split_once('=') {
            Some(("dangling", v)) => {
                dangling = Some(
                    v.parse::<bool>()
                        .with_context(|| format!("--filter {f}: dangling takes true or false"))?,
                )
            }
            _ => bail!("unsupported filter {f:?}: kiln images supports dangling=true|false"),
        }
    }
    let wanted = args
        .reference
        .as_deref()
        .map(kiln_image::Reference::parse)
        .transpose()?;
    let mut rows = rows(&store)?;
    rows.retain(|r| {
        let is_dangling = r.repository == "<none>";
        dangling.is_none_or(|d| d == is_dangling)
            && wanted.as_ref().is_none_or(|w| {
                w.familiar_name() == r.repository
                    && (args.reference.as_deref().is_some_and(|s| !s.contains(':'))
                        || w.tag.as_deref() == Some(r.tag.as_str()))
            })
    });
    let id = |r: &Row| {
        if args.no_trunc {
            r.id.clone()
        } else {
            short_id(&r.id)
        }
    };
    let mut out = String::new();
    if args.quiet {
        for r in &rows {
            out.push_str(&id(r));
            out.push('\n');
        }
    } else if args.tree {
        let header = ["IMAGE", "ID", "SIZE", "EXTRA"];
        let mut cells: Vec<Vec<String>> = Vec::new();
        for r in &rows {
            let name = match r.repository.as_str() {
                "<none>" => id(r),
                repo => format!("{repo}:{}", r.tag),
            };
            cells.push(vec![name, id(r), human_size(r.size), String::new()]);
            for (i, (platform, present)) in r.platforms.iter().enumerate() {
                let branch = if i + 1 == r.platforms.len() {
                    "└─"
                } else {
                    "├─"
                };
                let extra = if *present { "" } else { "not in the store" };
                cells.push(vec![
                    format!("{branch} {platform}"),
                    String::new(),
                    String::new(),
                    extra.to_string(),
                ]);
            }
        }
        out = table(&header, &cells);
    } else if args.format == "json" {
        for r in &rows {
            let platforms: Vec<String> = r.platforms.iter().map(|(p, _)| p.to_string()).collect();
            let v = serde_json::json!({
                "ID": id(r), "Repository": r.repository, "Tag": r.tag, "Digest": r.digest,
                "CreatedAt": r.created_at, "CreatedSince": since(r.created), "Size": human_size(r.size),
                "Platforms": platforms,
            });
            out.push_str(&v.to_string());
            out.push('\n');
        }
    } else if args.format == "table" {
        let mut header = vec!["REPOSITORY", "TAG"];
        if args.digests {
            header.push("DIGEST");
        }
        header.extend(["IMAGE ID", "CREATED", "SIZE"]);
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let mut row = vec![r.repository.clone(), r.tag.clone()];
                if args.digests {
                    row.push(r.digest.clone());
                }
                row.extend([id(r), since(r.created), human_size(r.size)]);
                row
            })
            .collect();
        out = table(&header, &cells);
    } else {
        bail!("unsupported --format {:?}: use table or json", args.format);
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
