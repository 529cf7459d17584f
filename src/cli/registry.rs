//! `kiln registry serve [--addr 127.0.0.1:5000] [--root DIR] [--config FILE]
//! [--tls-cert F --tls-key F] [--read-only] [--log-json]`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use kiln_registry::config::{Config, TlsConfig};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Serve an OCI distribution registry (v1.1) over HTTP.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:5000; port 0: any free port, printed).
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Where blobs, manifests and uploads are kept (default: KILN_ROOT/registry).
    #[arg(long)]
    root: Option<PathBuf>,
    /// The configuration file (TOML): storage, limits, auth, TLS. Flags win over it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
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

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    let Command::Serve(args) = command;
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
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    config.addr = args.addr.or(config.addr);
    if let Some(root) = args.root {
        config.storage.root = Some(root);
    }
    let root = config
        .storage
        .root
        .get_or_insert_with(|| kiln_image::store::Store::default_root().join("registry"))
        .clone();
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime
        .block_on(kiln_registry::serve(&config, |addr| {
            // Tests and scripts read this line to learn the port.
            println!(
                "kiln registry listening on {scheme}://{addr} (storage: {})",
                root.display()
            );
        }))
        .context("serving the registry")?;
    Ok(ExitCode::SUCCESS)
}
