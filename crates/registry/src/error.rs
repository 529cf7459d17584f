//! The registry crate's error type: storage and configuration failures. What clients see
//! is an [`crate::errcode::ApiError`]; these reach them as 500s and the log.

use std::path::PathBuf;

/// Why a storage or configuration operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`read`, `rename into`, ...).
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// No object at this storage path.
    #[error("no object at {0}")]
    NotFound(String),
    /// An append found the object at another length than the caller's: someone else
    /// wrote to it.
    #[error("{path} is {actual} bytes long, not {expected}: another writer got there first")]
    Offset {
        /// The storage path.
        path: String,
        /// The length the caller expected.
        expected: u64,
        /// The length it has.
        actual: u64,
    },
    /// The client's request body ended in an error (the connection broke).
    #[error("the request body broke off: {0}")]
    Body(String),
    /// The bucket's listing failed (S3).
    #[error("listing the repositories: {0}")]
    Listing(String),
    /// The configuration is wrong.
    #[error("{path}: {message}")]
    Config {
        /// The file, or the setting (`storage`) when it is missing.
        path: PathBuf,
        /// What is wrong, said for the user.
        message: String,
    },
}

impl Error {
    /// For `map_err`: an io error of `op` on `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}
