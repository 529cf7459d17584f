//! `kiln load [-i FILE] [-q]`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// Read from this file instead of standard input.
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Print nothing.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = super::store()?;
    let loaded = match &args.input {
        Some(path) => {
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            kiln_image::archive::load(&store, file)
                .with_context(|| format!("loading {}", path.display()))?
        }
        None => kiln_image::archive::load(&store, std::io::stdin().lock())
            .context("loading from standard input")?,
    };
    if !args.quiet {
        for tag in &loaded.tags {
            println!("Loaded image: {}", tag.familiar());
        }
        for id in &loaded.untagged {
            println!("Loaded image ID: {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
