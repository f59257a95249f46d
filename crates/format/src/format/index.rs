//! The index frame (the footer) and the absolute locations a random-access reader derives
//! from it.
//!
//! The index lists every frame of the shard in order with its length and type, and repeats
//! each group frame's table byte for byte. Offsets are not stored: they are the running sum of
//! frame lengths from the end of the header, so the index stays small and cannot disagree with
//! itself. A format 1.1 shard with a metadata dictionary has the dictionary repeated after
//! the frame entries, so a random-access reader has it without another read.

use std::borrow::Cow;
use std::ops::Range;

use bytes::Bytes;

use super::group::GroupTable;
use super::wire::{Cursor, put_varint};
use super::{
    CODEC_STORED, CODEC_ZSTD, FRAME_DICTIONARY, FRAME_GROUP, FRAME_HEADER_LEN, FRAME_INDEX, Limits,
    decode_block, encode_block,
};
use crate::error::{Error, Result};

pub use super::shard_index::{BlobLoc, FrameLoc, IndexMemory, RecordLoc, ShardIndex};

/// One frame as the index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Frame length, header included.
    pub frame_len: u64,
    pub frame_type: u8,
    /// The group table, for group frames.
    pub table: Option<GroupTable>,
}

impl IndexEntry {
    /// Appends the entry as the index payload holds it.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.frame_len);
        out.push(self.frame_type);
        if let Some(table) = &self.table {
            table.encode(out);
        }
    }
}

/// The decoded payload of the index frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexFrame {
    pub frames: Vec<IndexEntry>,
    /// The dictionary frame's dictionary, repeated byte for byte (format 1.1), when the shard
    /// has one. It follows the frame entries, so that a 1.0 reader meets the group tables'
    /// codec 2 (an "unsupported codec" error) rather than bytes it cannot place.
    pub dictionary: Option<Bytes>,
}

impl IndexFrame {
    /// Encodes the payload: the frame count, each frame's entry, then the dictionary if any.
    pub fn encode_payload(&self) -> Vec<u8> {
        let mut payload = Vec::new();
        put_varint(&mut payload, self.frames.len() as u64);
        for f in &self.frames {
            f.encode(&mut payload);
        }
        if let Some(d) = &self.dictionary {
            payload.extend_from_slice(d);
        }
        payload
    }

    /// Encodes the whole index frame body (type, flags, codec, payload).
    pub fn encode_body(&self, level: i32) -> Vec<u8> {
        let (codec, stored) = encode_block(&self.encode_payload(), level);
        let mut body = Vec::with_capacity(stored.len() + 3);
        body.extend_from_slice(&[FRAME_INDEX, 0, codec]);
        body.extend_from_slice(&stored);
        body
    }

    /// Parses an index frame body. `base` is the absolute offset of the body.
    pub fn parse_body(body: &[u8], base: u64, limits: &Limits) -> Result<IndexFrame> {
        let body = IndexBody::open(body, base, limits)?;
        let mut frames = Vec::new();
        let dictionary = body.walk(
            limits,
            |c| GroupTable::parse(c, limits),
            |entry| {
                frames.push(IndexEntry {
                    frame_len: entry.frame_len,
                    frame_type: entry.frame_type,
                    table: entry.table.map(|t| t.located),
                });
                Ok(())
            },
        )?;
        let dictionary = dictionary.map(|range| Bytes::copy_from_slice(&body.payload[range]));
        Ok(IndexFrame { frames, dictionary })
    }
}

/// An index frame body whose type is checked and whose payload is decompressed.
pub(crate) struct IndexBody<'a> {
    /// The payload: borrowed from the body when stored, else decompressed.
    pub payload: Cow<'a, [u8]>,
    /// The absolute offset reported for payload position 0: the file's, when stored;
    /// otherwise the codec byte's (offsets inside a compressed payload do not exist in the
    /// file).
    pub base: u64,
    codec: u8,
}

/// One frame entry of an index payload, as [`IndexBody::walk`] meets it.
pub(crate) struct WalkedEntry<T> {
    pub frame_len: u64,
    pub frame_type: u8,
    /// For a group frame: what the walk's table parser made of its table, and the payload
    /// positions of the table's bytes.
    pub table: Option<WalkedTable<T>>,
}

pub(crate) struct WalkedTable<T> {
    pub located: T,
    pub span: Range<usize>,
}

impl<'a> IndexBody<'a> {
    /// Checks the frame type and decompresses the payload (within `max_index_len`).
    pub fn open(body: &'a [u8], base: u64, limits: &Limits) -> Result<IndexBody<'a>> {
        let mut c = Cursor::new(body, base);
        let frame_type = c.u8("frame type")?;
        if frame_type != FRAME_INDEX {
            return Err(Error::malformed(format!(
                "expected the index frame (type {FRAME_INDEX}), found type {frame_type}"
            ))
            .at_offset(base));
        }
        c.u8("frame flags")?;
        let at = c.offset();
        let codec = c.u8("index codec")?;
        if codec == CODEC_STORED {
            let rest = c.rest();
            if rest.len() > limits.max_index_len as usize {
                // What decode_block says of a stored block over the limit.
                decode_block(codec, rest, limits.max_index_len, "index")
                    .map_err(|e| e.at_offset(at))?;
            }
            return Ok(IndexBody {
                payload: Cow::Borrowed(rest),
                base: at + 1,
                codec,
            });
        }
        let payload = decode_block(codec, c.rest(), limits.max_index_len, "index")
            .map_err(|e| e.at_offset(at))?;
        Ok(IndexBody {
            payload: Cow::Owned(payload),
            base: at,
            codec,
        })
    }

    /// Parses the payload, checking every entry against `limits` (each group table with
    /// `table`, which must check it for consistency), and hands each frame entry to `entry`
    /// in order. Returns the payload positions of the dictionary's copy, when the index lists
    /// a dictionary frame.
    pub fn walk<'p, T>(
        &'p self,
        limits: &Limits,
        mut table: impl FnMut(&mut Cursor<'p>) -> Result<T>,
        mut entry: impl FnMut(WalkedEntry<T>) -> Result<()>,
    ) -> Result<Option<Range<usize>>> {
        let mut p = Cursor::new(&self.payload, self.base);
        let n = p.varint_in("index frame count", 0, limits.max_frames.into())?;
        let mut dictionary_len = None;
        for _ in 0..n {
            let frame_len = p.varint_in(
                "indexed frame length",
                FRAME_HEADER_LEN as u64 + 2,
                FRAME_HEADER_LEN as u64 + u64::from(limits.max_frame_len),
            )?;
            let at = p.offset();
            let frame_type = p.u8("indexed frame type")?;
            if frame_type == FRAME_DICTIONARY {
                let len = frame_len - FRAME_HEADER_LEN as u64 - 2;
                if dictionary_len.replace(len).is_some() {
                    return Err(Error::malformed(
                        "the index lists two dictionary frames; a shard has at most one",
                    )
                    .at_offset(at));
                }
                if len > u64::from(limits.max_dictionary_len) {
                    return Err(Error::limit(format!(
                        "metadata dictionary of {len} bytes; the limit is {}",
                        limits.max_dictionary_len
                    ))
                    .at_offset(at));
                }
            }
            let table = if frame_type == FRAME_GROUP {
                let start = p.position();
                let located = table(&mut p)?;
                Some(WalkedTable {
                    located,
                    span: start..p.position(),
                })
            } else {
                None
            };
            entry(WalkedEntry {
                frame_len,
                frame_type,
                table,
            })?;
        }
        let dictionary = match dictionary_len {
            Some(len) => {
                let start = p.position();
                p.bytes("the index's copy of the dictionary", len as usize)?;
                Some(start..p.position())
            }
            None => None,
        };
        if self.codec == CODEC_ZSTD || self.codec == CODEC_STORED {
            p.finish("index")?;
        }
        Ok(dictionary)
    }
}
