//! [`ShardReader`]: reads a shard front to back from any `Read` (a file, a pipe, an HTTP
//! body), yielding records. No seeks: the footer is read last, and checked against the frames
//! that came before it.
//!
//! ```
//! use editshard_format::shard::ShardReader;
//! # let bytes = editshard_format::shard::ShardWriter::new(Vec::new()).unwrap().finish().unwrap().0;
//! for record in ShardReader::new(&bytes[..]) {
//!     let record = record.unwrap();
//!     println!("{} has {} turns", record.id, record.turns.len());
//! }
//! ```

use std::collections::VecDeque;
use std::io::Read;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::record::Record;
use crate::shard::options::ReadOptions;
use crate::shard::stream::StreamState;

pub struct ShardReader<R: Read> {
    input: R,
    state: StreamState,
    ready: VecDeque<Record>,
    name: Option<String>,
    finished: bool,
    /// The last frame body read. Records are zero-copy slices of it; once the caller has
    /// dropped them all, its allocation is reused for the next frame, which spares the page
    /// faults of a fresh multi-megabyte buffer per frame.
    recycle: Option<Bytes>,
    /// CRC32 of the chunk last read.
    chunk_crc: Option<u32>,
}

/// Size of the pieces a frame body is read and checksummed in.
const PIECE: usize = 256 << 10;

impl<R: Read> ShardReader<R> {
    pub fn new(input: R) -> Self {
        Self::with_options(input, ReadOptions::default())
    }
    pub fn with_options(input: R, options: ReadOptions) -> Self {
        ShardReader {
            input,
            state: StreamState::new(options),
            ready: VecDeque::new(),
            name: None,
            finished: false,
            recycle: None,
            chunk_crc: None,
        }
    }
    /// Names the shard in error messages.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    pub fn into_inner(self) -> R {
        self.input
    }

    fn fail(&mut self, e: Error) -> Error {
        self.finished = true;
        match &self.name {
            Some(n) => e.in_shard(n.clone()),
            None => e,
        }
    }

    /// Reads exactly `need` bytes. The buffer grows as bytes arrive (`read_to_end` on a
    /// `Take`), so a corrupt length cannot allocate more than the input really holds.
    fn read_chunk(&mut self, need: usize) -> Result<Option<Bytes>> {
        const SMALL: usize = 64;
        let reuse = if need > SMALL {
            self.recycle.take()
        } else {
            None
        };
        let mut buf = match reuse.map(Bytes::try_into_mut) {
            Some(Ok(unique)) => {
                let mut v = Vec::from(unique);
                v.clear();
                v
            }
            _ => Vec::new(),
        };
        buf.reserve(need.min(8 << 20));
        // Read in pieces and CRC each while it is still in cache: a second pass over a
        // multi-megabyte frame after the copy costs a fifth of the read time.
        let mut crc = crc32fast::Hasher::new();
        let checksum = self.state.expects_body() && self.state.verifies();
        while buf.len() < need {
            let start = buf.len();
            let piece = (need - start).min(PIECE) as u64;
            (&mut self.input).take(piece).read_to_end(&mut buf)?;
            if buf.len() == start {
                return Ok(None);
            }
            if checksum {
                crc.update(&buf[start..]);
            }
        }
        self.chunk_crc = Some(crc.finalize());
        let bytes = Bytes::from(buf);
        if need > SMALL {
            self.recycle = Some(bytes.clone());
        }
        Ok(Some(bytes))
    }

    fn next_record(&mut self) -> Result<Option<Record>> {
        loop {
            if let Some(r) = self.ready.pop_front() {
                return Ok(Some(r));
            }
            let need = self.state.need();
            if need == 0 {
                // The trailer was read: the input must end here.
                let mut probe = [0u8; 1];
                let n = loop {
                    match self.input.read(&mut probe) {
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        other => break other?,
                    }
                };
                if n != 0 {
                    return Err(
                        Error::malformed("bytes follow the trailer").at_offset(self.state.offset())
                    );
                }
                return Ok(None);
            }
            let body = self.state.expects_body() && self.state.verifies();
            let Some(chunk) = self.read_chunk(need)? else {
                return Err(self.state.eof_error());
            };
            let crc = self.chunk_crc.take().filter(|_| body);
            let records = self.state.feed_with_crc(chunk, crc)?;
            self.ready.extend(records);
        }
    }
}

impl<R: Read> Iterator for ShardReader<R> {
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
            Err(e) => Some(Err(self.fail(e))),
        }
    }
}
