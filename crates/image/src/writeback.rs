//! Writing a large file to disk while it is written: every 32 MiB a sync of what is there
//! starts on a thread of its own, one at a time. Without it nothing of a large blob reaches
//! the disk before the fsync that publishes it (the kernel starts writeback only past its
//! dirty-memory threshold, gigabytes here), so a 1 GiB layer or upload waited for the disk
//! after all the work that made it instead of during it. The store's blob writer and the
//! registry's uploads both keep to it.

use std::fs::File;
use std::thread::JoinHandle;

/// How much is written between two background syncs.
const EVERY: u64 = 32 << 20;

/// The background syncs of one file being written.
#[derive(Default)]
pub struct Writeback {
    unsynced: u64,
    syncing: Option<JoinHandle<()>>,
}

impl Writeback {
    /// Counts `n` more bytes written; true when a sync should start now ([`Self::start`]):
    /// 32 MiB were written since the last, which has finished.
    pub fn due(&mut self, n: u64) -> bool {
        self.unsynced += n;
        self.unsynced >= EVERY && self.syncing.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Syncs `file` (a handle on the file being written, whose data so far is written
    /// out of any buffer) on a thread of its own. A sync that fails here is found again by
    /// the fsync that publishes the file.
    pub fn start(&mut self, file: File) {
        self.syncing = std::thread::Builder::new()
            .name("writeback".into())
            .spawn(move || {
                let _ = file.sync_data();
            })
            .ok();
        self.unsynced = 0;
    }
}
