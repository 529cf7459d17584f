//! `kiln tag SOURCE TARGET`

use std::process::ExitCode;

use kiln_image::Reference;

#[derive(clap::Args)]
pub struct Args {
    /// An image: name[:tag], name@digest or image ID.
    source: String,
    /// The new name[:tag].
    target: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = super::store()?;
    let image = store.resolve(&args.source)?;
    let target = Reference::parse(&args.target)?;
    if target.digest.is_some() {
        anyhow::bail!(
            "{}: a tag cannot name a digest; write NAME[:TAG]",
            args.target
        );
    }
    store.tag(&target, &image.top)?;
    Ok(ExitCode::SUCCESS)
}
