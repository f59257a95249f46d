//! Reading datasets from any [`Location`](crate::storage::Location): random access by index
//! and id, sequential streaming, and shuffled, partitioned, resumable epochs.
//!
//! - [`Dataset`]: opens `manifest.json` (nothing is listed), caches shard footers, reads
//!   records with one ranged request each, batches with coalesced requests.
//! - [`Dataset::stream`]: whole shards front to back (the chunks of each body fed to a
//!   [`ShardDecoder`](crate::shard::ShardDecoder), zero-copy where a frame lies within one),
//!   the next shards prefetched in the background within a memory budget.
//! - [`Dataset::reader`]: an epoch in shuffled order ([`order`]), this consumer's share of it,
//!   with filters and projection applied before image bytes are fetched.
//! - [`MappedShardReader`]: one local shard file front to back through a memory map, zero-copy.
//! - [`blocking`]: the same as plain iterators, for code without an async runtime.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)] async fn main() -> editshard::Result<()> {
//! # use editshard::record::{Image, Kind, Record, Turn};
//! # let dir = tempfile::tempdir().unwrap();
//! # let mut w = editshard::write::DatasetWriter::create(dir.path())?;
//! # for i in 0..10u8 {
//! #     let img = Image::with_info(vec![i, 1, 2].into(), "image/png".into(), 1, 1);
//! #     w.append(&Record::new(format!("r/{i}"), Kind::Sft, img.clone(), vec![Turn::new(img)]))?;
//! # }
//! # w.finish()?;
//! use editshard::read::{Dataset, Partition, ReadPlan, ResumeState, Shuffle};
//! use editshard::storage::{Location, StorageOptions};
//! let location = Location::parse(dir.path().to_str().unwrap(), &StorageOptions::default())?;
//! let ds = Dataset::open(location).await?;
//! let state = ResumeState::new(42, 0);
//! let plan = ReadPlan::new(state)
//!     .shuffle(Shuffle::Full)
//!     .partition(Partition::rank(0, 2))
//!     .batch(2);
//! let mut batches = ds.reader(plan);
//! let mut seen = 0;
//! while let Some(batch) = batches.next_batch().await {
//!     seen += batch?.len();
//! }
//! assert_eq!(seen, 6); // rank 0 of 2 takes batches 0, 2 and 4 of five
//! // After 1 step of batch 2 on each of 2 ranks, positions 0..4 are done:
//! assert_eq!(state.after_steps(1, 2, 2).position, 4);
//! # Ok(()) }
//! ```

pub mod blocking;
mod chunked;
mod dataset;
mod fetch;
mod manifest;
mod mapped;
pub mod order;
mod plan;
mod select;
mod sequential;
mod shards;
pub mod verify;

pub use crate::label::{normalize_label, same_label};
pub use dataset::Dataset;
pub use fetch::{SkipFn, coalesce, log_skip};
pub use manifest::{
    find_manifest, load_id_filters, load_manifest, load_manifest_deferring_filters,
};
pub use mapped::MappedShardReader;
pub use order::{EpochOrder, Partition, ResumeState, Shuffle};
pub use plan::{PlanStream, ReadPlan};
pub use select::{Filter, Images, Role, roles};
pub use sequential::{RecordStream, StreamOptions};
pub use shards::{DatasetOptions, LoadedShard};
