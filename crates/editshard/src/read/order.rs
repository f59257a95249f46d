//! The order records are read in during an epoch, and who reads which.
//!
//! An epoch is a sequence of *positions* `0..N` (N = records in the dataset); an
//! [`EpochOrder`] maps each position to a record, as a pure function of the dataset's shard
//! sizes, the [`Shuffle`], the seed and the epoch. Consumers (ranks, and data-loader workers
//! within a rank) take *batches* of consecutive positions round-robin, so every position is
//! read by exactly one consumer. The [`ResumeState`] is the number of positions consumed: it
//! does not mention workers or ranks, so a job may restart with different counts.
//!
//! ```
//! use editshard::read::order::{EpochOrder, Partition, Shuffle};
//! let order = EpochOrder::new(&[5, 3], Shuffle::Full, 42, 0);
//! let mut seen: Vec<u64> = (0..order.len()).map(|p| order.record_at(p)).collect();
//! seen.sort();
//! assert_eq!(seen, (0..8).collect::<Vec<_>>());
//! // Two workers, batches of 2 positions: worker 0 gets 0..2, 4..6; worker 1 gets 2..4, 6..8.
//! let w1: Vec<_> = Partition::single().with_worker(1, 2).batches(0, 8, 2).collect();
//! assert_eq!(w1, vec![2..4, 6..8]);
//! ```

use std::ops::Range;

use crate::error::{Error, Result};

/// How an epoch's records are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shuffle {
    /// Dataset order: shard by shard, record by record.
    #[default]
    None,
    /// A uniformly mixed permutation of all records, different per (seed, epoch).
    Full,
    /// Shards in shuffled order, windows of `window` consecutive records in shuffled order
    /// within each shard, records shuffled within each window: reads stay sequential within
    /// a window (one coalesced request) at the cost of a weaker mix.
    Block { window: u32 },
}

/// Where a (possibly restarted) epoch stands: a few integers, independent of how many ranks
/// and workers read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResumeState {
    pub seed: u64,
    pub epoch: u64,
    /// Positions `0..position` of the epoch have been consumed; no later one has.
    pub position: u64,
}

impl ResumeState {
    pub fn new(seed: u64, epoch: u64) -> ResumeState {
        ResumeState {
            seed,
            epoch,
            position: 0,
        }
    }

    /// The state after every rank took `steps` more batches of `batch` positions in lockstep
    /// (the usual synchronous data-parallel loop; workers within a rank take turns, so their
    /// number does not matter).
    pub fn after_steps(self, steps: u64, world_size: u32, batch: u64) -> ResumeState {
        let consumed = steps
            .saturating_mul(u64::from(world_size.max(1)))
            .saturating_mul(batch.max(1));
        ResumeState {
            position: self.position.saturating_add(consumed),
            ..self
        }
    }

    /// The start of the next epoch.
    pub fn next_epoch(self) -> ResumeState {
        ResumeState {
            seed: self.seed,
            epoch: self.epoch + 1,
            position: 0,
        }
    }
}

/// Which share of an epoch this consumer reads: rank `rank` of `world_size`, and within the
/// rank worker `worker` of `workers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub rank: u32,
    pub world_size: u32,
    pub worker: u32,
    pub workers: u32,
}

impl Default for Partition {
    fn default() -> Self {
        Partition::single()
    }
}

impl Partition {
    /// Everything, read by one consumer.
    pub fn single() -> Partition {
        Partition {
            rank: 0,
            world_size: 1,
            worker: 0,
            workers: 1,
        }
    }
    pub fn rank(rank: u32, world_size: u32) -> Partition {
        Partition {
            rank,
            world_size,
            ..Partition::single()
        }
    }
    pub fn with_worker(self, worker: u32, workers: u32) -> Partition {
        Partition {
            worker,
            workers,
            ..self
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.world_size == 0 || self.rank >= self.world_size {
            return Err(Error::invalid(format!(
                "rank {} of world size {}: need 0 <= rank < world size",
                self.rank, self.world_size
            )));
        }
        if self.workers == 0 || self.worker >= self.workers {
            return Err(Error::invalid(format!(
                "worker {} of {}: need 0 <= worker < workers",
                self.worker, self.workers
            )));
        }
        Ok(())
    }

    /// This consumer's batches of positions in `start..total`, in the order it reads them.
    ///
    /// Global batch `b` (positions `start + b*batch ..`) goes to rank `b % world_size`; a
    /// rank's `j`-th batch goes to worker `j % workers`. So when every rank has consumed `s`
    /// batches, taking its workers in turn, exactly the global batches `0..s*world_size` are
    /// done, whatever the number of workers: see [`ResumeState::after_steps`].
    pub fn batches(
        &self,
        start: u64,
        total: u64,
        batch: u64,
    ) -> impl Iterator<Item = Range<u64>> + use<> {
        let batch = batch.max(1);
        let (r, world) = (u64::from(self.rank), u64::from(self.world_size.max(1)));
        let (w, workers) = (u64::from(self.worker), u64::from(self.workers.max(1)));
        (0u64..)
            .map(move |k| {
                let b = (k * workers + w) * world + r;
                let first = b.checked_mul(batch).and_then(|o| o.checked_add(start));
                first.map(|f| f..f.saturating_add(batch).min(total))
            })
            .take_while(move |range| range.as_ref().is_some_and(|r| r.start < total))
            .flatten()
    }
}

/// The position-to-record mapping of one epoch.
#[derive(Debug, Clone)]
pub struct EpochOrder {
    total: u64,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Sequential,
    Full(Feistel),
    Block {
        /// Per block in reading order: first global record, length, and the permutation of
        /// its records.
        blocks: Vec<(u64, u64, Feistel)>,
        /// Position of each block's first record.
        starts: Vec<u64>,
    },
}

impl EpochOrder {
    /// `shard_records`: the record count of each shard in manifest order.
    pub fn new(shard_records: &[u64], shuffle: Shuffle, seed: u64, epoch: u64) -> EpochOrder {
        let total: u64 = shard_records.iter().sum();
        let key = mix(mix(seed) ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let kind = match shuffle {
            Shuffle::None => Kind::Sequential,
            Shuffle::Full => Kind::Full(Feistel::new(total, key)),
            Shuffle::Block { window } => {
                let window = u64::from(window.max(1));
                let mut firsts = Vec::with_capacity(shard_records.len());
                let mut at = 0;
                for &n in shard_records {
                    firsts.push(at);
                    at += n;
                }
                let shard_perm = Feistel::new(shard_records.len() as u64, key);
                let (mut blocks, mut starts, mut pos) = (Vec::new(), Vec::new(), 0u64);
                for s in 0..shard_records.len() as u64 {
                    let shard = shard_perm.apply(s) as usize;
                    let n = shard_records[shard];
                    let shard_key = mix(key ^ mix(shard as u64 + 1));
                    let windows = n.div_ceil(window);
                    let window_perm = Feistel::new(windows, shard_key);
                    for k in 0..windows {
                        let win = window_perm.apply(k);
                        let first = firsts[shard] + win * window;
                        let len = window.min(n - win * window);
                        starts.push(pos);
                        blocks.push((first, len, Feistel::new(len, mix(shard_key ^ mix(win)))));
                        pos += len;
                    }
                }
                Kind::Block { blocks, starts }
            }
        };
        EpochOrder { total, kind }
    }

    /// Positions in the epoch (= records in the dataset).
    pub fn len(&self) -> u64 {
        self.total
    }
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The global record index read at `position` (`position < len()`).
    pub fn record_at(&self, position: u64) -> u64 {
        debug_assert!(position < self.total);
        match &self.kind {
            Kind::Sequential => position,
            Kind::Full(f) => f.apply(position),
            Kind::Block { blocks, starts } => {
                let b = starts.partition_point(|&s| s <= position) - 1;
                let (first, _, perm) = &blocks[b];
                first + perm.apply(position - starts[b])
            }
        }
    }
}

/// SplitMix64's finaliser: a cheap, well-mixing bijection on u64.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A keyed pseudo-random permutation of `0..n` in O(1) memory: a balanced Feistel network on
/// the smallest even number of bits covering `n`, with cycle walking to stay below `n`
/// (the domain is under 4n, so a few steps at most on average).
#[derive(Debug, Clone)]
struct Feistel {
    n: u64,
    half_bits: u32,
    key: u64,
}

const ROUNDS: u64 = 4;

impl Feistel {
    fn new(n: u64, key: u64) -> Feistel {
        let bits = 64 - n.saturating_sub(1).leading_zeros();
        let half_bits = bits.div_ceil(2).max(1);
        Feistel { n, half_bits, key }
    }

    fn round(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut left, mut right) = (x >> self.half_bits, x & mask);
        for r in 0..ROUNDS {
            let f = mix(self.key ^ mix(right ^ (r << 56))) & mask;
            (left, right) = (right, left ^ f);
        }
        (left << self.half_bits) | right
    }

    fn apply(&self, i: u64) -> u64 {
        if self.n <= 1 {
            return i;
        }
        let mut x = self.round(i);
        while x >= self.n {
            x = self.round(x);
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feistel_is_a_permutation() {
        for n in [0u64, 1, 2, 3, 7, 64, 100, 1000, 4097] {
            let f = Feistel::new(n, 99);
            let mut v: Vec<u64> = (0..n).map(|i| f.apply(i)).collect();
            v.sort_unstable();
            assert_eq!(v, (0..n).collect::<Vec<_>>(), "n={n}");
        }
    }
}
