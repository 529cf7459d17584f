//! `kiln save [-o FILE] IMAGE...`

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

#[derive(clap::Args)]
pub struct Args {
    /// Write to this file (atomically) instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Compress uncompressed layers: gzip, zstd, or none (the default, as docker save).
    #[arg(long, default_value = "none")]
    compression: kiln_image::layer::Compression,
    #[arg(required = true)]
    images: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = super::store()?;
    let mut images = Vec::new();
    for name in &args.images {
        let image = store.resolve(name)?;
        // A name given by tag saves that tag; an ID saves every tag the image has.
        let names = match kiln_image::Reference::parse(name) {
            Ok(r) if image.tags.iter().any(|t| t.familiar() == r.familiar()) => vec![r],
            _ => image.tags.clone(),
        };
        images.push((image, names));
    }
    match &args.output {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let tmp = tempfile::Builder::new()
                .prefix(".kiln-save-")
                .tempfile_in(dir)
                .with_context(|| format!("creating a file in {}", dir.display()))?;
            let out = std::io::BufWriter::with_capacity(1 << 20, tmp);
            let out = kiln_image::archive::save(&store, &images, args.compression, out)?;
            let tmp = out
                .into_inner()
                .map_err(|e| e.into_error())
                .with_context(|| format!("writing {}", path.display()))?;
            // Temporary files are private; the archive gets the usual mode.
            std::fs::set_permissions(
                tmp.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o644),
            )?;
            tmp.as_file().sync_all()?;
            tmp.persist(path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                bail!(
                    "cowardly refusing to save to a terminal: use -o FILE or redirect the output"
                );
            }
            let mut out = kiln_image::archive::save(
                &store,
                &images,
                args.compression,
                std::io::BufWriter::new(stdout.lock()),
            )?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
