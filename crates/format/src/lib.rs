//! The editshard format core: the record model, the byte format of `spec/FORMAT.md`, the
//! shard writer and readers, and the manifest types. No I/O beyond `std::io::{Read, Write}`
//! and tokio-util's `Decoder`, no network, no image decoding: the layers above
//! (the `editshard` library, the `editshard` command) bring those.
//!
//! | module | what it holds |
//! |---|---|
//! | [`record`] | the data model: one [`Record`] type for every kind of row |
//! | [`format`] | frames, group tables, metadata, index and trailer, over byte slices |
//! | [`shard`] | [`ShardWriter`], [`ShardReader`] (sync), [`ShardDecoder`] (async), [`RandomAccessShard`] |
//! | [`id_set`] | ids of a whole dataset in bounded memory, for uniqueness checks |
//! | [`crc64`] | CRC-64/NVME of whole shards, in S3's text form |
//! | [`manifest`] | `manifest.json`: the shards of a dataset, their hashes and id filters |
//! | [`image_info`] | media type and pixel size from an image header |
//! | [`error`] | one error type that says what went wrong and where |
//!
//! Write a shard into memory, then read it back, front to back and by index:
//!
//! ```
//! use editshard_format::{Image, Kind, RandomAccessShard, Record, ShardReader, ShardWriter, Turn};
//! use bytes::Bytes;
//!
//! let source = Image::with_info(Bytes::from_static(b"source bytes"), "image/jpeg".into(), 4, 3);
//! let edit = Image::with_info(Bytes::from_static(b"edited bytes"), "image/png".into(), 4, 3);
//! let mut turn = Turn::new(edit);
//! turn.instruction = Some("Make the sky purple".into());
//! let record = Record::new("sft/1.png", Kind::Sft, source, vec![turn]);
//!
//! let mut writer = ShardWriter::new(Vec::new())?;
//! writer.append(&record)?;
//! let (shard, summary) = writer.finish()?;
//! assert_eq!(summary.records, 1);
//!
//! // Sequentially, every frame's CRC checked:
//! let records: Vec<Record> = ShardReader::new(&shard[..]).collect::<Result<_, _>>()?;
//! assert_eq!(records, vec![record.clone()]);
//!
//! // By index, one ranged read per record:
//! let shard = RandomAccessShard::open(Bytes::from(shard), "in-memory")?;
//! assert_eq!(shard.get(0)?, record);
//! # Ok::<(), editshard_format::Error>(())
//! ```

pub mod crc64;
pub mod error;
pub mod format;
pub mod hex;
pub mod id_set;
pub mod image_info;
pub mod label;
pub mod manifest;
pub mod path;
pub mod record;
pub mod shard;

pub use error::{Error, ErrorKind, Result};
pub use manifest::Manifest;
pub use record::{Image, Kind, Provenance, Record, Score, Turn};
pub use shard::{RandomAccessShard, ReadOptions, ShardDecoder, ShardReader, ShardWriter, Verify};
