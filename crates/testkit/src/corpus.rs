//! The shared corpus of real Dockerfiles: `KILN_CORPUS`, or `shared/corpus/dockerfiles`
//! beside the repository.

use std::path::{Path, PathBuf};

/// Every `*.Dockerfile` in the corpus, sorted. Panics with where it looked when the
/// corpus is missing: CI always has it, so a missing corpus is a broken setup.
pub fn corpus_files() -> Vec<PathBuf> {
    let dir = std::env::var_os("KILN_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let mut root = Path::new(env!("CARGO_MANIFEST_DIR"));
            while !root.join("Cargo.lock").exists() {
                root = root.parent().expect("a workspace root above the crate");
            }
            root.join("../shared/corpus/dockerfiles")
        });
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "the corpus must be at {} (or set KILN_CORPUS): {e}",
                dir.display()
            )
        })
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "Dockerfile"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 300,
        "expected the whole corpus, found {} files in {}",
        files.len(),
        dir.display()
    );
    files
}
