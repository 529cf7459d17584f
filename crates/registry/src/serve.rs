//! Running the registry: bind, serve (plain HTTP, or TLS through rustls) until SIGINT or
//! SIGTERM, then let the requests in flight (uploads included) finish before exiting.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

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
    let auth = Auth::new(
        &config.auth,
        config.limits.login_failures_per_minute.unwrap_or(5),
    )?;
    let tls = config.tls.as_ref().map(tls_acceptor).transpose()?;
    let app = Arc::new(App {
        registry: Registry::new(crate::storage::open(&config.storage)?, limits),
        auth,
        scheme: if tls.is_some() { "https" } else { "http" },
        metrics: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(Error::io("listen on", addr.to_string()))?;
    let bound = listener
        .local_addr()
        .map_err(Error::io("listen on", addr.to_string()))?;
    ready(bound);
    let router = crate::http::router(app);
    match tls {
        // Without TCP_NODELAY a small answer's body waits behind its headers for the
        // client's delayed ACK: 40 ms per request.
        None => axum::serve(
            axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            }),
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(Error::io("serve on", bound.to_string())),
        Some(acceptor) => serve_tls(listener, acceptor, router).await,
    }
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

/// axum has no TLS of its own: accept, handshake, and serve each connection with hyper,
/// watched so that shutdown waits for them.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    router: axum::Router,
) -> Result<(), Error> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let stop = shutdown();
    tokio::pin!(stop);
    loop {
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
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = tower::ServiceExt::map_request(
            router.clone(),
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            },
        );
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake");
                    return;
                }
            };
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(
                hyper_util::rt::TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(service),
            );
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection");
            }
        });
    }
    graceful.shutdown().await;
    Ok(())
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
