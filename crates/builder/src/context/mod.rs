//! The build context: what `.dockerignore` leaves in, and (later) hashing of sources.

pub(crate) mod dockerignore;

pub use dockerignore::Dockerignore;

use std::path::Path;

/// The `.dockerignore` a build of `dockerfile` with `context` reads: `FILE.dockerignore`
/// beside the Dockerfile wins over the context's `.dockerignore`; none leaves all in.
pub fn dockerignore_for(dockerfile: &Path, context: &Path) -> Result<Dockerignore, crate::Error> {
    let specific = std::path::PathBuf::from(format!("{}.dockerignore", dockerfile.display()));
    let file = if specific.exists() {
        specific
    } else {
        context.join(".dockerignore")
    };
    match std::fs::read_to_string(&file) {
        Ok(text) => Dockerignore::parse(&text),
        Err(_) => Ok(Dockerignore::default()),
    }
}
