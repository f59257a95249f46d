//! How a mirror reports progress: it counts bytes and calls a [`MirrorObserver`] the caller
//! provides. The library draws and prints nothing; the `editshard` command turns these
//! calls into a progress bar or log lines.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// The mirror's own byte count, forwarding to the observer.
pub(crate) struct Progress {
    observer: Arc<dyn MirrorObserver>,
    bytes: AtomicU64,
    start: Instant,
}

impl Progress {
    pub(crate) fn new(observer: Arc<dyn MirrorObserver>) -> Progress {
        Progress {
            observer,
            bytes: AtomicU64::new(0),
            start: Instant::now(),
        }
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
