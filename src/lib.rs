//! editshard: a verified, streamable, sharded container for text-guided image-editing
//! datasets such as Pico-Banana-400K.
//!
//! - [`record`]: the data model, one [`record::Record`] type for every kind of row.
//! - [`format`]: the byte format of `spec/FORMAT.md`, pure parsing and encoding.
//! - [`writer::ShardWriter`] writes a shard; [`dataset::DatasetWriter`] writes many, rolling
//!   over at a target size, and the [`manifest::Manifest`] that ties them together.
//! - [`reader::ShardReader`] (sync) and [`codec::ShardDecoder`] (async, tokio-util) read a
//!   shard front to back; [`random::RandomAccessShard`] reads single records by index or id.

pub mod cli;
pub mod codec;
pub mod convert;
pub mod dataset;
pub mod error;
pub mod export;
pub mod format;
pub mod manifest;
pub mod mirror;
pub mod net;
pub mod probe;
pub mod random;
pub mod read;
pub mod reader;
pub mod record;
pub mod storage;
pub mod stream;
pub mod writer;

pub use error::{Error, ErrorKind, Result};
pub use record::{Image, Kind, Provenance, Record, Score, Turn};
pub use stream::ReadOptions;
