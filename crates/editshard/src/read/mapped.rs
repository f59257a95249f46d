//! [`MappedShardReader`]: a local shard file read front to back through a memory map, every
//! frame's CRC checked. Records are zero-copy slices of the map: the bytes go from the page
//! cache to the CRC and the caller without a `read` copy or a buffer, which is what lets a
//! checked read keep up with `cat` (that copies once). The format's
//! [`ShardReader`](crate::shard::ShardReader) reads any `Read` (pipes, HTTP bodies) and must
//! copy.
//!
//! ```
//! # fn main() -> editshard::Result<()> {
//! # use editshard::record::{Image, Kind, Record, Turn};
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("s.esd");
//! # let mut w = editshard::shard::ShardWriter::new(std::fs::File::create(&path).unwrap())?;
//! # let img = Image::with_info(vec![1u8, 2, 3].into(), "image/png".into(), 1, 1);
//! # w.append(&Record::new("a", Kind::Sft, img.clone(), vec![Turn::new(img)]))?;
//! # w.finish()?;
//! use editshard::read::MappedShardReader;
//! for record in MappedShardReader::open(&path, Default::default())? {
//!     println!("{}", record?.id);
//! }
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::path::Path;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::record::Record;
use crate::shard::{ReadOptions, ShardDecoder};

/// Records of one shard held whole in memory (a mapped file or a buffer), in order.
pub struct MappedShardReader {
    bytes: Bytes,
    pos: usize,
    decoder: ShardDecoder,
    ready: VecDeque<Record>,
    finished: bool,
    name: String,
}

impl MappedShardReader {
    /// Maps the shard file at `path` (see [`crate::storage::map_file`] for why mapping a
    /// shard is sound: shards are replaced by rename, never modified in place).
    pub fn open(path: &Path, options: ReadOptions) -> Result<Self> {
        let name = path.display().to_string();
        let bytes =
            crate::storage::map_file(path).map_err(|e| Error::from(e).in_shard(name.clone()))?;
        Ok(Self::from_bytes(bytes, name, options))
    }

    /// Reads the shard in `bytes`, named `name` in errors.
    pub fn from_bytes(bytes: Bytes, name: impl Into<String>, options: ReadOptions) -> Self {
        let name = name.into();
        MappedShardReader {
            bytes,
            pos: 0,
            decoder: ShardDecoder::with_options(options).named(name.clone()),
            ready: VecDeque::new(),
            finished: false,
            name,
        }
    }

    /// A record decoded and not yet taken.
    pub(crate) fn pop_ready(&mut self) -> Option<Record> {
        self.ready.pop_front()
    }

    /// How far into the bytes the decoder must be fed ([`Self::feed_through`]) to decode on;
    /// `None` at the end of the shard. `Dataset::stream` drives this too, waiting between
    /// the two calls until its mapped window is resident.
    pub(crate) fn need_through(&self) -> Result<Option<usize>> {
        let need = self.decoder.need();
        if need == 0 {
            if self.pos != self.bytes.len() {
                return Err(Error::malformed(format!(
                    "{} bytes follow the trailer",
                    self.bytes.len() - self.pos
                ))
                .in_shard(self.name.clone())
                .at_offset(self.pos as u64));
            }
            return Ok(None);
        }
        let end = self.pos.saturating_add(need);
        if end > self.bytes.len() {
            return Err(self.decoder.eof_error());
        }
        Ok(Some(end))
    }

    /// Feeds the decoder the bytes up to `end`, as [`Self::next_step`] asked: zero-copy.
    pub(crate) fn feed_through(&mut self, end: usize) -> Result<()> {
        let chunk = self.bytes.slice(self.pos..end);
        self.pos = end;
        let records = self.decoder.feed(chunk)?;
        self.ready.extend(records);
        Ok(())
    }

    /// The error for bytes that end before the shard does.
    pub(crate) fn eof_error(&self) -> Error {
        self.decoder.eof_error()
    }

    fn next_record(&mut self) -> Result<Option<Record>> {
        loop {
            if let Some(r) = self.pop_ready() {
                return Ok(Some(r));
            }
            let Some(end) = self.need_through()? else {
                return Ok(None);
            };
            self.feed_through(end)?;
        }
    }
}

impl Iterator for MappedShardReader {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        if self.finished {
            return None;
        }
        match self.next_record() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.finished = true;
                None
            }
            Err(e) => {
                self.finished = true;
                Some(Err(e))
            }
        }
    }
}
