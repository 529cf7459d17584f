//! Where blobs came from: `origins/<hex>` lists the `registry/repository` places a blob was
//! pulled from or pushed to, newest first, so a push to another repository of the same
//! registry can mount the blob there instead of uploading it (Docker keeps the same, as its
//! "v2 metadata").

use std::path::PathBuf;

use super::Store;
use crate::digest::Digest;

/// Places kept per blob: enough to find one in the registry pushed to.
const KEPT: usize = 8;

impl Store {
    pub(super) fn origins_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("origins").join(digest.digest())
    }

    /// The places (`host/repository`) `digest` is known to be at, newest first.
    pub fn blob_origins(&self, digest: &Digest) -> Vec<String> {
        std::fs::read_to_string(self.origins_path(digest))
            .map(|text| text.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Notes that `digest` is at `place` (`host/repository`). Best effort: the list is a
    /// hint for mounts, never needed for correctness, so a note that cannot be written
    /// (or that a concurrent note overwrites) costs a mount at most, never the transfer.
    pub fn add_blob_origin(&self, digest: &Digest, place: &str) {
        let mut places = self.blob_origins(digest);
        if places.first().map(String::as_str) == Some(place) {
            return;
        }
        places.retain(|p| p != place);
        places.insert(0, place.to_string());
        places.truncate(KEPT);
        let mut text = places.join("\n");
        text.push('\n');
        // Renamed into place whole, but not synced.
        let path = self.origins_path(digest);
        let dir = path.parent().expect("under origins/");
        let _ = std::fs::create_dir_all(dir)
            .and_then(|()| tempfile::NamedTempFile::new_in(dir))
            .and_then(|tmp| {
                std::fs::write(tmp.path(), text)?;
                tmp.persist(&path).map_err(|e| e.error)
            });
    }
}
