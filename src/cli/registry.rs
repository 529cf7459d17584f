//! `kiln registry serve [--addr 127.0.0.1:5000] [--root DIR] [--config FILE]
//! [--tls-cert F --tls-key F] [--read-only] [--log-json]` and
//! `kiln registry gc [--root DIR] [--config FILE] [--dry-run] [--grace 1h]`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use kiln_registry::config::{Config, TlsConfig};

use super::output::human_size;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Serve an OCI distribution registry (v1.1) over HTTP or HTTPS.
    Serve(ServeArgs),
    /// Remove untagged manifests and blobs nothing references; safe while serving.
    Gc(GcArgs),
}

/// Where the registry's storage is.
#[derive(clap::Args)]
pub struct StoreArgs {
    /// Where blobs, manifests and uploads are kept (default: KILN_ROOT/registry).
    #[arg(long)]
    root: Option<PathBuf>,
    /// The configuration file (TOML): storage, limits, auth, TLS. Flags win over it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to listen on (default 127.0.0.1:5000; port 0: any free port, printed).
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Serve HTTPS with this certificate chain (PEM) ...
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// ... and this private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Refuse every write (pushes, deletes).
    #[arg(long)]
    read_only: bool,
    /// Log one JSON object per line instead of text.
    #[arg(long)]
    log_json: bool,
}

#[derive(clap::Args)]
pub struct GcArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Print what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Keep anything pushed or used more recently than this (pushes in progress).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    grace: std::time::Duration,
}

/// The configuration file (if any) with the storage flags applied, and a description of
/// the storage for messages.
fn load(store: &StoreArgs) -> anyhow::Result<(Config, String)> {
    let mut config = match &store.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(root) = &store.root {
        config.storage.root = Some(root.clone());
    }
    if let Some(s3) = &config.storage.s3 {
        let where_ = format!(
            "s3://{}/{}",
            s3.bucket,
            s3.prefix.clone().unwrap_or_default()
        );
        return Ok((config, where_));
    }
    let root = config
        .storage
        .root
        .get_or_insert_with(|| kiln_image::store::Store::default_root().join("registry"))
        .clone();
    Ok((config, root.display().to_string()))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => serve(args),
        Command::Gc(args) => gc(args),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // The server's tokio workers and blocking threads each kept an arena: with one per
    // core, the registry benchmark's peak before its 10 GiB upload fell from 25.3 to
    // 21.7 MiB, and during it from 25.7 to 22.4 MiB, the request rates and throughput
    // unchanged. Before the runtime starts its threads.
    kiln_runtime::allocator::one_arena_per_core();
    let filter = tracing_subscriber::EnvFilter::try_from_env("KILN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if args.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    let (mut config, storage) = load(&args.store)?;
    config.addr = args.addr.or(config.addr);
    if args.read_only {
        config.limits.read_only = Some(true);
    }
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls = Some(TlsConfig { cert, key });
    }
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    runtime()?
        .block_on(kiln_registry::serve(&config, |addr| {
            // Tests and scripts read this line to learn the port.
            println!("kiln registry listening on {scheme}://{addr} (storage: {storage})");
        }))
        .context("serving the registry")?;
    Ok(ExitCode::SUCCESS)
}

fn gc(args: GcArgs) -> anyhow::Result<ExitCode> {
    let (config, where_) = load(&args.store)?;
    let storage = kiln_registry::storage::open(&config.storage)
        .with_context(|| format!("opening the registry storage at {where_}"))?;
    let registry = kiln_registry::Registry::new(storage, kiln_registry::Limits::default());
    let opts = kiln_registry::gc::GcOptions {
        dry_run: args.dry_run,
        grace: args.grace,
    };
    let report = runtime()?
        .block_on(kiln_registry::gc::collect(&registry, opts))
        .context("collecting garbage")?;
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for m in &report.manifests {
        println!("{verb} manifest {m}");
    }
    for (d, size) in &report.blobs {
        println!("{verb} blob {d} ({})", human_size(*size));
    }
    for u in &report.uploads {
        println!("{verb} abandoned upload {u}");
    }
    println!(
        "{verb} {} manifests, {} blobs ({}), {} uploads",
        report.manifests.len(),
        report.blobs.len(),
        human_size(report.freed()),
        report.uploads.len()
    );
    Ok(ExitCode::SUCCESS)
}
