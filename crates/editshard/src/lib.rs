//! editshard: read and write editshard datasets anywhere they are stored.
//!
//! A dataset is a directory or prefix holding `manifest.json` and its shards, on a local
//! disk, behind `http(s)://` or in `s3://`. This crate is the library layer over the format
//! core ([`editshard_format`], re-exported here module by module):
//!
//! | module | what it holds |
//! |---|---|
//! | [`advice`] | what to do about an [`Error`]: the advice the command, the Python package and the viewer show |
//! | [`storage`] | [`Location`](storage::Location): local, HTTP and S3 (features `http`, `s3`), ranged reads, atomic puts |
//! | [`read`] | [`Dataset`](read::Dataset): by index and id, streams, shuffled resumable epochs, [`verify`](read::verify) |
//! | [`write`] | [`DatasetWriter`](write::DatasetWriter): shards rolled over at a size, manifest last |
//! | [`mirror`] | verified, resumable copies between locations, and subsets |
//! | [`mix`] | several datasets as one mixture, with each source's counts and licences |
//! | [`lock`] | one writer per destination (`convert`, `mirror`, `mix`, `repair`) |
//! | [`safe_dir`] | directories inside a destination, made and entered without following a link |
//! | [`repair`] | a new dataset from every intact record of a damaged one, and what was lost |
//! | [`probe`] | full image decoding, for `verify --decode` and conversion |
//! | [`record`], [`format`], [`shard`], [`manifest`] | the format core |
//!
//! Reading, from a local directory here (an `https://` or `s3://` URL works the same):
//!
//! ```
//! # fn main() -> editshard::Result<()> {
//! # use editshard::record::{Image, Kind, Record, Turn};
//! # let dir = tempfile::tempdir().unwrap();
//! # let img = Image::with_info(vec![1u8, 2, 3].into(), "image/png".into(), 1, 1);
//! # let mut w = editshard::write::DatasetWriter::create(dir.path())?;
//! # for i in 0..3 { w.append(&Record::new(format!("sft/{i}"), Kind::Sft, img.clone(), vec![Turn::new(img.clone())]))?; }
//! # w.finish()?;
//! use editshard::read::blocking::BlockingDataset;
//! use editshard::storage::StorageOptions;
//! let ds = BlockingDataset::open(dir.path().to_str().unwrap(), &StorageOptions::default())?;
//! let record = ds.get(1)?; // one ranged read, every byte checked
//! assert_eq!(record.id, "sft/1");
//! assert_eq!(ds.get_by_id("sft/2")?.unwrap().id, "sft/2");
//! # Ok(()) }
//! ```
//!
//! Writing: see [`write::DatasetWriter`].

pub use editshard_format::{
    Error, ErrorKind, Image, Kind, Provenance, Record, Result, Score, Turn,
};
pub use editshard_format::{
    crc64, error, format, hex, id_set, image_info, label, manifest, path, record, shard,
};

pub mod advice;
pub mod atomic;
pub mod lock;
pub mod mirror;
pub mod mix;
pub mod ownership;
pub mod probe;
pub mod read;
pub mod repair;
pub mod safe_dir;
pub mod storage;
pub mod units;
pub mod write;
mod writeback;

#[cfg(feature = "remote")]
pub mod net;
