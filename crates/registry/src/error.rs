//! The registry crate's error type: storage and configuration failures. What clients see
//! is an [`crate::errcode::ApiError`]; these reach them as 500s and the log.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no object at {0}")]
    NotFound(String),
    #[error("{path} is {actual} bytes long, not {expected}: another writer got there first")]
    Offset {
        path: String,
        expected: u64,
        actual: u64,
    },
    #[error("the request body broke off: {0}")]
    Body(String),
    #[error("listing the repositories: {0}")]
    Listing(String),
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
}

impl Error {
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}
