//! Sequential streaming of whole shards, with background prefetch.
//!
//! One background task downloads the chosen shards in order, each as a stream of chunks.
//! Every chunk holds permits of a semaphore sized to the memory budget until the decoder has
//! consumed it, so at most about `prefetch_bytes` are buffered ahead of the reader (plus the
//! frame being decoded). The reader decodes each shard's chunks as they come, a frame that
//! lies within one chunk as a zero-copy slice of it ([`ChunkedSource`]). Downloading in order is what makes the budget deadlock-free: the chunk
//! the reader waits for is always the oldest one.
//!
//! Local shards are memory-mapped instead (unless `DatasetOptions::map_local` is off): the
//! background task brings each window of the map into memory on a blocking thread (so the
//! runtime never waits on the disk) and hands it on under the same budget, and the reader
//! decodes frames straight from the map, zero-copy ([`ShardDecoder::feed`]), instead of
//! copying every byte twice (a file read, then into the decoder's buffer).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::{BoxStream, Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::chunked::{ChunkedSource, FramePool};
use super::dataset::Dataset;
use super::fetch::{SkipFn, log_skip};
use super::mapped::MappedShardReader;
use super::order::Partition;
use super::select::{Filter, Images};
use crate::error::{Error, Result};
use crate::record::Record;
use crate::shard::ShardDecoder;

/// Options of [`Dataset::stream`].
#[derive(Clone)]
pub struct StreamOptions {
    /// Shards to read, in this order; `None` reads all in manifest order.
    pub shards: Option<Vec<usize>>,
    /// Bytes downloaded ahead of the reader at most (default 256 MiB).
    pub prefetch_bytes: u64,
    /// Log and skip damaged records instead of ending the stream with an error. After damage
    /// the rest of that shard is read record by record through its index, so only the
    /// damaged records are lost.
    pub skip_corrupt: bool,
    /// Where skipped records are reported; standard error by default.
    pub on_skip: Option<SkipFn>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            shards: None,
            prefetch_bytes: 256 << 20,
            skip_corrupt: false,
            on_skip: None,
        }
    }
}

impl StreamOptions {
    /// The shards a consumer reads when whole shards are dealt round-robin to the
    /// consumers of `partition` (for a shard-granular split; see [`Dataset::reader`] for a
    /// record-granular, resumable one).
    pub fn partition_shards(n_shards: usize, partition: &Partition) -> Vec<usize> {
        let consumers = partition.world_size.max(1) as usize * partition.workers.max(1) as usize;
        let me =
            partition.rank as usize * partition.workers.max(1) as usize + partition.worker as usize;
        (0..n_shards).filter(|s| s % consumers == me).collect()
    }
}

/// Permits are counted in KiB so that a u32 covers any budget.
const PERMIT_UNIT: u64 = 1024;

/// A downloaded chunk and its share of the memory budget, released when consumed.
pub(super) struct Budgeted {
    pub(super) bytes: Bytes,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Budgeted {
    /// A chunk outside any budget (tests).
    #[cfg(test)]
    pub(super) fn unbudgeted(bytes: Bytes) -> Budgeted {
        Budgeted {
            bytes,
            _permit: None,
        }
    }
}

pub(super) type ChunkRx = mpsc::UnboundedReceiver<Result<Budgeted>>;
/// What the background task announces for each shard: its chunks, and its map when local.
type Announced = (usize, ChunkRx, Option<Bytes>);

/// How much of a mapped shard is brought into memory ahead at a time.
const MAP_WINDOW: usize = 8 << 20;

/// Aborts the background task when the stream is dropped.
struct AbortOnDrop(tokio::task::AbortHandle);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A stream of records (see [`Dataset::stream`]).
pub struct RecordStream {
    inner: BoxStream<'static, Result<Record>>,
    _task: Option<AbortOnDrop>,
}

impl RecordStream {
    pub(crate) fn new(
        inner: BoxStream<'static, Result<Record>>,
        task: Option<tokio::task::AbortHandle>,
    ) -> Self {
        RecordStream {
            inner,
            _task: task.map(AbortOnDrop),
        }
    }
    pub(crate) fn failed(e: Error) -> Self {
        RecordStream::new(
            futures_util::stream::once(async move { Err(e) }).boxed(),
            None,
        )
    }
}

impl Stream for RecordStream {
    type Item = Result<Record>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

/// Downloads `shards` in order into per-shard chunk channels.
async fn produce(
    ds: Dataset,
    shards: Vec<usize>,
    budget: Arc<Semaphore>,
    max_permits: u32,
    announce: mpsc::Sender<Announced>,
) {
    for s in shards {
        let (tx, rx) = mpsc::unbounded_channel();
        let path = ds.manifest().shards[s].path.clone();
        // A local shard that cannot be mapped is streamed, which reports why it is unreadable.
        let map = match ds.options().map_local {
            true => ds.location().map(&path).await.ok().flatten(),
            false => None,
        };
        if announce.send((s, rx, map.clone())).await.is_err() {
            return; // the reader is gone
        }
        if let Some(map) = map {
            if !populate_windows(&map, &budget, max_permits, &tx).await {
                return;
            }
            continue;
        }
        let mut stream = match ds.location().get_stream(&path).await {
            Ok(stream) => stream,
            Err(e) => {
                let _ = tx.send(Err(e));
                continue;
            }
        };
        while let Some(item) = stream.next().await {
            let item = match item {
                Ok(bytes) => {
                    let want = bytes
                        .len()
                        .div_ceil(PERMIT_UNIT as usize)
                        .min(max_permits as usize) as u32;
                    let Ok(permit) = budget.clone().acquire_many_owned(want).await else {
                        return;
                    };
                    Ok(Budgeted {
                        bytes,
                        _permit: Some(permit),
                    })
                }
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if tx.send(item).is_err() || failed {
                break; // the reader dropped this shard (skipped after damage) or it failed
            }
        }
    }
}

/// Brings a mapped shard into memory window by window, each under the budget, and passes
/// each on once it is resident. False when the budget was closed (the stream is gone).
async fn populate_windows(
    map: &Bytes,
    budget: &Arc<Semaphore>,
    max_permits: u32,
    tx: &mpsc::UnboundedSender<Result<Budgeted>>,
) -> bool {
    let mut at = 0;
    while at < map.len() {
        let end = (at + MAP_WINDOW).min(map.len());
        let want = (end - at)
            .div_ceil(PERMIT_UNIT as usize)
            .min(max_permits as usize) as u32;
        let Ok(permit) = budget.clone().acquire_many_owned(want).await else {
            return false;
        };
        crate::storage::Location::populate(map, at..end).await;
        let chunk = Budgeted {
            bytes: map.slice(at..end),
            _permit: Some(permit),
        };
        if tx.send(Ok(chunk)).is_err() {
            return true; // the reader dropped this shard (skipped after damage)
        }
        at = end;
    }
    true
}

/// A mapped shard being decoded: frames are zero-copy slices of the map
/// ([`MappedShardReader`]), taken once the background task has made them resident.
struct MappedSource {
    frames: MappedShardReader,
    rx: ChunkRx,
    /// Read-ahead: windows made resident that reach past the frame last decoded, with their
    /// end offsets. Their permits are released once a frame ends at or past them.
    held: VecDeque<(usize, Budgeted)>,
    resident: usize,
}

impl MappedSource {
    async fn next(&mut self) -> Option<Result<Record>> {
        match self.step().await {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }

    async fn step(&mut self) -> Result<Option<Record>> {
        loop {
            if let Some(r) = self.frames.pop_ready() {
                return Ok(Some(r));
            }
            let Some(end) = self.frames.need_through()? else {
                return Ok(None);
            };
            // A window that ends inside the frame about to be decoded is that frame, not
            // read-ahead: its permits go back before the wait, and a window received while
            // waiting is kept only if it reaches past the frame. Holding them until the frame
            // was decoded deadlocked on a frame larger than the whole budget: the producer
            // waited for permits the reader held while the reader waited for its next window.
            // So a waiting reader holds nothing and the producer can always go on.
            while self.held.front().is_some_and(|(e, _)| *e <= end) {
                self.held.pop_front();
            }
            while self.resident < end {
                match self.rx.recv().await {
                    Some(Ok(chunk)) => {
                        self.resident += chunk.bytes.len();
                        if self.resident > end {
                            self.held.push_back((self.resident, chunk));
                        }
                    }
                    Some(Err(e)) => return Err(e),
                    None => return Err(self.frames.eof_error()),
                }
            }
            self.frames.feed_through(end)?;
        }
    }
}

enum Source {
    Chunked(Box<ChunkedSource>),
    Mapped(Box<MappedSource>),
}

struct Current {
    shard: usize,
    source: Source,
    yielded: usize,
}

struct State {
    ds: Dataset,
    announced: mpsc::Receiver<Announced>,
    current: Option<Current>,
    /// After damage: (shard, next record) still to read through the index.
    fallback: Option<(usize, usize)>,
    ready: VecDeque<Record>,
    skip: Option<SkipFn>,
    done: bool,
    /// Gathering buffers for frames that straddle chunks, reused shard after shard.
    frames: Arc<FramePool>,
}

/// Records read through the index per request batch after damage.
const FALLBACK_BATCH: usize = 64;

impl State {
    fn open(&self, shard: usize, rx: ChunkRx, map: Option<Bytes>) -> Current {
        let name = self
            .ds
            .location()
            .display_of(&self.ds.manifest().shards[shard].path);
        if let Some(map) = map {
            let source = MappedSource {
                frames: MappedShardReader::from_bytes(map, name, self.ds.options().read.clone()),
                rx,
                held: VecDeque::new(),
                resident: 0,
            };
            return Current {
                shard,
                source: Source::Mapped(Box::new(source)),
                yielded: 0,
            };
        }
        let decoder = ShardDecoder::with_options(self.ds.options().read.clone()).named(&name);
        Current {
            shard,
            source: Source::Chunked(Box::new(ChunkedSource::new(
                decoder,
                rx,
                name,
                self.frames.clone(),
            ))),
            yielded: 0,
        }
    }

    async fn next(&mut self) -> Option<Result<Record>> {
        loop {
            if let Some(r) = self.ready.pop_front() {
                return Some(Ok(r));
            }
            if self.done {
                return None;
            }
            if let Some((s, next)) = self.fallback {
                let n = self.ds.manifest().shards[s].records as usize;
                let end = (next + FALLBACK_BATCH).min(n);
                self.fallback = (end < n).then_some((s, end));
                let got = self
                    .ds
                    .select_in_shard(
                        s,
                        next..end,
                        Images::All,
                        &Filter::default(),
                        self.skip.as_ref(),
                    )
                    .await;
                match got {
                    Ok(records) => self.ready.extend(records.into_iter().flatten()),
                    Err(e) if e.is_corruption() && self.skip.is_some() => {
                        // The index itself is damaged: the rest of the shard is lost.
                        if let Some(log) = &self.skip {
                            log(&e);
                        }
                        self.fallback = None;
                    }
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                continue;
            }
            let Some(current) = self.current.as_mut() else {
                match self.announced.recv().await {
                    Some((s, rx, map)) => self.current = Some(self.open(s, rx, map)),
                    None => return None,
                }
                continue;
            };
            let next = match &mut current.source {
                Source::Chunked(chunks) => chunks.next().await,
                Source::Mapped(mapped) => mapped.next().await,
            };
            match next {
                Some(Ok(r)) => {
                    current.yielded += 1;
                    return Some(Ok(r));
                }
                None => {
                    // The shard was read to its verified end (trailer checked): it must hold
                    // the records the manifest lists, no fewer and no more.
                    let (s, yielded) = (current.shard, current.yielded as u64);
                    self.current = None;
                    let entry = &self.ds.manifest().shards[s];
                    if yielded != entry.records {
                        self.done = true;
                        return Some(Err(Error::malformed(format!(
                            "the shard holds {yielded} records but the manifest lists {}",
                            entry.records
                        ))
                        .in_shard(self.ds.location().display_of(&entry.path))));
                    }
                }
                Some(Err(e)) => {
                    let (shard, yielded) = (current.shard, current.yielded);
                    self.current = None;
                    match &self.skip {
                        Some(log) if e.is_corruption() => {
                            log(&e);
                            self.fallback = Some((shard, yielded));
                        }
                        _ => {
                            self.done = true;
                            return Some(Err(e));
                        }
                    }
                }
            }
        }
    }
}

impl Dataset {
    /// Streams the records of whole shards front to back, verifying every frame, with the
    /// next shards downloading in the background. Needs a tokio runtime.
    pub fn stream(&self, options: StreamOptions) -> RecordStream {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return RecordStream::failed(Error::invalid(
                "Dataset::stream needs a tokio runtime; use read::blocking outside one",
            ));
        };
        let n = self.manifest().shards.len();
        let shards = options.shards.clone().unwrap_or_else(|| (0..n).collect());
        if let Some(&bad) = shards.iter().find(|&&s| s >= n) {
            return RecordStream::failed(Error::invalid(format!(
                "shard #{bad} does not exist: the dataset has {n}"
            )));
        }
        let permits =
            (options.prefetch_bytes / PERMIT_UNIT).clamp(1, u64::from(u32::MAX >> 4)) as u32;
        let budget = Arc::new(Semaphore::new(permits as usize));
        let (announce, announced) = mpsc::channel(2);
        let task = handle.spawn(produce(self.clone(), shards, budget, permits, announce));
        let skip = options
            .skip_corrupt
            .then(|| options.on_skip.clone().unwrap_or_else(log_skip));
        let state = State {
            ds: self.clone(),
            announced,
            current: None,
            fallback: None,
            ready: VecDeque::new(),
            skip,
            done: false,
            frames: Arc::default(),
        };
        let stream = futures_util::stream::unfold(state, |mut state| async move {
            state.next().await.map(|item| (item, state))
        })
        .boxed();
        RecordStream::new(stream, Some(task.abort_handle()))
    }
}
