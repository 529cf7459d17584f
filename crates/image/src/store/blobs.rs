//! Blobs: content-addressed files under `blobs/<algorithm>/<hex>`, written atomically.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::{sync_dir, Store};
use crate::digest::{Digest, Hasher, HashingWriter};
use crate::error::{Error, Result};
use crate::writeback::Writeback;

impl Store {
    /// Where blob `digest` is (or would be).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().as_ref())
            .join(digest.digest())
    }

    /// Whether the store has blob `digest`.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Opens blob `digest`; [`Error::BlobMissing`] when there is none.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::BlobMissing(digest.to_string()),
            _ => Error::Io {
                op: "open blob",
                path,
                source: e,
            },
        })
    }

    /// The whole of blob `digest` (for small ones: manifests, configs).
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut data = Vec::new();
        let path = self.blob_path(digest);
        self.open_blob(digest)?
            .read_to_end(&mut data)
            .map_err(Error::io("read blob", path))?;
        Ok(data)
    }

    /// Stores `data`, returning its sha256 digest.
    pub fn write_blob_bytes(&self, data: &[u8]) -> Result<Digest> {
        let mut w = BlobWriter::new(self)?;
        w.write_all(data)
            .map_err(Error::io("write blob", self.ingest_dir()))?;
        Ok(w.commit(None)?.0)
    }

    /// Streams `reader` into the store. With `expected`, the content must hash to it (in
    /// that digest's algorithm) or nothing is stored.
    pub fn write_blob(
        &self,
        reader: &mut dyn Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64)> {
        if let Some(d) = expected {
            if self.has_blob(d) {
                // Drain nothing: the caller's reader is theirs to close.
                return Ok((d.clone(), self.blob_size(d)?));
            }
        }
        let mut w = match expected {
            Some(d) => BlobWriter::with_hasher(self, Hasher::for_digest(d))?,
            None => BlobWriter::new(self)?,
        };
        io::copy(reader, &mut w).map_err(Error::io("write blob", self.ingest_dir()))?;
        w.commit(expected)
    }

    /// The size of blob `digest` in bytes.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        Ok(std::fs::metadata(&path)
            .map_err(Error::io("stat blob", path))?
            .len())
    }
}

/// A blob being written: bytes go to a temporary file in `ingest/` and are hashed on the
/// way; [`BlobWriter::commit`] verifies and publishes it. Dropped without commit, the
/// temporary file is removed.
pub struct BlobWriter {
    store: Store,
    file: HashingWriter<BufWriter<WritebackFile>>,
}

/// A blob being written by a writer that hashes exactly what it writes itself (the layer
/// writer): the bytes are not hashed a second time, a pass that costs as much as the
/// write for a large layer. [`TrustedBlobWriter::commit`] publishes them under the
/// digest that writer computed.
pub struct TrustedBlobWriter {
    store: Store,
    file: BufWriter<WritebackFile>,
}

fn ingest_file(store: &Store) -> Result<BufWriter<WritebackFile>> {
    let dir = store.ingest_dir();
    let tmp = tempfile::Builder::new()
        .prefix("blob-")
        .tempfile_in(&dir)
        .map_err(Error::io("create temporary file in", &dir))?;
    Ok(BufWriter::with_capacity(
        1 << 20,
        WritebackFile {
            file: tmp,
            writeback: Writeback::default(),
        },
    ))
}

/// A blob's temporary file whose data goes to disk while it is written
/// ([`crate::writeback`]).
struct WritebackFile {
    file: tempfile::NamedTempFile,
    writeback: Writeback,
}

impl Write for WritebackFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        if self.writeback.due(n as u64) {
            self.writeback.start(self.file.as_file().try_clone()?);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl BlobWriter {
    /// A new blob, hashed with sha256 as it is written.
    pub fn new(store: &Store) -> Result<BlobWriter> {
        Self::with_hasher(store, Hasher::sha256())
    }

    fn with_hasher(store: &Store, hasher: Hasher) -> Result<BlobWriter> {
        Ok(BlobWriter {
            store: store.clone(),
            file: HashingWriter::new(ingest_file(store)?, hasher),
        })
    }

    /// Verifies the digest (if one is expected), fsyncs and renames into `blobs/`.
    pub fn commit(self, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let (buf, digest, size) = self.file.finish();
        if let Some(expected) = expected {
            if *expected != digest {
                return Err(Error::DigestMismatch {
                    what: "blob".into(),
                    expected: expected.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        let path = self.store.blob_path(&digest);
        if !path.exists() {
            publish(buf, &path)?;
        }
        Ok((digest, size))
    }

    /// For files that are not blobs (index.json, oci-layout): same atomic path, any name.
    pub(super) fn persist_to(self, path: &Path) -> Result<()> {
        let (buf, _, _) = self.file.finish();
        publish(buf, path)
    }
}

fn publish(buf: BufWriter<WritebackFile>, path: &Path) -> Result<()> {
    let tmp = buf
        .into_inner()
        .map_err(|e| Error::Io {
            op: "write",
            path: path.to_path_buf(),
            source: e.into_error(),
        })?
        .file;
    tmp.as_file()
        .sync_all()
        .map_err(Error::io("sync", tmp.path()))?;
    let dir = path.parent().expect("store paths have a parent");
    std::fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
    tmp.persist(path).map_err(|e| Error::Io {
        op: "rename into place",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    sync_dir(dir)
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl TrustedBlobWriter {
    /// A new blob whose digest the caller computes.
    pub fn new(store: &Store) -> Result<TrustedBlobWriter> {
        Ok(TrustedBlobWriter {
            store: store.clone(),
            file: ingest_file(store)?,
        })
    }

    /// Fsyncs and renames into `blobs/` as `digest`, which must be the digest of every
    /// byte written (the caller hashed them on their way in).
    pub fn commit(self, digest: &Digest) -> Result<()> {
        let path = self.store.blob_path(digest);
        if !path.exists() {
            publish(self.file, &path)?;
        }
        Ok(())
    }
}

impl Write for TrustedBlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
