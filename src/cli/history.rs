//! `kiln history [--no-trunc] [-q] IMAGE`

use std::process::ExitCode;

use super::output::{human_size, parse_time, short_id, since, table};

#[derive(clap::Args)]
pub struct Args {
    image: String,
    #[arg(long)]
    no_trunc: bool,
    /// Only the image ID (on the newest line).
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = super::store()?;
    let image = store.resolve(&args.image)?;
    let history = image.config.history().clone().unwrap_or_default();
    let mut layers = image.manifest.layers().iter();
    let mut rows: Vec<Vec<String>> = history
        .iter()
        .map(|h| {
            let size = if h.empty_layer().unwrap_or(false) {
                0
            } else {
                layers.next().map_or(0, |l| l.size())
            };
            let created_by = h.created_by().clone().unwrap_or_default();
            let created_by = if args.no_trunc || created_by.chars().count() <= 45 {
                created_by
            } else {
                format!("{}…", created_by.chars().take(44).collect::<String>())
            };
            vec![
                "<missing>".to_string(),
                since(parse_time(h.created().as_deref())),
                created_by,
                human_size(size),
                h.comment().clone().unwrap_or_default(),
            ]
        })
        .collect();
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top[0] = if args.no_trunc {
            image.id().to_string()
        } else {
            short_id(image.id().as_ref())
        };
    }
    if args.quiet {
        for r in &rows {
            println!("{}", r[0]);
        }
    } else {
        print!(
            "{}",
            table(
                &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
                &rows
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}
