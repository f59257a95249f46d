//! [`ShardDecoder`]: the shard format as a `tokio_util::codec::Decoder`, so any `AsyncRead`
//! becomes a `Stream` of records with `FramedRead`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use futures_util::StreamExt;
//! use tokio_util::codec::FramedRead;
//! use editshard_format::shard::ShardDecoder;
//! # let bytes = editshard_format::shard::ShardWriter::new(Vec::new()).unwrap().finish().unwrap().0;
//! let mut records = FramedRead::new(&bytes[..], ShardDecoder::new());
//! while let Some(record) = records.next().await {
//!     let record = record.unwrap();
//!     println!("{}", record.id);
//! }
//! # }
//! ```

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;

use crate::error::{Error, Result};
use crate::record::Record;
use crate::shard::options::ReadOptions;
use crate::shard::stream::StreamState;

/// How much buffer to reserve at once while a large frame arrives. Reserving the whole frame
/// up front would let a corrupt length field allocate a gigabyte before any byte arrived.
const RESERVE_STEP: usize = 8 << 20;

pub struct ShardDecoder {
    state: StreamState,
    ready: VecDeque<Record>,
    name: Option<String>,
}

impl ShardDecoder {
    pub fn new() -> Self {
        Self::with_options(ReadOptions::default())
    }
    pub fn with_options(options: ReadOptions) -> Self {
        ShardDecoder {
            state: StreamState::new(options),
            ready: VecDeque::new(),
            name: None,
        }
    }
    /// Names the shard in error messages.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// True once the trailer has been read.
    pub fn is_done(&self) -> bool {
        self.state.is_done()
    }

    /// Bytes the next [`feed`](Self::feed) takes; 0 once the trailer was read or after an
    /// error.
    pub fn need(&self) -> usize {
        self.state.need()
    }

    /// Absolute offset of the next byte expected.
    pub fn offset(&self) -> u64 {
        self.state.offset()
    }

    /// Consumes exactly [`need`](Self::need) bytes that are already in memory (a mapped
    /// file, a whole buffer) and returns the records they complete, as zero-copy slices of
    /// `chunk`: the bytes are checked, never copied. The `Decoder` side copies them into its
    /// buffer first.
    pub fn feed(&mut self, chunk: Bytes) -> Result<Vec<Record>> {
        self.feed_with_crc(chunk, None)
    }

    /// [`feed`](Self::feed) with the CRC32 of a frame body that the caller computed piece by
    /// piece as it gathered the bytes (while they were in cache), so it is not computed
    /// again. Only for a frame body ([`expects_body`](Self::expects_body)) when CRCs are
    /// checked ([`verifies`](Self::verifies)); `None` otherwise.
    pub fn feed_with_crc(&mut self, chunk: Bytes, body_crc: Option<u32>) -> Result<Vec<Record>> {
        if chunk.len() != self.state.need() {
            let e = Error::invalid(format!(
                "fed {} bytes where the decoder takes {}",
                chunk.len(),
                self.state.need()
            ))
            .at_offset(self.state.offset());
            return Err(self.name_error(e));
        }
        let body_crc = body_crc.filter(|_| self.state.expects_body());
        self.state
            .feed_with_crc(chunk, body_crc)
            .map_err(|e| self.name_error(e))
    }

    /// True when the next [`feed`](Self::feed) is a frame body (whose CRC a caller may compute
    /// as the bytes arrive, for [`feed_with_crc`](Self::feed_with_crc)).
    pub fn expects_body(&self) -> bool {
        self.state.expects_body()
    }

    /// True when frame CRCs are checked (any level but `Verify::None`).
    pub fn verifies(&self) -> bool {
        self.state.verifies()
    }

    /// The error for an input that ended before the shard did (named).
    pub fn eof_error(&self) -> Error {
        self.name_error(self.state.eof_error())
    }

    fn name_error(&self, e: Error) -> Error {
        match &self.name {
            Some(n) => e.in_shard(n.clone()),
            None => e,
        }
    }
}

impl Default for ShardDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for ShardDecoder {
    type Item = Record;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Record>> {
        loop {
            if let Some(r) = self.ready.pop_front() {
                return Ok(Some(r));
            }
            let need = self.state.need();
            if need == 0 {
                if self.state.is_done() && !src.is_empty() {
                    let e = Error::malformed(format!("{} bytes follow the trailer", src.len()))
                        .at_offset(self.state.offset());
                    src.clear();
                    return Err(self.name_error(e));
                }
                return Ok(None);
            }
            if src.len() < need {
                src.reserve((need - src.len()).min(RESERVE_STEP));
                return Ok(None);
            }
            let chunk = src.split_to(need).freeze();
            let records = self.state.feed(chunk).map_err(|e| self.name_error(e))?;
            self.ready.extend(records);
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Record>> {
        if let Some(r) = self.decode(src)? {
            return Ok(Some(r));
        }
        if !self.state.is_done() {
            let e = self.state.eof_error();
            src.clear();
            return Err(self.name_error(e));
        }
        Ok(None)
    }
}
