//! The build context: what `.dockerignore` leaves in, and (later) hashing of sources.

pub(crate) mod dockerignore;

pub use dockerignore::Dockerignore;
