//! kiln's Dockerfile front end: the pest grammar (`grammar/dockerfile.pest`), a typed
//! syntax tree with source spans, and BuildKit's variable expansion. The build graph and
//! executor will grow here too.

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

/// The generated pest parser. Its rules are an implementation detail of [`parse`].
mod grammar {
    #[derive(pest_derive::Parser)]
    #[grammar = "../../../grammar/dockerfile.pest"]
    pub(crate) struct DockerfileGrammar;
}
