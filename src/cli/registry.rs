//! `kiln registry serve [--addr 127.0.0.1:5000] [--root DIR] [--read-only]`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use kiln_registry::{Limits, ServeOptions};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Serve an OCI distribution registry (v1.1) over HTTP.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:5000")]
    addr: SocketAddr,
    /// Where blobs, manifests and uploads are kept (default: KILN_ROOT/registry).
    #[arg(long)]
    root: Option<PathBuf>,
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
    let root = args
        .root
        .unwrap_or_else(|| kiln_image::store::Store::default_root().join("registry"));
    let opts = ServeOptions {
        addr: args.addr,
        root: root.clone(),
        limits: Limits {
            read_only: args.read_only,
            ..Limits::default()
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime
        .block_on(kiln_registry::serve(opts, |addr| {
            // Tests and scripts read this line to learn the port.
            println!(
                "kiln registry listening on http://{addr} (storage: {})",
                root.display()
            );
        }))
        .with_context(|| format!("serving the registry on {}", args.addr))?;
    Ok(ExitCode::SUCCESS)
}
