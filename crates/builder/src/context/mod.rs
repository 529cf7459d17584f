//! The build context: what `.dockerignore` leaves in, and (later) hashing of sources.

mod dockerignore;

pub use dockerignore::Dockerignore;
