//! `kiln import [-c INSTRUCTION]... [-m MESSAGE] [--platform OS/ARCH] FILE|- [REPOSITORY[:TAG]]`

use std::process::ExitCode;

use anyhow::Context;
use kiln_image::archive::ImportOptions;

#[derive(clap::Args)]
pub struct Args {
    /// A root filesystem tarball (plain, .gz or .zst), or `-` for standard input.
    file: String,
    /// The name to give the image.
    reference: Option<String>,
    /// A Dockerfile instruction for the image's config (CMD, ENTRYPOINT, ENV, EXPOSE,
    /// LABEL, ONBUILD, USER, VOLUME, WORKDIR), as docker import takes it (repeatable).
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    changes: Vec<String>,
    /// The history entry's comment.
    #[arg(short, long)]
    message: Option<String>,
    /// The image's platform (default: this host's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = super::store()?;
    let reference = args
        .reference
        .as_deref()
        .map(kiln_image::Reference::parse)
        .transpose()?;
    let config = kiln_builder::build::apply_changes(serde_json::json!({}), &args.changes)?;
    let opts = ImportOptions {
        source: args.file.clone(),
        created: super::source_date_epoch()?,
        config,
        message: args.message.clone(),
        platform: args.platform.clone(),
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
