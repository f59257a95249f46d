//! [`Dataset::reader`]: one consumer's share of an epoch, in shuffled order, filtered and
//! projected, fetched ahead in the background.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::stream::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::dataset::Dataset;
use super::fetch::{SkipFn, fetch_records, log_skip};
use super::order::{EpochOrder, Partition, ResumeState, Shuffle};
use super::select::{Filter, Images};
use crate::error::{Error, Result};
use crate::record::Record;

/// What one consumer reads of an epoch, and how.
#[derive(Clone)]
pub struct ReadPlan {
    /// Seed, epoch and the position to start from.
    pub resume: ResumeState,
    pub shuffle: Shuffle,
    pub partition: Partition,
    /// Positions per batch: the unit dealt to consumers, fetched together, and counted by
    /// [`ResumeState::after_steps`]. A batch holds fewer records when some are filtered out.
    pub batch: u64,
    pub filter: Filter,
    pub images: Images,
    /// Log and skip damaged records instead of failing.
    pub skip_corrupt: bool,
    pub on_skip: Option<SkipFn>,
    /// Batches fetched ahead of the reader.
    pub prefetch_batches: usize,
    /// Bound on the bytes of batches fetched ahead and not yet taken by the reader; a single
    /// batch larger than this is fetched alone.
    pub prefetch_bytes: u64,
}

impl Default for ReadPlan {
    fn default() -> Self {
        ReadPlan {
            resume: ResumeState::default(),
            shuffle: Shuffle::None,
            partition: Partition::single(),
            batch: 64,
            filter: Filter::default(),
            images: Images::All,
            skip_corrupt: false,
            on_skip: None,
            prefetch_batches: 4,
            prefetch_bytes: 256 << 20,
        }
    }
}

impl ReadPlan {
    pub fn new(resume: ResumeState) -> ReadPlan {
        ReadPlan {
            resume,
            ..ReadPlan::default()
        }
    }
    pub fn shuffle(mut self, shuffle: Shuffle) -> Self {
        self.shuffle = shuffle;
        self
    }
    pub fn partition(mut self, partition: Partition) -> Self {
        self.partition = partition;
        self
    }
    pub fn batch(mut self, batch: u64) -> Self {
        self.batch = batch.max(1);
        self
    }
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }
    pub fn images(mut self, images: Images) -> Self {
        self.images = images;
        self
    }
    pub fn skip_corrupt(mut self, on: bool) -> Self {
        self.skip_corrupt = on;
        self
    }
}

/// A fetched batch and its share of the prefetch budget.
type Delivery = Result<(Vec<Record>, OwnedSemaphorePermit)>;

/// One consumer's records of an epoch, batch by batch (see [`Dataset::reader`]).
pub struct PlanStream {
    rx: Option<mpsc::Receiver<Delivery>>,
    current: VecDeque<Record>,
    /// The budget `current` holds, returned when it has all been handed out.
    current_permit: Option<OwnedSemaphorePermit>,
    batches: u64,
    failed: Option<Error>,
    _task: Option<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::AbortHandle);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl PlanStream {
    fn failed(e: Error) -> PlanStream {
        PlanStream {
            rx: None,
            current: VecDeque::new(),
            current_permit: None,
            batches: 0,
            failed: Some(e),
            _task: None,
        }
    }

    /// The records of this consumer's next batch of positions (possibly fewer than `batch`,
    /// or none, when records are filtered out); `None` at the end of the epoch. Mixing this
    /// with record-wise polling returns the rest of a partly consumed batch first.
    pub async fn next_batch(&mut self) -> Option<Result<Vec<Record>>> {
        if !self.current.is_empty() {
            self.current_permit = None;
            return Some(Ok(self.current.drain(..).collect()));
        }
        self.current_permit = None;
        if let Some(e) = self.failed.take() {
            return Some(Err(e));
        }
        let item = self.rx.as_mut()?.recv().await;
        match item {
            // Handed over: the caller's memory now, no longer the reader's budget.
            Some(Ok((batch, _permit))) => {
                self.batches += 1;
                Some(Ok(batch))
            }
            Some(Err(e)) => {
                self.rx = None;
                Some(Err(e))
            }
            None => None,
        }
    }

    /// Batches this consumer has received so far.
    pub fn batches_read(&self) -> u64 {
        self.batches
    }
}

impl Stream for PlanStream {
    type Item = Result<Record>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(r) = self.current.pop_front() {
                return Poll::Ready(Some(Ok(r)));
            }
            // The batch has been handed out record by record: its budget goes back.
            self.current_permit = None;
            if let Some(e) = self.failed.take() {
                return Poll::Ready(Some(Err(e)));
            }
            let Some(rx) = self.rx.as_mut() else {
                return Poll::Ready(None);
            };
            match rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.rx = None;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(e))) => {
                    self.rx = None;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok((batch, permit)))) => {
                    self.batches += 1;
                    self.current.extend(batch);
                    self.current_permit = Some(permit);
                }
            }
        }
    }
}

const PERMIT_UNIT: u64 = 1024;

impl Dataset {
    /// This consumer's share of an epoch: positions from `plan.resume.position` on, in the
    /// order of `plan.shuffle`, dealt in batches as [`Partition::batches`] describes, with
    /// the filter and projection applied before image bytes are fetched. Batches are fetched
    /// `prefetch_batches` ahead in the background. Needs a tokio runtime.
    pub fn reader(&self, plan: ReadPlan) -> PlanStream {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return PlanStream::failed(Error::invalid(
                "Dataset::reader needs a tokio runtime; use read::blocking outside one",
            ));
        };
        if let Err(e) = plan.partition.validate() {
            return PlanStream::failed(e);
        }
        let counts: Vec<u64> = self.manifest().shards.iter().map(|s| s.records).collect();
        let order = Arc::new(EpochOrder::new(
            &counts,
            plan.shuffle,
            plan.resume.seed,
            plan.resume.epoch,
        ));
        let ahead = plan.prefetch_batches.max(1);
        let total_permits = (plan.prefetch_bytes / PERMIT_UNIT).clamp(1, u64::from(u32::MAX >> 4));
        let budget = Arc::new(Semaphore::new(total_permits as usize));
        let skip = plan
            .skip_corrupt
            .then(|| plan.on_skip.clone().unwrap_or_else(log_skip));
        let batches = plan
            .partition
            .batches(plan.resume.position, order.len(), plan.batch);
        let ds = self.clone();
        let plan = Arc::new(plan);
        // Memory bound: a batch takes permits for its bytes (all of the budget if it is
        // larger) before it is fetched, and returns them when the reader takes it. Batches
        // size themselves and ask for permits one after another, in batch order, and tokio's
        // semaphore grants them in the order asked: a batch waits only for batches before it,
        // which the reader takes in order, so none waits on one queued behind it. Then up to
        // `ahead` sized batches are fetched at once.
        let sizing_ds = self.clone();
        let sized = futures_util::stream::iter(batches).then(move |positions| {
            let (ds, order, budget) = (sizing_ds.clone(), order.clone(), budget.clone());
            async move {
                let wants = positions
                    .map(|p| {
                        ds.locate(order.record_at(p))
                            .ok_or_else(|| Error::bug("position out of range"))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let mut planned = 0u64;
                for &(s, local) in &wants {
                    let span = ds.shard(s).await?.index().record_span(local);
                    planned += span.end - span.start;
                }
                let permits = (planned / PERMIT_UNIT).clamp(1, total_permits) as u32;
                let permit = budget
                    .acquire_many_owned(permits)
                    .await
                    .map_err(|_| Error::invalid("reader closed"))?;
                Ok::<_, Error>((wants, permit))
            }
        });
        let fetches = sized.map(move |sized| {
            let (ds, plan, skip) = (ds.clone(), plan.clone(), skip.clone());
            async move {
                let (wants, permit) = sized?;
                let records =
                    fetch_records(&ds.inner, &wants, plan.images, &plan.filter, skip.as_ref())
                        .await?;
                Ok((records.into_iter().flatten().collect::<Vec<_>>(), permit))
            }
        });
        let (tx, rx) = mpsc::channel(1);
        let task = handle.spawn(async move {
            let mut fetches = std::pin::pin!(fetches.buffered(ahead));
            while let Some(batch) = fetches.next().await {
                // The permit travels with the batch: batches in the channel, and the one the
                // consumer is handing out record by record, count against the budget too.
                let failed = batch.is_err();
                if tx.send(batch).await.is_err() || failed {
                    break;
                }
            }
        });
        PlanStream {
            rx: Some(rx),
            current: VecDeque::new(),
            current_permit: None,
            batches: 0,
            failed: None,
            _task: Some(AbortOnDrop(task.abort_handle())),
        }
    }
}
