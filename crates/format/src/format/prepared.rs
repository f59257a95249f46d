//! zstd's prepared form of metadata dictionaries (a `DDict`: the dictionary with its entropy
//! tables built, about 27 KiB more than the dictionary itself), kept in one bounded cache
//! per process and shared by content.
//!
//! A reader that has touched every shard of a dataset would otherwise hold one prepared
//! dictionary per shard: 31 KiB a shard, 21 MB over the 695 shards of a 386K-record release
//! and growing with the dataset. Here a dictionary is prepared when a record needs it, and the
//! least recently used prepared dictionaries go once they take more than the budget
//! ([`DEFAULT_BUDGET`], 1 MiB: about 30 dictionaries of 4 KiB; see
//! [`set_prepared_dictionary_budget`]). Shards whose writers put the same dictionary in them
//! share one prepared copy. A dictionary that is not cached is prepared again: about 6 µs for
//! the few-KiB dictionaries the writer trains (measured: a random metadata read over 695
//! shards with every footer loaded, p50 7.5 µs with every dictionary prepared, 11.4 µs with
//! 4 MiB of them), paid per record only by a reader jumping between more shards than the
//! cache holds, which then mostly pays for loading footers again (~0.2 ms each) as well: a
//! sequential reader needs one dictionary at a time.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use zstd::zstd_safe::DDict;

/// Bytes of prepared dictionaries a process keeps by default.
pub const DEFAULT_BUDGET: u64 = 1 << 20;

static BUDGET: AtomicU64 = AtomicU64::new(DEFAULT_BUDGET);
static CACHE: Mutex<Prepared> = Mutex::new(Prepared {
    entries: Vec::new(),
    bytes: 0,
    clock: 0,
});

/// Sets how many bytes of prepared dictionaries this process keeps (at least one dictionary
/// is always kept while it is in use). Takes effect at the next dictionary prepared.
pub fn set_prepared_dictionary_budget(bytes: u64) {
    BUDGET.store(bytes, Ordering::Relaxed);
}

/// What the prepared dictionaries cached now hold: (how many, bytes).
pub fn prepared_dictionaries() -> (usize, u64) {
    let cache = lock();
    (cache.entries.len(), cache.bytes)
}

/// A digest of a dictionary's bytes, to find its prepared form (a match is then confirmed
/// byte for byte).
pub(crate) fn digest(bytes: &[u8]) -> u64 {
    // SipHash with fixed keys: the same in every process, and not for adversaries to
    // collide usefully (a collision only costs a byte comparison).
    let mut h = std::hash::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// The prepared form of the dictionary `bytes` (whose [`digest`] is `digest`), from the cache
/// or prepared now. `None` if zstd cannot load the dictionary's entropy tables.
pub(crate) fn prepared(bytes: &[u8], digest: u64) -> Option<Arc<DDict<'static>>> {
    if let Some(found) = lock().get(bytes, digest) {
        return Some(found);
    }
    // Prepared outside the lock: another thread may prepare the same dictionary meanwhile,
    // and the second to finish replaces the first's copy.
    let ddict = Arc::new(DDict::try_create(bytes)?);
    let cost = ddict.sizeof() as u64 + bytes.len() as u64;
    let budget = BUDGET.load(Ordering::Relaxed);
    lock().insert(
        Entry {
            digest,
            bytes: bytes.into(),
            ddict: Arc::clone(&ddict),
            cost,
            used: 0,
        },
        budget,
    );
    Some(ddict)
}

fn lock() -> std::sync::MutexGuard<'static, Prepared> {
    CACHE.lock().unwrap_or_else(|e| e.into_inner())
}

struct Prepared {
    /// Few (the budget over ~31 KiB each): a linear search over digests is cheaper than a map.
    entries: Vec<Entry>,
    bytes: u64,
    clock: u64,
}

struct Entry {
    digest: u64,
    /// The dictionary's bytes (a copy, so that a cached entry keeps no footer alive).
    bytes: Box<[u8]>,
    ddict: Arc<DDict<'static>>,
    /// Bytes counted against the budget: the prepared form and the copy above.
    cost: u64,
    used: u64,
}

impl Prepared {
    fn get(&mut self, bytes: &[u8], digest: u64) -> Option<Arc<DDict<'static>>> {
        self.clock += 1;
        let clock = self.clock;
        let e = self
            .entries
            .iter_mut()
            .find(|e| e.digest == digest && *e.bytes == *bytes)?;
        e.used = clock;
        Some(Arc::clone(&e.ddict))
    }

    fn insert(&mut self, mut entry: Entry, budget: u64) {
        self.clock += 1;
        entry.used = self.clock;
        if let Some(k) = self
            .entries
            .iter()
            .position(|e| e.digest == entry.digest && e.bytes == entry.bytes)
        {
            let old = self.entries.swap_remove(k);
            self.bytes -= old.cost;
        }
        self.bytes += entry.cost;
        self.entries.push(entry);
        // The newest stays: a budget smaller than one dictionary still decodes.
        while self.bytes > budget && self.entries.len() > 1 {
            let Some(oldest) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k)
            else {
                break;
            };
            let gone = self.entries.swap_remove(oldest);
            self.bytes -= gone.cost;
        }
    }
}
