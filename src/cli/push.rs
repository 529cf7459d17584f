//! `kiln push NAME[:TAG] [--compression gzip|zstd] [--progress auto|tty|plain]`

use std::process::ExitCode;

use anyhow::bail;
use kiln_image::client::{self, Registry};
use kiln_image::layer::Compression;
use kiln_image::Reference;

#[derive(clap::Args)]
pub struct Args {
    /// The image, named for its registry: `host:5000/team/app:1`.
    image: String,
    /// How layers travel: gzip (the default, what every client reads) or zstd.
    #[arg(long, default_value = "gzip")]
    compression: Compression,
    /// auto (bars on a terminal, else plain), tty (a bar per layer) or plain (a line per
    /// layer, for CI logs).
    #[arg(long, default_value = "auto", value_name = "auto|tty|plain")]
    progress: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.compression == Compression::None {
        bail!("--compression none: push compresses layers with gzip or zstd");
    }
    let progress = super::transfer::Transfer::new(&args.progress, "Pushing")?;
    let store = super::store()?;
    let reference = Reference::parse(&args.image)?;
    let image = store.resolve(&args.image)?;
    println!("The push refers to repository [{}]", reference.name());
    let registry = Registry::new(&reference.domain)?;
    let pushed = client::push(
        &registry,
        &store,
        &image,
        &reference,
        args.compression,
        &progress,
    )?;
    println!(
        "{}: digest: {} size: {}",
        reference.tag.as_deref().unwrap_or("latest"),
        pushed.digest,
        pushed.size
    );
    Ok(ExitCode::SUCCESS)
}
