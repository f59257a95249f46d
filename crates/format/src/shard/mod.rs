//! Shards: writing one ([`ShardWriter`]) and reading one, front to back with the sync
//! [`ShardReader`] or the async [`ShardDecoder`] (both drive the same state machine), or one
//! record at a time by index with [`RandomAccessShard`].

mod decoder;
mod random;
mod reader;
pub(crate) mod stream;
pub(crate) mod writer;

pub use decoder::ShardDecoder;
pub use random::{RandomAccessShard, ReadAt};
pub use reader::ShardReader;
pub use stream::{ReadOptions, decode_group};
pub use writer::{ShardStats, ShardSummary, ShardWriter, WriterOptions};
