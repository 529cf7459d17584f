//! Remembered compressions: the gzip or zstd blob made once from an uncompressed layer,
//! found again by the layer's diffID so no layer is compressed twice.
//! `compressed/<gzip|zstd>/<diffID hex>` holds `{"digest": ..., "size": ...}`.

use std::collections::HashSet;
use std::path::PathBuf;

use super::gc::read_dir;
use super::Store;
use crate::digest::{self, Digest};
use crate::error::{Error, Result};
use crate::layer::Compression;

#[derive(serde::Serialize, serde::Deserialize)]
struct Remembered {
    digest: String,
    size: u64,
}

impl Store {
    fn compressed_path(&self, diff_id: &Digest, compression: Compression) -> PathBuf {
        self.root
            .join("compressed")
            .join(compression.name())
            .join(diff_id.digest())
    }

    /// The compressed blob made earlier from the layer `diff_id`, if it is still stored.
    pub fn compressed_variant(
        &self,
        diff_id: &Digest,
        compression: Compression,
    ) -> Option<(Digest, u64)> {
        let data = std::fs::read(self.compressed_path(diff_id, compression)).ok()?;
        let r: Remembered = serde_json::from_slice(&data).ok()?;
        let d = digest::parse(&r.digest).ok()?;
        self.has_blob(&d).then_some((d, r.size))
    }

    pub fn remember_compressed(
        &self,
        diff_id: &Digest,
        compression: Compression,
        digest: &Digest,
        size: u64,
    ) -> Result<()> {
        let path = self.compressed_path(diff_id, compression);
        let data = serde_json::to_vec(&Remembered {
            digest: digest.to_string(),
            size,
        })
        .map_err(Error::json("compressed"))?;
        self.write_file_atomically(&path, &data)
    }

    /// The compressed blobs of reachable layers (kept by gc); forgets the rest.
    pub(super) fn compressed_reachable(&self, reachable: &HashSet<String>) -> Result<Vec<String>> {
        let mut keep = Vec::new();
        for dir in read_dir(&self.root.join("compressed"))? {
            for file in read_dir(&dir)? {
                let diff_id = format!(
                    "sha256:{}",
                    file.file_name().unwrap_or_default().to_string_lossy()
                );
                let target = std::fs::read(&file)
                    .ok()
                    .and_then(|d| serde_json::from_slice::<Remembered>(&d).ok());
                match target {
                    Some(t) if reachable.contains(&diff_id) => keep.push(t.digest),
                    _ => std::fs::remove_file(&file).map_err(Error::io("remove", &file))?,
                }
            }
        }
        Ok(keep)
    }
}
