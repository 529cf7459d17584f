//! `kiln import FILE|- [REPOSITORY[:TAG]]`

use std::process::ExitCode;

use anyhow::Context;
use kiln_image::archive::ImportOptions;

#[derive(clap::Args)]
pub struct Args {
    /// A root filesystem tarball (plain, .gz or .zst), or `-` for standard input.
    file: String,
    /// The name to give the image.
    reference: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = super::store()?;
    let reference = args
        .reference
        .as_deref()
        .map(kiln_image::Reference::parse)
        .transpose()?;
    let opts = ImportOptions {
        source: args.file.clone(),
        created: None,
    };
    let image = if args.file == "-" {
        kiln_image::archive::import(&store, std::io::stdin().lock(), reference.as_ref(), &opts)
    } else {
        let file =
            std::fs::File::open(&args.file).with_context(|| format!("opening {}", args.file))?;
        kiln_image::archive::import(&store, file, reference.as_ref(), &opts)
    }
    .with_context(|| format!("importing {}", args.file))?;
    println!("{}", image.id());
    Ok(ExitCode::SUCCESS)
}
