//! How a mirror reports progress: it counts bytes and calls a [`MirrorObserver`] the caller
//! provides. The library draws and prints nothing; the `editshard` command turns these
//! calls into a progress bar or log lines.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::Outcome;

/// Receives a mirror's progress. Every method has an empty default; the methods are called
/// from the mirror's tasks, possibly at the same time.
pub trait MirrorObserver: Send + Sync {
    /// About `bytes` will pass (copied or read to verify), known once the manifest is read.
    fn total(&self, _bytes: u64) {}
    /// `n` more bytes passed.
    fn bytes(&self, _n: u64) {}
    /// A shard is done, with what happened to it.
    fn shard(&self, _event: &ShardEvent<'_>) {}
}

/// An observer that ignores everything (library use, tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl MirrorObserver for Quiet {}

/// One shard's result, as told to a [`MirrorObserver`].
#[derive(Debug)]
pub struct ShardEvent<'a> {
    /// The shard's path inside the dataset.
    pub path: &'a str,
    /// The shard's location at DST, as shown to users.
    pub dst: String,
    /// The shard's length in the source manifest.
    pub bytes: u64,
    pub outcome: &'a Outcome,
    /// Bytes passed so far and seconds since the mirror started (for a running rate).
    pub moved: u64,
    pub secs: f64,
}

/// Why a shard at a remote DST was read back and hashed instead of checked by the
/// checksum its store reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadBack {
    /// The store reports no CRC-64/NVME for the object (plain HTTP; a store that keeps no
    /// checksums; s3s-fs after a multipart upload).
    StoreHasNoCrc,
    /// The manifest records no `crc64nvme` (written before editshard recorded it).
    ManifestHasNoCrc,
}

/// The mirror's own byte count, forwarding to the observer.
pub(crate) struct Progress {
    observer: Arc<dyn MirrorObserver>,
    bytes: AtomicU64,
    start: Instant,
    /// Shards read back per [`ReadBack`] reason, in its order.
    read_back: [AtomicU64; 2],
    /// The CRC-64/NVME of each shard (by its path at DST) whose bytes were hashed and matched
    /// the manifest: what a manifest without `crc64nvme` gains when it is written again.
    learned: Mutex<HashMap<String, u64>>,
}

impl Progress {
    pub(crate) fn new(observer: Arc<dyn MirrorObserver>) -> Progress {
        Progress {
            observer,
            bytes: AtomicU64::new(0),
            start: Instant::now(),
            read_back: [AtomicU64::new(0), AtomicU64::new(0)],
            learned: Mutex::new(HashMap::new()),
        }
    }

    /// The shard at `rel` was hashed as it passed and is the manifest's: its CRC is `crc`.
    pub(crate) fn learn(&self, rel: &str, crc: u64) {
        if let Ok(mut learned) = self.learned.lock() {
            learned.insert(rel.to_string(), crc);
        }
    }

    /// What [`learn`](Self::learn) was told, by path.
    pub(crate) fn learned(&self) -> HashMap<String, u64> {
        self.learned.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// A shard was read back and hashed because its store's checksum could not settle it.
    pub(crate) fn read_back(&self, why: ReadBack) {
        self.read_back[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// One sentence on the shards read back for want of a store checksum, if any were.
    pub(crate) fn read_back_note(&self) -> Option<String> {
        let n = |why: ReadBack| self.read_back[why as usize].load(Ordering::Relaxed);
        let mut parts = Vec::new();
        let store = n(ReadBack::StoreHasNoCrc);
        if store > 0 {
            parts.push(format!(
                "{store} shard(s) were read back and hashed because the store reports no \
                 CRC-64/NVME for them (a plain HTTP server, a store that keeps no checksums, \
                 or a multipart upload to one that keeps none for it)"
            ));
        }
        let manifest = n(ReadBack::ManifestHasNoCrc);
        if manifest > 0 {
            parts.push(format!(
                "{manifest} shard(s) were read back and hashed because the manifest records \
                 no crc64nvme for them (written before editshard recorded it; a dataset \
                 written or mixed again by this version has it)"
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    pub(crate) fn set_total(&self, total: u64) {
        self.observer.total(total);
    }

    pub(crate) fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        self.observer.bytes(n);
    }

    /// Bytes that passed so far.
    pub(crate) fn total(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn elapsed_secs(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    pub(crate) fn shard(&self, dst: String, path: &str, bytes: u64, outcome: &Outcome) {
        self.observer.shard(&ShardEvent {
            path,
            dst,
            bytes,
            outcome,
            moved: self.total(),
            secs: self.elapsed_secs(),
        });
    }
}
