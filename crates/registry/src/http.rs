//! The HTTP layer: one catch-all route under `/v2/`, [`crate::routes::parse`] to say what
//! a path names, the auth check for it, and a translation of each request to a
//! [`Registry`] call and of its answer (or error) to the spec's status, headers and body.
//! `/token` is the token endpoint when Bearer auth is on; `/healthz` says the process is up.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use futures_util::TryStreamExt;

use crate::auth::{Action, Auth, Identity, Refusal};
use crate::errcode::{ApiError, Code};
use crate::metrics::Metrics;
use crate::names::{parse_digest, Reference};
use crate::routes::{self, Route};
use crate::service::{Page, Registry, UploadStatus};
use crate::storage::ByteStream;

/// What the handlers share.
pub struct App {
    /// The service: every invariant of blobs, manifests and uploads.
    pub registry: Registry,
    /// Who may do what.
    pub auth: Auth,
    /// The counters `/metrics` shows.
    pub metrics: Metrics,
}

/// The registry's routes: `/v2/...`, `/token`, `/healthz`, `/metrics`. Serve it with
/// connect info (`into_make_service_with_connect_info::<SocketAddr>`): failed logins
/// count by address.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v2", any(v2))
        .route("/v2/", any(v2))
        .route("/v2/{*rest}", any(v2))
        .route("/token", get(token).post(token))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(app.clone(), observe))
        .layer(axum::middleware::map_response(api_version))
        .with_state(app)
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let text = app.metrics.render(app.registry.storage().as_ref()).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

fn content_length(headers: &HeaderMap) -> u64 {
    header_str(headers, header::CONTENT_LENGTH)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Logs each request (method, path, status, time, bytes) and counts it for `/metrics`.
async fn observe(
    State(app): State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let start = std::time::Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let received = content_length(request.headers());
    let response = next.run(request).await;
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    let sent = match content_length(response.headers()) {
        0 => axum::body::HttpBody::size_hint(response.body())
            .exact()
            .unwrap_or(0),
        n => n,
    };
    let route = crate::metrics::route_label(&path);
    app.metrics
        .record(method.as_str(), route, status, elapsed, received, sent);
    tracing::info!(%method, %path, status, ms = elapsed.as_secs_f64() * 1000.0, received, sent, "request");
    response
}

async fn api_version(mut response: Response) -> Response {
    response.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    response
}

fn refusal_response(r: Refusal) -> Response {
    let mut response = error_response(&r.error);
    if let Some(c) = r.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, c);
    }
    response
}

/// What `route` needs of the caller: nothing, a login, the catalog, or an action on a
/// repository (with the scope a token request would name).
fn authorize(app: &App, who: &Identity, route: &Route, method: &Method) -> Result<(), Refusal> {
    let (name, action) = match route {
        Route::Base => {
            return match who {
                Identity::Anonymous => Err(app.auth.challenge(who, None)),
                _ => Ok(()),
            }
        }
        Route::Catalog => {
            return if app.auth.permits_catalog(who) {
                Ok(())
            } else {
                Err(app.auth.challenge(who, Some("registry:catalog:*")))
            }
        }
        Route::Tags { name } | Route::Referrers { name, .. } => (name, Action::Pull),
        Route::Manifest { name, .. } | Route::Blob { name, .. } => match *method {
            Method::PUT => (name, Action::Push),
            Method::DELETE => (name, Action::Delete),
            _ => (name, Action::Pull),
        },
        Route::Uploads { name } | Route::Upload { name, .. } => (name, Action::Push),
    };
    if app.auth.permits(who, name, action) {
        return Ok(());
    }
    let actions = match action {
        Action::Push => "pull,push",
        other => other.name(),
    };
    let scope = format!("repository:{name}:{actions}");
    Err(app.auth.challenge(who, Some(&scope)))
}

/// The token endpoint: `GET /token?service=&scope=...` with Basic credentials (or none,
/// for anonymous rights), or OAuth2's `POST /token` with a password grant (containerd).
async fn token(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut params: Vec<(String, String)> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let mut credentials = header_str(&headers, header::AUTHORIZATION).and_then(crate::auth::basic);
    if method == Method::POST {
        let Ok(form) = axum::body::to_bytes(body, 64 * 1024).await else {
            return error_response(&ApiError::new(Code::Unsupported, "the form is too large"));
        };
        params.extend(form_urlencoded::parse(&form).into_owned());
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if get("grant_type").as_deref() == Some("password") {
            credentials = get("username").zip(get("password"));
        }
    }
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    // A token for a user checks a password (bcrypt): on a blocking thread.
    let issuer = app.clone();
    let ip = peer.ip();
    let issued = match credentials {
        Some(_) => {
            tokio::task::spawn_blocking(move || issuer.auth.issue_token(credentials, &scopes, ip))
                .await
                .expect("issuing a token does not panic")
        }
        None => app.auth.issue_token(None, &scopes, ip),
    };
    match issued {
        Ok(body) => json(StatusCode::OK, body),
        Err(r) => refusal_response(r),
    }
}

fn error_response(e: &ApiError) -> Response {
    let status = e.code.status();
    if status.is_server_error() {
        tracing::error!(error = %e, "request failed");
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        e.body().to_string(),
    )
        .into_response()
}

/// Query parameters; a repeated one keeps its first value.
fn query(uri: &Uri) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

fn page_n(q: &HashMap<String, String>) -> Result<Option<usize>, ApiError> {
    match q.get("n") {
        None => Ok(None),
        Some(n) => n
            .parse()
            .map(Some)
            .map_err(|_| ApiError::new(Code::Unsupported, format!("n={n} is not a number"))),
    }
}

/// `Link: <...?n=N&last=LAST>; rel="next"` when there is a next page.
fn with_link(mut response: Response, path: &str, n: Option<usize>, page: &Page) -> Response {
    if let (Some(last), Some(n)) = (&page.next, n) {
        let last: String = form_urlencoded::byte_serialize(last.as_bytes()).collect();
        if let Ok(v) = HeaderValue::from_str(&format!("<{path}?n={n}&last={last}>; rel=\"next\"")) {
            response.headers_mut().insert(header::LINK, v);
        }
    }
    response
}

fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn empty(status: StatusCode, headers: Vec<(&'static str, String)>) -> Response {
    let mut response = (status, [(header::CONTENT_LENGTH, "0")]).into_response();
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            response.headers_mut().insert(k, v);
        }
    }
    response
}

/// The headers of an upload session's answers.
fn session_headers(name: &str, s: &UploadStatus) -> Vec<(&'static str, String)> {
    vec![
        (
            "Location",
            format!("/v2/{name}/blobs/uploads/{}", s.session),
        ),
        ("Range", format!("0-{}", s.size.saturating_sub(1))),
        ("Docker-Upload-UUID", s.session.clone()),
        ("Blob-Upload-Session-ID", s.session.clone()),
    ]
}

/// `Content-Range: START-END` (also `bytes START-END/TOTAL`): the start. A range that
/// disagrees with `Content-Length` is SIZE_INVALID.
fn content_range_start(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = header_str(headers, header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let v = value
        .trim()
        .trim_start_matches("bytes")
        .trim_start_matches(['=', ' ']);
    let v = v.split('/').next().unwrap_or(v);
    let (start, end) = v
        .split_once('-')
        .and_then(|(s, e)| Some((s.trim().parse::<u64>().ok()?, e.trim().parse::<u64>().ok()?)))
        .filter(|(s, e)| s <= e)
        .ok_or_else(|| {
            ApiError::new(
                Code::RangeInvalid,
                format!("Content-Range {value:?} is not START-END"),
            )
        })?;
    if let Some(len) =
        header_str(headers, header::CONTENT_LENGTH).and_then(|l| l.parse::<u64>().ok())
    {
        if len != end - start + 1 {
            return Err(ApiError::new(
                Code::SizeInvalid,
                format!(
                    "Content-Range {value:?} is {} bytes but Content-Length is {len}",
                    end - start + 1
                ),
            ));
        }
    }
    Ok(Some(start))
}

async fn v2(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let reg = &app.registry;
    let path = uri.path().trim_start_matches("/v2").trim_start_matches('/');
    let path = percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned();
    let route = match routes::parse(&path) {
        Ok(Some(route)) => route,
        Ok(None) => {
            let e = ApiError::new(Code::NotFound, format!("no API at {}", uri.path()));
            return drained(body, error_response(&e)).await;
        }
        Err(e) => return drained(body, error_response(&e)).await,
    };
    let authorization = header_str(&headers, header::AUTHORIZATION).map(str::to_string);
    let identified = if app.auth.checks_password(authorization.as_deref()) {
        // bcrypt: on a blocking thread, not an async worker.
        let checker = app.clone();
        let ip = peer.ip();
        tokio::task::spawn_blocking(move || checker.auth.identify(authorization.as_deref(), ip))
            .await
            .expect("a password check does not panic")
    } else {
        app.auth.identify(authorization.as_deref(), peer.ip())
    };
    let who = match identified {
        Ok(who) => who,
        Err(r) => return drained(body, refusal_response(r)).await,
    };
    if let Err(r) = authorize(&app, &who, &route, &method) {
        return drained(body, refusal_response(r)).await;
    }
    // Mounting reads the source repository: without the right to pull it, upload instead;
    // the catalog lists only what the caller may pull.
    let may_pull = |repository: &str| app.auth.may_pull(&who, repository);
    match dispatch(reg, route.clone(), &method, &uri, &headers, body, &may_pull).await {
        Ok(response) => response,
        Err(e) if e.code == Code::RangeInvalid => {
            // 416 tells where the upload stands, so the client can go on from there.
            let mut response = error_response(&e);
            if let Route::Upload { name, session } = &route {
                if let Ok(status) = reg.upload_status(name, session).await {
                    for (k, v) in session_headers(name, &status) {
                        if let Ok(v) = HeaderValue::from_str(&v) {
                            response.headers_mut().insert(k, v);
                        }
                    }
                }
            }
            response
        }
        // A body refused for its size was left unread.
        Err(e) if e.code == Code::TooLarge => closing(error_response(&e)),
        Err(e) => error_response(&e),
    }
}

/// `response` to a request refused before its body was read, sent once the body is read
/// (up to 1 MiB, for up to 5 s): a client still writing a small body then gets the answer
/// instead of a connection closed under it. A larger body is left, and the answer closes
/// the connection.
async fn drained(body: Body, response: Response) -> Response {
    let read = axum::body::to_bytes(body, 1 << 20);
    match tokio::time::timeout(std::time::Duration::from_secs(5), read).await {
        Ok(Ok(_)) => response,
        _ => closing(response),
    }
}

/// `response` with `Connection: close`: the request's body was not read to its end, so
/// the connection cannot carry another request, and the client must not reuse it.
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

async fn dispatch(
    reg: &Registry,
    route: Route,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    may_pull: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Response, ApiError> {
    let q = query(uri);
    let not_allowed = || {
        ApiError::new(
            Code::Unsupported,
            format!("{method} is not an operation of {}", uri.path()),
        )
    };
    match route {
        Route::Base => match *method {
            Method::GET | Method::HEAD => Ok(json(StatusCode::OK, serde_json::json!({}))),
            _ => Err(not_allowed()),
        },
        Route::Catalog => {
            if method != Method::GET {
                return Err(not_allowed());
            }
            let n = page_n(&q)?;
            let page = reg
                .catalog(n, q.get("last").map(String::as_str), may_pull)
                .await?;
            let response = json(
                StatusCode::OK,
                serde_json::json!({"repositories": page.items}),
            );
            Ok(with_link(response, "/v2/_catalog", n, &page))
        }
        Route::Tags { name } => {
            if method != Method::GET {
                return Err(not_allowed());
            }
            let n = page_n(&q)?;
            let page = reg
                .tags(&name, n, q.get("last").map(String::as_str))
                .await?;
            let response = json(
                StatusCode::OK,
                serde_json::json!({"name": name, "tags": page.items}),
            );
            Ok(with_link(
                response,
                &format!("/v2/{name}/tags/list"),
                n,
                &page,
            ))
        }
        Route::Manifest { name, reference } => {
            manifest(reg, &name, &reference, method, headers, body).await
        }
        Route::Blob { name, digest } => match *method {
            Method::HEAD => {
                let size = reg.blob_size(&name, &digest).await?;
                Ok(blob_head(StatusCode::OK, size, digest.as_ref()))
            }
            Method::GET => {
                let blob = reg
                    .blob(&name, &digest, header_str(headers, header::RANGE))
                    .await?;
                let len = blob.range.map_or(blob.size, |(s, e)| e - s + 1);
                let status = if blob.range.is_some() {
                    StatusCode::PARTIAL_CONTENT
                } else {
                    StatusCode::OK
                };
                let mut response = Response::builder()
                    .status(status)
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(header::CONTENT_LENGTH, len)
                    .header(header::ACCEPT_RANGES, "bytes")
                    .header("Docker-Content-Digest", digest.to_string())
                    .header(header::ETAG, format!("\"{digest}\""));
                if let Some((s, e)) = blob.range {
                    response = response.header(
                        header::CONTENT_RANGE,
                        format!("bytes {s}-{e}/{}", blob.size),
                    );
                }
                Ok(response
                    .body(Body::from_stream(blob.body))
                    .expect("valid headers"))
            }
            Method::DELETE => {
                reg.delete_blob(&name, &digest).await?;
                Ok(empty(StatusCode::ACCEPTED, vec![]))
            }
            _ => Err(not_allowed()),
        },
        Route::Uploads { name } => {
            if method != Method::POST {
                return Err(not_allowed());
            }
            if let (Some(mount), Some(from)) = (q.get("mount"), q.get("from")) {
                if let Some(d) = parse_digest(mount).filter(|_| may_pull(from)) {
                    if reg.mount(&name, &d, from).await? {
                        return Ok(blob_created(&name, d.as_ref()));
                    }
                }
            }
            // A malformed digest is refused before a session exists.
            let digest = q
                .get("digest")
                .map(|d| {
                    parse_digest(d).ok_or_else(|| {
                        ApiError::new(Code::DigestInvalid, format!("{d:?} is not a digest"))
                    })
                })
                .transpose()?;
            let status = reg.start_upload(&name).await?;
            if let Some(d) = digest {
                let done = reg
                    .commit(&name, &status.session, &d, Some((None, stream(body))))
                    .await?;
                return Ok(blob_created(&name, done.digest.as_ref()));
            }
            Ok(empty(StatusCode::ACCEPTED, session_headers(&name, &status)))
        }
        Route::Upload { name, session } => match *method {
            Method::GET => {
                let status = reg.upload_status(&name, &session).await?;
                Ok(empty(
                    StatusCode::NO_CONTENT,
                    session_headers(&name, &status),
                ))
            }
            Method::PATCH => {
                let start = content_range_start(headers)?;
                let status = reg.append(&name, &session, start, stream(body)).await?;
                Ok(empty(StatusCode::ACCEPTED, session_headers(&name, &status)))
            }
            Method::PUT => {
                let d = q.get("digest").ok_or_else(|| {
                    ApiError::new(
                        Code::DigestInvalid,
                        "the closing PUT needs ?digest=<digest> of the whole blob",
                    )
                })?;
                let d = parse_digest(d).ok_or_else(|| {
                    ApiError::new(Code::DigestInvalid, format!("{d:?} is not a digest"))
                })?;
                let start = content_range_start(headers)?;
                let done = reg
                    .commit(&name, &session, &d, Some((start, stream(body))))
                    .await?;
                Ok(blob_created(&name, done.digest.as_ref()))
            }
            Method::DELETE => {
                reg.cancel_upload(&name, &session).await?;
                Ok(empty(StatusCode::NO_CONTENT, vec![]))
            }
            _ => Err(not_allowed()),
        },
        Route::Referrers { name, digest } => {
            if method != Method::GET {
                return Err(not_allowed());
            }
            let filter = q.get("artifactType").map(String::as_str);
            let index = reg.referrers(&name, &digest, filter).await?;
            let mut response = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, kiln_image::media::OCI_INDEX)],
                index,
            )
                .into_response();
            if filter.is_some() {
                response.headers_mut().insert(
                    "OCI-Filters-Applied",
                    HeaderValue::from_static("artifactType"),
                );
            }
            Ok(response)
        }
    }
}

fn blob_head(status: StatusCode, size: u64, digest: &str) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, size)
        .header(header::ACCEPT_RANGES, "bytes")
        .header("Docker-Content-Digest", digest)
        .header(header::ETAG, format!("\"{digest}\""))
        .body(Body::empty())
        .expect("valid headers")
}

fn blob_created(name: &str, digest: &str) -> Response {
    empty(
        StatusCode::CREATED,
        vec![
            ("Location", format!("/v2/{name}/blobs/{digest}")),
            ("Docker-Content-Digest", digest.to_string()),
        ],
    )
}

async fn manifest(
    reg: &Registry,
    name: &str,
    reference: &Reference,
    method: &Method,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    match *method {
        Method::GET | Method::HEAD => {
            let accept: Vec<String> = headers
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|t| t.split(';').next().unwrap_or(t).trim().to_string())
                .filter(|t| !t.is_empty())
                .collect();
            let m = reg.manifest(name, reference, &accept).await?;
            let response = Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, &m.media_type)
                .header(header::CONTENT_LENGTH, m.body.len())
                .header("Docker-Content-Digest", m.digest.to_string())
                .header(header::ETAG, format!("\"{}\"", m.digest));
            let body = if method == Method::HEAD {
                Body::empty()
            } else {
                Body::from(m.body)
            };
            Ok(response.body(body).expect("valid headers"))
        }
        Method::PUT => {
            let limit = reg.max_manifest();
            let bytes = axum::body::to_bytes(body, limit + 1).await.map_err(|_| {
                ApiError::new(
                    Code::TooLarge,
                    format!("this registry takes manifests up to {limit} bytes"),
                )
            })?;
            let pushed = reg
                .put_manifest(
                    name,
                    reference,
                    header_str(headers, header::CONTENT_TYPE),
                    bytes,
                )
                .await?;
            let digest = pushed.digest.to_string();
            let mut extra = vec![
                ("Location", format!("/v2/{name}/manifests/{digest}")),
                ("Docker-Content-Digest", digest),
            ];
            if let Some(s) = pushed.subject {
                extra.push(("OCI-Subject", s.to_string()));
            }
            Ok(empty(StatusCode::CREATED, extra))
        }
        Method::DELETE => {
            reg.delete_manifest(name, reference).await?;
            Ok(empty(StatusCode::ACCEPTED, vec![]))
        }
        _ => Err(ApiError::new(
            Code::Unsupported,
            format!("{method} is not an operation on manifests"),
        )),
    }
}
