//! The distribution spec's error codes, each registered once with its HTTP status, and the
//! JSON body every error response carries:
//! `{"errors": [{"code": "BLOB_UNKNOWN", "message": "...", "detail": ...}]}`.

use axum::http::StatusCode;
use serde_json::{json, Value};

/// A code of the spec's error table (plus the statuses it leaves to HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// `BLOB_UNKNOWN` (404): the blob is not in the repository.
    BlobUnknown,
    /// `BLOB_UPLOAD_INVALID` (400): the upload failed and must be started again.
    BlobUploadInvalid,
    /// `BLOB_UPLOAD_UNKNOWN` (404): no such upload session (cancelled, finished, or never begun).
    BlobUploadUnknown,
    /// `DIGEST_INVALID` (400): the content does not match the digest it was given with, or the digest is malformed.
    DigestInvalid,
    /// `MANIFEST_BLOB_UNKNOWN` (400): the manifest names a blob or manifest the repository lacks.
    ManifestBlobUnknown,
    /// `MANIFEST_INVALID` (400): the manifest cannot be read or fails validation.
    ManifestInvalid,
    /// `MANIFEST_UNKNOWN` (404): no manifest under that tag or digest.
    ManifestUnknown,
    /// `NAME_INVALID` (400): the repository name breaks the spec's grammar.
    NameInvalid,
    /// `NAME_UNKNOWN` (404): no such repository.
    NameUnknown,
    /// `SIZE_INVALID` (400): the length given does not match the content's.
    SizeInvalid,
    /// `UNAUTHORIZED` (401): credentials are needed (the answer carries a challenge).
    Unauthorized,
    /// `DENIED` (403): the credentials do not grant this access.
    Denied,
    /// `UNSUPPORTED` (405): the operation is not supported (deletes when they are off).
    Unsupported,
    /// `TOOMANYREQUESTS` (429): the client is over its rate limit.
    TooManyRequests,
    /// A chunk out of order or a malformed `Content-Range`: the spec answers 416.
    RangeInvalid,
    /// A manifest over the size limit: 413.
    TooLarge,
    /// A path the API does not have: 404.
    NotFound,
    /// The storage failed: 500, the cause in the log.
    Internal,
}

impl Code {
    /// The code as the spec spells it in the JSON body.
    pub fn name(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid | Code::RangeInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid | Code::TooLarge => "SIZE_INVALID",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Denied => "DENIED",
            Code::Unsupported => "UNSUPPORTED",
            Code::TooManyRequests => "TOOMANYREQUESTS",
            Code::NotFound => "NOT_FOUND",
            Code::Internal => "UNKNOWN",
        }
    }

    /// The HTTP status the code is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Code::BlobUnknown
            | Code::BlobUploadUnknown
            | Code::ManifestUnknown
            | Code::NameUnknown
            | Code::NotFound => StatusCode::NOT_FOUND,
            Code::BlobUploadInvalid
            | Code::DigestInvalid
            | Code::ManifestBlobUnknown
            | Code::ManifestInvalid
            | Code::NameInvalid
            | Code::SizeInvalid => StatusCode::BAD_REQUEST,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Denied => StatusCode::FORBIDDEN,
            Code::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            Code::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Code::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
            Code::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The spec's message for the code.
    pub fn message(self) -> &'static str {
        match self {
            Code::BlobUnknown => "blob unknown to registry",
            Code::BlobUploadInvalid => "blob upload invalid",
            Code::RangeInvalid => "blob upload chunk out of order or malformed Content-Range",
            Code::BlobUploadUnknown => "blob upload unknown to registry",
            Code::DigestInvalid => "provided digest did not match uploaded content",
            Code::ManifestBlobUnknown => {
                "manifest references a manifest or blob unknown to registry"
            }
            Code::ManifestInvalid => "manifest invalid",
            Code::ManifestUnknown => "manifest unknown to registry",
            Code::NameInvalid => "invalid repository name",
            Code::NameUnknown => "repository name not known to registry",
            Code::SizeInvalid => "provided length did not match content length",
            Code::TooLarge => "manifest too large",
            Code::Unauthorized => "authentication required",
            Code::Denied => "requested access to the resource is denied",
            Code::Unsupported => "the operation is unsupported",
            Code::TooManyRequests => "too many requests",
            Code::NotFound => "no such endpoint",
            Code::Internal => "internal error: see the registry's log",
        }
    }
}

/// An error answer: a code and what exactly went wrong.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Which error.
    pub code: Code,
    /// What exactly went wrong: the `detail` member of the body.
    pub detail: Value,
}

impl ApiError {
    /// An error whose detail is a sentence.
    pub fn new(code: Code, detail: impl Into<String>) -> ApiError {
        ApiError {
            code,
            detail: Value::String(detail.into()),
        }
    }

    /// An error whose detail is structured (the spec leaves its shape to the registry).
    pub fn with(code: Code, detail: Value) -> ApiError {
        ApiError { code, detail }
    }

    /// The response body: `{"errors": [{"code", "message", "detail"}]}`.
    pub fn body(&self) -> Value {
        json!({"errors": [{
            "code": self.code.name(),
            "message": self.code.message(),
            "detail": self.detail,
        }]})
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.detail)
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> ApiError {
        match e {
            // The client's fault, not the storage's: what arrived is kept.
            crate::Error::Body(why) => ApiError::new(
                Code::BlobUploadInvalid,
                format!("the request body broke off ({why}): ask the upload's status and go on from its Range"),
            ),
            e => {
                tracing::error!(error = %e, "storage");
                ApiError::new(Code::Internal, "")
            }
        }
    }
}
