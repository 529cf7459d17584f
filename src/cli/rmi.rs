//! `kiln rmi [-f] IMAGE...`: untag, and delete an image once nothing names it.

use std::process::ExitCode;

use kiln_image::store::Store;
use kiln_image::Reference;

#[derive(clap::Args)]
pub struct Args {
    /// Remove every tag of an image named by ID.
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    images: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = super::store()?;
    let mut failed = false;
    for name in &args.images {
        if let Err(e) = remove(&store, name, args.force) {
            eprintln!("kiln: {e:#}");
            failed = true;
        }
    }
    // Blobs go once, after every untag: a layer shared by two removed images is freed too.
    store.gc_after(|| super::trim_cache(&store, &Store::default_root(), u64::MAX, &mut 0))?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn remove(store: &kiln_image::store::Store, name: &str, force: bool) -> anyhow::Result<()> {
    let image = store.resolve(name)?;
    let by_name = Reference::parse(name)
        .ok()
        .filter(|r| image.tags.iter().any(|t| t.familiar() == r.familiar()));
    let untag: Vec<Reference> = match by_name {
        Some(r) => vec![r],
        None if image.tags.len() > 1 && !force => anyhow::bail!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            super::output::short_id(image.id().as_ref())
        ),
        None => image.tags.clone(),
    };
    for t in &untag {
        store.untag(t, true)?;
        println!("Untagged: {}", t.familiar());
    }
    let still_named = store
        .records()?
        .iter()
        .any(|r| r.reference.is_some() && r.descriptor.digest() == image.top.digest());
    if !still_named {
        store.remove_records(|r| r.descriptor.digest() == image.top.digest())?;
        println!("Deleted: {}", image.id());
    }
    Ok(())
}
