//! `kiln push NAME[:TAG] [--compression gzip|zstd]`

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
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.compression == Compression::None {
        bail!("--compression none: push compresses layers with gzip or zstd");
    }
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
        &|line| println!("{line}"),
    )?;
    println!(
        "{}: digest: {} size: {}",
        reference.tag.as_deref().unwrap_or("latest"),
        pushed.digest,
        pushed.size
    );
    Ok(ExitCode::SUCCESS)
}
