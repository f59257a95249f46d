//! Shards: writing one ([`ShardWriter`]) and reading one, front to back with the sync
//! [`ShardReader`] or the async [`ShardDecoder`] (both drive the same state machine), or one
//! record at a time by index with [`RandomAccessShard`] (whose decoding half,
//! [`ShardView`], does no I/O and serves async readers too).

mod decoder;
mod random;
mod reader;
pub(crate) mod stream;
mod view;
pub(crate) mod writer;

pub use decoder::ShardDecoder;
pub use random::{RandomAccessShard, ReadAt};
pub use reader::ShardReader;
pub use stream::{ReadOptions, decode_group};
pub use view::ShardView;
pub use writer::{ShardStats, ShardSummary, ShardWriter, WriterOptions};
