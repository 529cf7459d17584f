//! kiln's Dockerfile builder, from text to image:
//!
//! - [`parse()`]: a Dockerfile into the typed syntax tree of [`ast`], with source spans and
//!   BuildKit's errors and warnings (physical lines read by hand, each instruction by the
//!   pest grammar `grammar/dockerfile.pest`);
//! - [`expand`]: BuildKit's variable expansion, with the build's variables;
//! - [`lint`]: BuildKit's build checks, hadolint's rules and kiln's own, over the tree;
//! - [`context`]: the build context and its `.dockerignore`;
//! - [`build`]: stages planned into a graph and run on threads, each step cached under a
//!   typed key, layers written into the image crate's store; RUN steps go to an
//!   [`build::Executor`] the caller supplies (the kiln binary plugs in `kiln-runtime`), so
//!   this crate never depends on the runtime.
//!
//! [`Error`] is the crate's one error type; [`Diagnostic`] places a message in a file.

#![warn(missing_docs)]

pub mod ast;
pub mod build;
pub mod context;
mod error;
pub mod expand;
pub mod json;
pub mod lint;
mod parse;
pub mod size;
mod suggest;

pub use error::{Diagnostic, Error};
pub use parse::parse;

// pest_derive without its `std` feature (see Cargo.toml) generates `::alloc` paths.
extern crate alloc;

/// The generated pest parser. Its rules are an implementation detail of [`parse()`].
mod grammar {
    #[derive(pest_derive::Parser)]
    #[grammar = "../../../grammar/dockerfile.pest"]
    pub(crate) struct DockerfileGrammar;
}
