//! The registry's handlers in process, through the router as `tower` calls it (no
//! socket, no server process): a blob uploaded in one request, a manifest naming it,
//! tags, and the OCI error codes for what is not there or not a name. The end-to-end
//! suites (tests/registry_*.rs at the top of the workspace) keep what needs a real
//! connection: timeouts, TLS, peers as clients.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use kiln_registry::auth::Auth;
use kiln_registry::config::{AuthConfig, StorageConfig};
use kiln_registry::http::{router, App};
use kiln_registry::metrics::Metrics;
use kiln_registry::service::{Limits, Registry};
use sha2::Digest as _;
use tower::ServiceExt as _;

fn app(dir: &std::path::Path) -> axum::Router {
    let storage = kiln_registry::storage::open(&StorageConfig {
        root: Some(dir.to_path_buf()),
        s3: None,
    })
    .unwrap();
    router(Arc::new(App {
        registry: Registry::new(storage, Limits::default()),
        auth: Auth::new(&AuthConfig::default(), 5, None).unwrap(),
        metrics: Metrics::default(),
    }))
}

/// One request; the status, the headers and the body.
async fn call(
    app: &axum::Router,
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(t) = content_type {
        request = request.header("Content-Type", t);
    }
    let mut request = request
        .header("Content-Length", body.len())
        .body(Body::from(body))
        .unwrap();
    // The router counts failed logins by address, as the server hands it.
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

fn code(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_blob_a_manifest_and_a_tag_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = digest(config);
    // A monolithic upload: one POST with the digest.
    let (status, headers, _) = call(
        &app,
        Method::POST,
        &format!("/v2/team/app/blobs/uploads/?digest={config_digest}"),
        Some("application/octet-stream"),
        config.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers["Docker-Content-Digest"], config_digest.as_str());
    let (status, headers, _) = call(
        &app,
        Method::HEAD,
        &format!("/v2/team/app/blobs/{config_digest}"),
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["Content-Length"], config.len().to_string().as_str());
    // A manifest naming it, under a tag; listed, fetched back by digest.
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [],
    }))
    .unwrap();
    let manifest_type = "application/vnd.oci.image.manifest.v1+json";
    let (status, headers, _) = call(
        &app,
        Method::PUT,
        "/v2/team/app/manifests/1",
        Some(manifest_type),
        manifest.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers["Docker-Content-Digest"], digest(&manifest).as_str());
    let (_, _, tags) = call(
        &app,
        Method::GET,
        "/v2/team/app/tags/list",
        None,
        Vec::new(),
    )
    .await;
    let tags: serde_json::Value = serde_json::from_slice(&tags).unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["1"]));
    let (status, _, body) = call(
        &app,
        Method::GET,
        &format!("/v2/team/app/manifests/{}", digest(&manifest)),
        None,
        Vec::new(),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, manifest));
    // A manifest naming a blob that is not there is refused; what is not there is
    // unknown; a name outside the grammar is invalid.
    let missing = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(b"nothing"), "size": 7},
        "layers": [],
    }))
    .unwrap();
    let (status, _, body) = call(
        &app,
        Method::PUT,
        "/v2/team/app/manifests/2",
        Some(manifest_type),
        missing,
    )
    .await;
    assert_eq!(
        (status, code(&body).as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
    );
    let (status, _, body) = call(
        &app,
        Method::GET,
        "/v2/team/app/manifests/2",
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(
        (status, code(&body).as_str()),
        (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN")
    );
    let (_, _, body) = call(
        &app,
        Method::GET,
        "/v2/Team/App/tags/list",
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(code(&body), "NAME_INVALID");
}
