//! The local content store: an OCI image layout under `KILN_ROOT`.
//!
//! ```text
//! KILN_ROOT/
//!   oci-layout            {"imageLayoutVersion":"1.0.0"}
//!   index.json            one entry per tag (annotation org.opencontainers.image.ref.name
//!                         = the familiar name, e.g. `app:1`) and per untagged image kept
//!   blobs/sha256/<hex>    every manifest, config and layer, written once
//!   ingest/               blobs being written; never read as content
//!   compressed/<alg>/<diffid hex>   the compressed blob made from an uncompressed layer
//!   origins/<hex>         the registry repositories a blob was pulled from or pushed to
//!   index.lock, gc.lock   advisory locks (see below)
//! ```
//!
//! Safety under concurrency and `kill -9`: a blob is written to `ingest/`, fsynced, its
//! digest verified, then renamed into `blobs/` (and the directory fsynced), so no partial
//! blob is ever visible. `index.json` is rewritten the same way under an exclusive lock on
//! `index.lock`, so concurrent taggers never lose each other's tags, and only after every
//! blob it names is in place. Writers hold `gc.lock` shared for their whole transaction and
//! garbage collection takes it exclusively, so a blob a writer has just written or found
//! cannot be collected before the writer tags it.

mod blobs;
mod compressed;
mod gc;
pub mod images;
mod index;
mod origins;
mod snapshots;

use std::fs::File;
use std::path::{Path, PathBuf};

pub use blobs::{BlobWriter, TrustedBlobWriter};
pub use compressed::CompressedIndex;
pub use gc::GcReport;
pub use images::{ImageRecord, ResolvedImage};

use crate::error::{Error, Result};

const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// A handle on the store at one root. Cheap; every method touches the files directly,
/// so several processes can use one root at once.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// Held by a process that writes blobs and then tags them; garbage collection waits for
/// every such guard to be dropped.
pub struct WriteGuard {
    _lock: File,
}

impl Store {
    /// `KILN_ROOT`, else `/var/lib/kiln` for root, else `$XDG_DATA_HOME/kiln`
    /// (`~/.local/share/kiln`).
    pub fn default_root() -> PathBuf {
        if let Some(root) = std::env::var_os("KILN_ROOT") {
            return PathBuf::from(root);
        }
        if nix::unistd::geteuid().is_root() {
            return PathBuf::from("/var/lib/kiln");
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into()))
                    .join(".local/share")
            });
        data.join("kiln")
    }

    /// Opens the store at `root`, creating an empty layout there if there is none.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let store = Store { root: root.into() };
        for dir in [store.root.join("blobs/sha256"), store.ingest_dir()] {
            std::fs::create_dir_all(&dir).map_err(Error::io("create directory", &dir))?;
        }
        if !store.root.join(LAYOUT_FILE).exists() {
            store.write_file_atomically(&store.root.join(LAYOUT_FILE), LAYOUT)?;
        }
        if !store.index_path().exists() {
            let _lock = store.lock_index()?;
            if !store.index_path().exists() {
                index::write(&store, &index::empty())?;
            }
        }
        Ok(store)
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    /// Takes `gc.lock` shared for as long as the guard lives: hold it from the first blob
    /// written to the last tag.
    pub fn write_guard(&self) -> Result<WriteGuard> {
        Ok(WriteGuard {
            _lock: self.lock("gc.lock", false)?,
        })
    }

    fn lock_index(&self) -> Result<File> {
        self.lock("index.lock", true)
    }

    fn lock_file(&self, name: &str) -> Result<File> {
        let path = self.root.join(name);
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io("open lock", &path))
    }

    /// `name` locked exclusively, or None when someone holds it now.
    fn try_lock(&self, name: &str) -> Result<Option<File>> {
        let file = self.lock_file(name)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", self.root.join(name))(e)),
        }
    }

    fn lock(&self, name: &str, exclusive: bool) -> Result<File> {
        let path = self.root.join(name);
        let file = self.lock_file(name)?;
        let locked = if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        };
        locked.map_err(Error::io("lock", &path))?;
        Ok(file)
    }

    /// Writes `data` to `path` through a temporary file in `ingest/`, fsync and rename.
    fn write_file_atomically(&self, path: &Path, data: &[u8]) -> Result<()> {
        let mut writer = BlobWriter::new(self)?;
        std::io::Write::write_all(&mut writer, data)
            .map_err(Error::io("write", self.ingest_dir()))?;
        writer.persist_to(path)
    }
}

/// fsyncs a directory so a rename into it survives a crash.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("sync directory", dir))
}
