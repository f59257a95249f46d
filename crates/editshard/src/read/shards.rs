//! The shards of an open dataset, their footers loaded on first use and cached: what
//! [`Dataset`](super::Dataset) and the batch fetcher share. Loading a footer is one ranged
//! read; after it, a record's ranges are known without I/O ([`ShardView`]).
//!
//! The cache has a byte budget ([`DatasetOptions::footer_cache_bytes`]): when the footers
//! loaded exceed it, the least recently used are dropped (and loaded again if needed), so
//! memory stays bounded however many shards a reader touches. A footer in use stays alive
//! through its `Arc` until its user is done.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::OnceCell;

use crate::error::{Error, Result};
use crate::format::index::ShardIndex;
use crate::manifest::{IdFilters, Manifest};
use crate::shard::{ReadOptions, ShardView};
use crate::storage::Location;

/// How a [`Dataset`](super::Dataset) reads.
#[derive(Debug, Clone)]
pub struct DatasetOptions {
    /// CRC checks (on by default) and resource limits.
    pub read: ReadOptions,
    /// Ranges this close are fetched in one request. The default, 4 KiB, bridges the frame
    /// header and group table between consecutive groups (so adjacent records cost one
    /// request) but never an image; on high-latency storage a gap of a few hundred KiB
    /// trades bytes for fewer requests.
    pub coalesce_gap: u64,
    /// Largest merged request.
    pub max_request: u64,
    /// A record is fetched as its whole span (metadata to last image: one request) when that
    /// span holds at most this many bytes that belong to other records; otherwise its
    /// metadata and images are fetched as separate ranges.
    pub span_slack: u64,
    /// Requests in flight at once for one batch.
    pub concurrency: usize,
    /// Bytes of parsed shard footers kept loaded (their memory, as `ShardIndex::heap_bytes`
    /// counts it: about 150 bytes a record for the release's records, half the decompressed
    /// index, half the tables that locate its entries); the least recently used go beyond
    /// it. At least one footer is always kept. The default, 16 MiB, holds the footers of
    /// some 110,000 records: a reader's memory stays flat however large the dataset (with the
    /// process's 1 MiB of prepared metadata dictionaries, `format::prepared`), at the cost of
    /// loading a footer again (~0.25 ms for a shard of 556 records) when a random read comes
    /// back to a shard whose footer went. Raise it for random metadata reads over more
    /// records than it holds.
    pub footer_cache_bytes: u64,
    /// Local shards are memory-mapped (default): records are zero-copy slices of the page
    /// cache. Set to false to read them with `pread`s into fresh buffers instead, for shards
    /// that another program might truncate or rewrite in place while they are read (a mapped
    /// file that shrinks kills the reader with SIGBUS; editshard itself only ever replaces
    /// files by rename). Remote locations ignore it.
    pub map_local: bool,
}

impl Default for DatasetOptions {
    fn default() -> Self {
        DatasetOptions {
            read: ReadOptions::default(),
            coalesce_gap: 4 << 10,
            max_request: 64 << 20,
            // A record is one ranged read (the format's promise) unless the other records'
            // images between its pieces exceed this: rare, groups average a few MB.
            span_slack: 16 << 20,
            concurrency: 8,
            // Flat memory per reader (bench/README.md, "Reader memory"): a DataLoader worker
            // each, 64 on a node, must not hold a dataset's footers 64 times over.
            footer_cache_bytes: 16 << 20,
            map_local: true,
        }
    }
}

/// One shard whose footer is loaded.
pub struct LoadedShard {
    view: ShardView,
    path: String,
    /// The whole file, memory-mapped, for a local shard (see [`DatasetOptions::map_local`]).
    mapped: Option<Bytes>,
}

impl LoadedShard {
    pub fn index(&self) -> &ShardIndex {
        self.view.index()
    }
    /// Path relative to the dataset root.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// The shard's full name (URL or path) as used in messages.
    pub fn name(&self) -> &str {
        self.view.name()
    }
    /// Ranges and decoding for this shard's records (no I/O).
    pub fn view(&self) -> &ShardView {
        &self.view
    }
    /// The whole shard file memory-mapped, when it is local and mapping is on.
    pub fn mapped(&self) -> Option<&Bytes> {
        self.mapped.as_ref()
    }
}

/// Ranges at least this large are brought into memory on a blocking thread before they are
/// handed on, so that the decoder's CRC pass does not stall the runtime on a cold disk;
/// small ones (metadata, footers) are not worth the hop.
const POPULATE_MIN: u64 = 256 << 10;

/// The bytes of `range` of shard file `path`: a slice of its map when it is mapped (with the
/// error a ranged read of a short file gives), else one ranged read.
pub(crate) async fn read_range(
    location: &Location,
    path: &str,
    mapped: Option<&Bytes>,
    range: Range<u64>,
    name: &str,
) -> Result<Bytes> {
    let Some(map) = mapped else {
        return location.get_range(path, range).await;
    };
    let len = map.len() as u64;
    if range.start > range.end || range.end > len {
        return Err(Error::truncated(format!(
            "asked for bytes {}..{}, the file has {len}: the object is shorter than expected",
            range.start, range.end
        ))
        .in_shard(name.to_string())
        .at_offset(range.start.min(len)));
    }
    if range.end - range.start >= POPULATE_MIN {
        Location::populate(map, range.start as usize..range.end as usize).await;
    }
    Ok(map.slice(range.start as usize..range.end as usize))
}

pub(crate) struct Inner {
    pub location: Location,
    pub manifest: Arc<Manifest>,
    pub options: DatasetOptions,
    footers: Mutex<Footers>,
    /// Global index of each shard's first record.
    firsts: Vec<u64>,
    /// The id filters, read when a lookup by id first needs them (the manifest was parsed
    /// without them: they grow with the dataset); loaded once however many ask meanwhile.
    pub id_filters: OnceCell<Arc<IdFilters>>,
}

/// The footer cache: loaded footers with their cost and last use, and loads in flight (one
/// per shard, shared by every caller that asks meanwhile).
#[derive(Default)]
struct Footers {
    loaded: HashMap<usize, Cached>,
    loading: HashMap<usize, Arc<OnceCell<Arc<LoadedShard>>>>,
    bytes: u64,
    clock: u64,
}

struct Cached {
    shard: Arc<LoadedShard>,
    cost: u64,
    used: u64,
}

impl Footers {
    fn get(&mut self, s: usize) -> Option<Arc<LoadedShard>> {
        self.clock += 1;
        let clock = self.clock;
        self.loaded.get_mut(&s).map(|c| {
            c.used = clock;
            c.shard.clone()
        })
    }

    /// Keeps `shard`, then drops the least recently used others while over `budget`.
    fn insert(&mut self, s: usize, shard: Arc<LoadedShard>, cost: u64, budget: u64) {
        self.clock += 1;
        if let Some(old) = self.loaded.insert(
            s,
            Cached {
                shard,
                cost,
                used: self.clock,
            },
        ) {
            self.bytes -= old.cost;
        }
        self.bytes += cost;
        while self.bytes > budget && self.loaded.len() > 1 {
            let oldest = self
                .loaded
                .iter()
                .filter(|(k, _)| **k != s)
                .min_by_key(|(_, c)| c.used)
                .map(|(k, _)| *k);
            let Some(k) = oldest else { break };
            if let Some(gone) = self.loaded.remove(&k) {
                self.bytes -= gone.cost;
            }
        }
    }

    /// Footers loaded now, for tests and reports.
    fn len(&self) -> usize {
        self.loaded.len()
    }
}

impl Inner {
    pub fn new(location: Location, manifest: Arc<Manifest>, options: DatasetOptions) -> Inner {
        let mut firsts = Vec::with_capacity(manifest.shards.len());
        let mut at = 0u64;
        for s in &manifest.shards {
            firsts.push(at);
            at = at.saturating_add(s.records); // validated manifests cannot overflow
        }
        Inner {
            footers: Mutex::new(Footers::default()),
            location,
            manifest,
            options,
            firsts,
            id_filters: OnceCell::new(),
        }
    }

    /// The global index of shard `s`'s first record.
    pub fn first_of(&self, s: usize) -> u64 {
        self.firsts[s]
    }

    /// The shard with its footer loaded: one ranged read the first time, none after while
    /// it stays in the cache.
    pub async fn shard(self: &Arc<Self>, s: usize) -> Result<Arc<LoadedShard>> {
        if s >= self.manifest.shards.len() {
            return Err(Error::invalid(format!(
                "shard #{s} does not exist: the dataset has {}",
                self.manifest.shards.len()
            )));
        }
        let cell = {
            let mut footers = self.lock_footers();
            if let Some(loaded) = footers.get(s) {
                return Ok(loaded);
            }
            footers.loading.entry(s).or_default().clone()
        };
        // The footer is loaded by a task of its own, never inline: whoever starts the load
        // may stop being polled (a prefetching reader whose consumer is busy elsewhere waits
        // in a full channel), and every other caller waiting on this cell would wait with it.
        // A spawned task always runs to completion and fills the cell for all of them.
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            let loaded = cell.get_or_try_init(|| inner.load_shard(s)).await.cloned();
            let mut footers = inner.lock_footers();
            // The first caller to finish files it in the cache; a failed load is retried by
            // the next caller.
            if let Some(in_flight) = footers.loading.get(&s)
                && Arc::ptr_eq(in_flight, &cell)
            {
                footers.loading.remove(&s);
                if let Ok(shard) = &loaded {
                    // What the parsed index holds in memory (several times the footer's
                    // compressed bytes on disk, which the cache counted before).
                    let cost = shard.index().heap_bytes().saturating_add(256);
                    let budget = inner.options.footer_cache_bytes;
                    footers.insert(s, shard.clone(), cost, budget);
                }
            }
            loaded
        })
        .await
        .map_err(|e| Error::bug(format!("loading the footer of shard #{s} failed: {e}")))?
    }

    fn lock_footers(&self) -> std::sync::MutexGuard<'_, Footers> {
        self.footers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many footers are loaded now.
    pub fn footers_loaded(&self) -> usize {
        self.lock_footers().len()
    }

    /// What the loaded footers hold, as the cache counts it against its budget.
    pub fn footer_bytes(&self) -> u64 {
        self.lock_footers().bytes
    }

    async fn load_shard(&self, s: usize) -> Result<Arc<LoadedShard>> {
        let entry = &self.manifest.shards[s];
        let name = self.location.display_of(&entry.path);
        let limits = &self.options.read.limits;
        if entry.footer_length > u64::from(limits.max_index_len) + 64 {
            return Err(Error::limit(format!(
                "the manifest gives a footer of {} bytes; the limit is {}",
                entry.footer_length, limits.max_index_len
            ))
            .in_shard(name));
        }
        let mapped = if self.options.map_local {
            self.location.map(&entry.path).await?
        } else {
            None
        };
        let range = entry.footer_offset..entry.footer_offset.saturating_add(entry.footer_length);
        let footer = read_range(&self.location, &entry.path, mapped.as_ref(), range, &name).await?;
        // Over a mapped file, an index stored uncompressed is read in place.
        let view = ShardView::from_footer_shared(
            name.clone(),
            self.options.read.clone(),
            &footer,
            entry.footer_offset,
        )?;
        if view.len() as u64 != entry.records {
            return Err(Error::malformed(format!(
                "the shard's index lists {} records but the manifest says {}",
                view.len(),
                entry.records
            ))
            .in_shard(name));
        }
        Ok(Arc::new(LoadedShard {
            view,
            path: entry.path.clone(),
            mapped,
        }))
    }

    pub fn locate(&self, global: u64) -> Option<(usize, usize)> {
        if global >= self.manifest.records {
            return None;
        }
        let s = self
            .firsts
            .partition_point(|&f| f <= global)
            .checked_sub(1)?;
        Some((s, (global - self.firsts[s]) as usize))
    }
}
