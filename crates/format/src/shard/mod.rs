//! Shards: writing one ([`ShardWriter`]) and reading one, front to back with the sync
//! [`ShardReader`] or the async [`ShardDecoder`] (both drive the same state machine), or one
//! record at a time by index with [`RandomAccessShard`] (whose decoding half,
//! [`ShardView`], does no I/O and serves async readers too); and the intact records of a
//! damaged one with [`salvage`], which resynchronises on the frame boundaries the shard's
//! structure vouches for.

mod decoder;
mod hasher;
mod image_hash;
mod options;
mod random;
mod reader;
pub mod salvage;
pub(crate) mod stats;
pub(crate) mod stream;
mod view;
pub(crate) mod writer;

pub use decoder::ShardDecoder;
pub use options::{ReadOptions, Verify};
pub use random::{RandomAccessShard, ReadAt};
pub use reader::ShardReader;
pub use salvage::{SalvageReport, salvage};
pub use stream::decode_group;
pub use view::ShardView;
pub use writer::{ShardStats, ShardSummary, ShardWriter, WriterOptions};
