//! Running the registry: bind, serve (plain HTTP, or TLS through rustls) until SIGINT or
//! SIGTERM, then let the requests in flight (uploads included) finish before exiting.
//! Connections are served by hyper directly (not `axum::serve`), for the header and idle
//! timeouts and the connection limit.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use axum::extract::ConnectInfo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::auth::Auth;
use crate::config::{Config, TlsConfig};
use crate::http::App;
use crate::service::{Limits, Registry};
use crate::Error;

/// Serves `config` until a shutdown signal; `ready`
/// gets the bound address (port 0 picks one) once it listens.
pub async fn serve(config: &Config, ready: impl FnOnce(SocketAddr)) -> Result<(), Error> {
    let addr = config.addr.unwrap_or_else(|| ([127, 0, 0, 1], 5000).into());
    let limits = Limits {
        max_manifest: config
            .limits
            .max_manifest_bytes
            .unwrap_or(Limits::default().max_manifest),
        delete: config.limits.delete.unwrap_or(true),
        read_only: config.limits.read_only.unwrap_or(false),
    };
    let tls = config.tls.as_ref().map(tls_acceptor).transpose()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(Error::io("listen on", addr.to_string()))?;
    let bound = listener
        .local_addr()
        .map_err(Error::io("listen on", addr.to_string()))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let own_url = (!bound.ip().is_unspecified()).then(|| format!("{scheme}://{bound}"));
    let auth = Auth::new(
        &config.auth,
        config.limits.login_failures_per_minute.unwrap_or(5),
        own_url.as_deref(),
    )?;
    let app = Arc::new(App {
        registry: Registry::new(crate::storage::open(&config.storage)?, limits),
        auth,
        metrics: Default::default(),
    });
    ready(bound);
    let connections = Connections {
        header_timeout: Duration::from_secs(config.limits.header_timeout_seconds.unwrap_or(30)),
        idle_timeout: Duration::from_secs(config.limits.idle_timeout_seconds.unwrap_or(120)),
        slots: Arc::new(Semaphore::new(
            config.limits.max_connections.unwrap_or(4096),
        )),
    };
    serve_connections(listener, tls, crate::http::router(app), connections).await;
    Ok(())
}

/// What a connection may take of the server: its headers must arrive within
/// `header_timeout`, it may go `idle_timeout` without sending a byte (in a body, or
/// between requests), and at most as many connections as `slots` are served at once
/// (the next ones wait in the listen queue). Without these a client that never finishes
/// its headers holds a descriptor forever, and a few thousand of them stop the server.
struct Connections {
    header_timeout: Duration,
    idle_timeout: Duration,
    slots: Arc<Semaphore>,
}

/// Accepts connections (with TLS when given), serves each with hyper, and on shutdown
/// lets those in flight finish.
async fn serve_connections(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: axum::Router,
    limits: Connections,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let stop = shutdown();
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            slot = limits.slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = &mut stop => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept");
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        // Without TCP_NODELAY a small answer's body waits behind its headers for the
        // client's delayed ACK: 40 ms per request.
        let _ = tcp.set_nodelay(true);
        let mut timed = tokio_io_timeout::TimeoutStream::new(tcp);
        timed.set_read_timeout(Some(limits.idle_timeout));
        let service = tower::ServiceExt::map_request(
            router.clone(),
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            },
        );
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            let timed = Box::pin(timed);
            let mut builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                // hyper lets a connection's buffers grow to 400 KiB; 32 clients at once
                // left the server 12 MiB larger for good. 64 KiB still takes any request
                // head a client sends, and bodies go through it in pieces either way.
                .max_buf_size(64 << 10);
            let service = hyper_util::service::TowerToHyperService::new(service);
            let served = match tls {
                None => {
                    let conn = builder.serve_connection_with_upgrades(
                        hyper_util::rt::TokioIo::new(timed),
                        service,
                    );
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(header_timeout, acceptor.accept(timed)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let conn = builder.serve_connection_with_upgrades(
                        hyper_util::rt::TokioIo::new(stream),
                        service,
                    );
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "connection");
            }
        });
    }
    // New connections are refused from now on, not queued unanswered until the last
    // request in flight is done.
    drop(listener);
    graceful.shutdown().await;
}

fn tls_acceptor(tls: &TlsConfig) -> Result<tokio_rustls::TlsAcceptor, Error> {
    let bad = |path: &Path, e: String| Error::Config {
        path: path.to_path_buf(),
        message: e,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|it| it.collect())
        .map_err(|e| bad(&tls.cert, format!("reading the certificate chain: {e}")))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| bad(&tls.key, format!("reading the private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&tls.cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            bad(
                &tls.cert,
                format!("the certificate and key do not go together: {e}"),
            )
        })?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
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
