//! Keeping the build cache under a size: cached layers (a step's record and the snapshot
//! and outline it names, or the blob when the layer was never unpacked) are dropped least recently
//! used first. A record's file time is its last use
//! (a cache hit touches it); a snapshot no record names (a base image's layer, unpacked
//! again when needed) counts from when it was made.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use kiln_image::store::Store;

use super::cache::Record;
use crate::Error;

/// What [`trim`] kept and freed.
#[derive(Debug, Default)]
pub struct Trimmed {
    /// Bytes the cache holds afterwards.
    pub used: u64,
    /// Bytes removed.
    pub freed: u64,
    /// The layers (diffIDs, also their blob digests) that kept records still name: the
    /// store's garbage collection must keep those blobs for the cache to hit.
    pub blobs: HashSet<String>,
}

/// One cached layer: its snapshot and the records that name it.
struct Entry {
    snapshot: PathBuf,
    records: Vec<PathBuf>,
    last_use: SystemTime,
    size: u64,
}

/// Drops cached layers, least recently used first, until the cache holds at most `keep`
/// bytes. A layer counts at the size of its blob in the store (the uncompressed tar a
/// build made, or the compressed one a registry cache gave), or of the files of a snapshot
/// that has none; hard links shared between snapshots count more than once,
/// so the count is an upper bound. Run it while no build is running (under the store's
/// exclusive lock).
pub fn trim(store: &Store, root: &Path, keep: u64) -> Result<Trimmed, Error> {
    let mut entries = entries(store, root)?;
    entries.sort_by_key(|e| std::cmp::Reverse(e.last_use));
    let mut out = Trimmed::default();
    let mut full = false;
    for e in entries {
        full = full || out.used + e.size > keep;
        if !full {
            out.used += e.size;
            if !e.records.is_empty() {
                let name = e.snapshot.file_name().unwrap_or_default().to_string_lossy();
                out.blobs.insert(format!("sha256:{name}"));
            }
            continue;
        }
        for r in &e.records {
            remove(r, std::fs::remove_file(r))?;
        }
        remove(&e.snapshot, std::fs::remove_dir_all(&e.snapshot))?;
        let outline = root
            .join("outlines")
            .join(e.snapshot.file_name().unwrap_or_default());
        remove(&outline, std::fs::remove_dir_all(&outline))?;
        out.freed += e.size;
    }
    Ok(out)
}

fn remove(path: &Path, result: std::io::Result<()>) -> Result<(), Error> {
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
            op: "remove",
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn entries(store: &Store, root: &Path) -> Result<Vec<Entry>, Error> {
    let snapshots = root.join("snapshots");
    let mut by_layer: BTreeMap<String, Entry> = BTreeMap::new();
    for dir in read_dir(&snapshots)? {
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let size = stored_size(store, &name).unwrap_or_else(|| disk_usage(&dir));
        by_layer.insert(
            name,
            Entry {
                snapshot: dir,
                records: Vec::new(),
                last_use: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                size,
            },
        );
    }
    for path in read_dir(&root.join("buildcache"))? {
        if !path.is_file() {
            continue;
        }
        let Ok(record) = std::fs::read(&path)
            .map_err(drop)
            .and_then(|b| serde_json::from_slice::<Record>(&b).map_err(drop))
        else {
            continue;
        };
        let Some(diff_id) = record.diff_id else {
            continue;
        };
        let hex = diff_id.hex();
        let used = std::fs::metadata(&path).and_then(|m| m.modified());
        match by_layer.get_mut(hex) {
            Some(e) => {
                if e.records.is_empty() {
                    e.last_use = SystemTime::UNIX_EPOCH;
                }
                e.last_use = e.last_use.max(used.unwrap_or(SystemTime::UNIX_EPOCH));
                e.records.push(path);
            }
            // Not unpacked (a layer from a registry cache, or a snapshot trimmed): the
            // record hits while the store has the layer's blob in some form.
            None => match stored_size(store, hex) {
                Some(size) => {
                    by_layer.insert(
                        hex.to_string(),
                        Entry {
                            snapshot: snapshots.join(hex),
                            records: vec![path],
                            last_use: used.unwrap_or(SystemTime::UNIX_EPOCH),
                            size,
                        },
                    );
                }
                None => remove(&path, std::fs::remove_file(&path))?,
            },
        }
    }
    Ok(by_layer.into_values().collect())
}

/// The size of layer `hex`'s blob in the store, in whichever form it is there.
fn stored_size(store: &Store, hex: &str) -> Option<u64> {
    let diff_id = kiln_image::digest::parse(&format!("sha256:{hex}")).ok()?;
    Some(store.layer_blob(&diff_id)?.size())
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    match std::fs::read_dir(dir) {
        Ok(rd) => Ok(rd.filter_map(|e| e.ok()).map(|e| e.path()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::Io {
            op: "read",
            path: dir.to_path_buf(),
            source: e,
        }),
    }
}

/// Bytes of the regular files under `dir` (or of `dir`, a file); hard-linked files count
/// once per link, so it is an upper bound.
pub fn disk_usage(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}
