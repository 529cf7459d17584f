//! `kiln pull NAME[:TAG|@DIGEST] [--platform OS/ARCH[/VARIANT]] [--progress auto|tty|plain]`

use std::process::ExitCode;

use kiln_image::client;
use kiln_image::Reference;

#[derive(clap::Args)]
pub struct Args {
    /// The image: `alpine`, `host:5000/team/app:1`, `name@sha256:...`.
    image: String,
    /// The platform to pull from a multi-platform image (default: this host's).
    #[arg(long)]
    platform: Option<String>,
    /// auto (bars on a terminal, else plain), tty (a bar per layer) or plain (a line per
    /// layer, for CI logs).
    #[arg(long, default_value = "auto", value_name = "auto|tty|plain")]
    progress: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let progress = super::transfer::Transfer::new(&args.progress, "Downloading")?;
    let store = super::store()?;
    let reference = Reference::parse(&args.image)?;
    let platform = args
        .platform
        .unwrap_or_else(kiln_image::store::images::host_platform);
    println!(
        "{}: Pulling from {}",
        reference.tag.as_deref().unwrap_or("latest"),
        reference.familiar_name()
    );
    let pulled = client::pull_image(&store, &reference, &platform, &progress)?;
    println!("Digest: {}", pulled.digest);
    if pulled.downloaded == 0 {
        println!("Status: Image is up to date for {}", reference.familiar());
    } else {
        println!(
            "Status: Downloaded newer image for {}",
            reference.familiar()
        );
    }
    println!("{reference}");
    Ok(ExitCode::SUCCESS)
}
