//! kiln's OCI distribution registry (`kiln registry serve`): HTTP ([`http`], one catch-all
//! route and a tested path parser) over the service ([`service`], every invariant) over a
//! path-keyed storage trait ([`storage`]). Depends on `kiln-image` only, never on the
//! builder or the runtime, and only on its names (digests, references, media types: the
//! image crate without its `full` feature, so no client, store or compressor is linked).

#![warn(missing_docs)]

pub mod auth;
pub mod config;
pub mod errcode;
mod error;
pub mod gc;
pub mod http;
pub mod metrics;
pub mod names;
pub mod paths;
pub mod routes;
mod serve;
pub mod service;
pub mod storage;

pub use error::Error;
pub use serve::serve;
pub use service::{Limits, Registry};
