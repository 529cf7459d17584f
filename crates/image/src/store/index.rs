//! `index.json`: the layout's list of images, read freely and rewritten under a lock.

use oci_spec::image::{ImageIndex, MediaType};

use super::Store;
use crate::error::{Error, Result};

pub(super) fn empty() -> ImageIndex {
    let mut index = ImageIndex::default();
    index.set_media_type(Some(MediaType::ImageIndex));
    index
}

pub(super) fn read(store: &Store) -> Result<ImageIndex> {
    let path = store.index_path();
    let data = std::fs::read(&path).map_err(Error::io("read", &path))?;
    serde_json::from_slice(&data).map_err(Error::json(path.display().to_string()))
}

/// Writes with sorted keys (through `serde_json::Value`), so equal indexes are equal bytes.
pub(super) fn write(store: &Store, index: &ImageIndex) -> Result<()> {
    let value = serde_json::to_value(index).map_err(Error::json("index.json"))?;
    let bytes = serde_json::to_vec(&value).map_err(Error::json("index.json"))?;
    store.write_file_atomically(&store.index_path(), &bytes)
}

impl Store {
    /// Runs `change` on the index under the index lock and writes the result; concurrent
    /// callers are serialised, so none loses another's change.
    pub fn update_index<T>(&self, change: impl FnOnce(&mut ImageIndex) -> Result<T>) -> Result<T> {
        let _lock = self.lock_index()?;
        let mut index = read(self)?;
        let out = change(&mut index)?;
        write(self, &index)?;
        Ok(out)
    }

    /// The store's `index.json`, read from disk.
    pub fn index(&self) -> Result<ImageIndex> {
        read(self)
    }
}
