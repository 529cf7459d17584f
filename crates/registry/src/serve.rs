//! Running the registry: bind, serve until SIGINT or SIGTERM, then let the requests in
//! flight (uploads included) finish before exiting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::service::{Limits, Registry};
use crate::storage::FsStorage;
use crate::Error;

pub struct ServeOptions {
    pub addr: SocketAddr,
    /// The filesystem storage's root.
    pub root: PathBuf,
    pub limits: Limits,
}

/// Serves until a shutdown signal; `ready` gets the bound address (port 0 picks one).
pub async fn serve(opts: ServeOptions, ready: impl FnOnce(SocketAddr)) -> Result<(), Error> {
    let storage = Arc::new(FsStorage::open(&opts.root)?);
    let registry = Arc::new(Registry::new(storage, opts.limits));
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .map_err(Error::io("listen on", opts.addr.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(Error::io("listen on", opts.addr.to_string()))?;
    ready(addr);
    axum::serve(listener, crate::http::router(registry))
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(Error::io("serve on", addr.to_string()))
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: finishing the requests in flight");
}
