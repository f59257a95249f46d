//! Reading datasets from any [`Location`](crate::storage::Location): random access by index
//! and id, sequential streaming, and shuffled, partitioned, resumable epochs.
//!
//! - [`Dataset`]: opens `manifest.json` (nothing is listed), caches shard footers, reads
//!   records with one ranged request each, batches with coalesced requests.
//! - [`Dataset::stream`]: whole shards front to back (tokio-util `FramedRead` over
//!   [`ShardDecoder`](crate::codec::ShardDecoder)), the next shards prefetched in the
//!   background within a memory budget.
//! - [`Dataset::reader`]: an epoch in shuffled order ([`order`]), this consumer's share of it,
//!   with filters and projection applied before image bytes are fetched.
//! - [`blocking`]: the same as plain iterators, for code without an async runtime.

pub mod blocking;
mod dataset;
mod fetch;
pub mod order;
mod plan;
mod select;
mod sequential;
pub mod verify;

pub use dataset::{Dataset, DatasetOptions, LoadedShard};
pub use fetch::{SkipFn, coalesce, log_skip};
pub use order::{EpochOrder, Partition, ResumeState, Shuffle};
pub use plan::{PlanStream, ReadPlan};
pub use select::{Filter, Images, Role, roles};
pub use sequential::{RecordStream, StreamOptions};
