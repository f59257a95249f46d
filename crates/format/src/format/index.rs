//! The index frame (the footer) and the absolute locations a random-access reader derives
//! from it.
//!
//! The index lists every frame of the shard in order with its length and type, and repeats
//! each group frame's table byte for byte. Offsets are not stored: they are the running sum of
//! frame lengths from the end of the header, so the index stays small and cannot disagree with
//! itself. A format 1.1 shard with a metadata dictionary has the dictionary repeated after
//! the frame entries, so a random-access reader has it without another read.

use std::collections::HashMap;
use std::ops::Range;

use bytes::Bytes;

use super::dict::Dictionary;
use super::group::GroupTable;
use super::header::{FrameHeader, Trailer};
use super::wire::{Cursor, crc32, put_varint};
use super::{
    CODEC_STORED, CODEC_ZSTD, CODEC_ZSTD_DICT, FRAME_DICTIONARY, FRAME_GROUP, FRAME_HEADER_LEN,
    FRAME_INDEX, HEADER_LEN, Limits, TRAILER_LEN, decode_block, encode_block,
};
use crate::error::{Error, Result};
use crate::record::Kind;

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
        let payload = decode_block(codec, c.rest(), limits.max_index_len, "index")
            .map_err(|e| e.at_offset(at))?;
        // Offsets inside a compressed payload do not exist in the file; report the payload's.
        let payload_base = if codec == CODEC_STORED { at + 1 } else { at };
        let mut p = Cursor::new(&payload, payload_base);
        let n = p.varint_in("index frame count", 0, limits.max_frames.into())?;
        let mut frames = Vec::new();
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
                Some(GroupTable::parse(&mut p, limits)?)
            } else {
                None
            };
            frames.push(IndexEntry {
                frame_len,
                frame_type,
                table,
            });
        }
        let dictionary = match dictionary_len {
            Some(len) => Some(Bytes::copy_from_slice(
                p.bytes("the index's copy of the dictionary", len as usize)?,
            )),
            None => None,
        };
        if codec == CODEC_ZSTD || codec == CODEC_STORED {
            p.finish("index")?;
        }
        Ok(IndexFrame { frames, dictionary })
    }
}

/// Where one record's pieces are in the shard file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLoc {
    pub id: String,
    pub kind: Kind,
    /// Index into [`ShardIndex::frames`].
    pub frame: u32,
    /// Absolute offset of the stored metadata block.
    pub meta_offset: u64,
    pub meta_len: u32,
    pub meta_crc: u32,
    pub meta_codec: u8,
    /// Range into [`ShardIndex::refs`]: the record's images in canonical order.
    pub refs: Range<u32>,
}

/// Where one stored image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLoc {
    pub offset: u64,
    pub len: u32,
    pub crc: u32,
}

/// Where one frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLoc {
    pub offset: u64,
    pub len: u64,
    pub frame_type: u8,
    /// For a group frame, where its table's encoding is in [`ShardIndex::tables`] (empty for
    /// other frames): a random read compares the frame's own table with it.
    pub table: (u32, u32),
}

impl FrameLoc {
    /// The frame's head: its header, type, flags and group table, up to where its data
    /// starts. A random read fetches it with the record to check the index against it.
    pub fn head_range(&self) -> Range<u64> {
        self.offset..self.offset + FRAME_HEADER_LEN as u64 + 2 + u64::from(self.table.1)
    }
}

/// The resolved index of one shard: every record, frame and image with absolute offsets.
#[derive(Debug, Clone)]
pub struct ShardIndex {
    pub trailer: Trailer,
    pub frames: Vec<FrameLoc>,
    pub records: Vec<RecordLoc>,
    pub blobs: Vec<BlobLoc>,
    /// Global blob numbers of all records' images, sliced by [`RecordLoc::refs`].
    pub refs: Vec<u32>,
    /// Every group table as the index encodes it (sliced by [`FrameLoc::table`]): the frame
    /// must hold the same bytes.
    pub tables: Vec<u8>,
    /// The shard's metadata dictionary (format 1.1), for records of codec 2.
    pub dictionary: Option<Dictionary>,
    ids: HashMap<String, u32>,
}

impl ShardIndex {
    /// Parses the footer: the index frame followed by the trailer. `footer` may start earlier
    /// than the index frame (a speculative read of the file's tail); `footer_offset` is the
    /// absolute offset of `footer[0]`, so `footer_offset + footer.len()` is the file length.
    pub fn parse_footer(footer: &[u8], footer_offset: u64, limits: &Limits) -> Result<ShardIndex> {
        if footer.len() < TRAILER_LEN {
            return Err(Error::truncated(format!(
                "a shard ends with a {TRAILER_LEN}-byte trailer; only {} bytes given",
                footer.len()
            ))
            .at_offset(footer_offset));
        }
        let trailer_at = footer_offset + (footer.len() - TRAILER_LEN) as u64;
        let trailer = Trailer::parse(&footer[footer.len() - TRAILER_LEN..], trailer_at)?;
        if trailer.index_offset < footer_offset {
            return Err(Error::invalid(format!(
                "the footer read starts at byte {footer_offset} but the index starts at {}",
                trailer.index_offset
            )));
        }
        let start = (trailer.index_offset - footer_offset) as usize;
        let frame = &footer[start..footer.len() - TRAILER_LEN];
        let header = FrameHeader::parse(frame, trailer.index_offset)?;
        if header.frame_len() != frame.len() as u64 {
            return Err(Error::malformed(format!(
                "the index frame header says {} bytes but the trailer says {}",
                header.frame_len(),
                frame.len()
            ))
            .at_offset(trailer.index_offset));
        }
        let body = &frame[FRAME_HEADER_LEN..];
        let actual = crc32(body);
        if actual != header.body_crc {
            return Err(Error::checksum(header.body_crc, actual).at_offset(trailer.index_offset));
        }
        let body_base = trailer.index_offset + FRAME_HEADER_LEN as u64;
        let index = IndexFrame::parse_body(body, body_base, limits)?;
        ShardIndex::resolve_with(index, trailer, limits)
    }

    /// Turns the frame list into absolute locations and checks that it adds up: the frames
    /// tile the file from the header to the index, and the record count matches the trailer.
    pub fn resolve(index: IndexFrame, trailer: Trailer) -> Result<ShardIndex> {
        Self::resolve_with(index, trailer, &Limits::DEFAULT)
    }

    /// [`Self::resolve`] under `limits`.
    pub fn resolve_with(
        index: IndexFrame,
        trailer: Trailer,
        limits: &Limits,
    ) -> Result<ShardIndex> {
        let at = trailer.index_offset;
        let dictionary = match index.dictionary {
            Some(bytes) => Some(
                Dictionary::parse(bytes, limits.max_dictionary_len).map_err(|e| e.at_offset(at))?,
            ),
            None => None,
        };
        let mut dictionary_seen = false;
        let mut out = ShardIndex {
            trailer,
            frames: Vec::with_capacity(index.frames.len()),
            records: Vec::new(),
            blobs: Vec::new(),
            refs: Vec::new(),
            tables: Vec::new(),
            dictionary,
            ids: HashMap::new(),
        };
        let mut offset = HEADER_LEN as u64;
        for (frame_no, entry) in index.frames.into_iter().enumerate() {
            let table_start = out.tables.len();
            if let Some(table) = &entry.table {
                table.encode(&mut out.tables);
            }
            out.frames.push(FrameLoc {
                offset,
                len: entry.frame_len,
                frame_type: entry.frame_type,
                // The payload is at most 256 MiB, so these fit.
                table: (table_start as u32, (out.tables.len() - table_start) as u32),
            });
            dictionary_seen |= entry.frame_type == FRAME_DICTIONARY;
            if let Some(table) = entry.table {
                if let Some(r) = table
                    .records
                    .iter()
                    .find(|r| r.meta_codec == CODEC_ZSTD_DICT && !dictionary_seen)
                {
                    return Err(Error::malformed(format!(
                        "record {:?} (frame {frame_no}, byte {offset}) uses the shard's \
                         dictionary (codec 2) but no dictionary frame precedes it",
                        r.id
                    ))
                    .at_offset(at));
                }
                let data_start = offset + FRAME_HEADER_LEN as u64 + 2 + table.encoded_len() as u64;
                if data_start + table.data_len() != offset + entry.frame_len {
                    return Err(Error::malformed(format!(
                        "index entry for frame {frame_no} (byte {offset}) does not add up: \
                         length {} but table and data need {}",
                        entry.frame_len,
                        data_start + table.data_len() - offset
                    ))
                    .at_offset(at));
                }
                let blob_base = out.blobs.len() as u32;
                for (b, rel) in table.blobs.iter().zip(table.blob_offsets()) {
                    out.blobs.push(BlobLoc {
                        offset: data_start + rel,
                        len: b.len,
                        crc: b.crc,
                    });
                }
                let meta_offsets = table.meta_offsets();
                for (r, rel) in table.records.into_iter().zip(meta_offsets) {
                    let first = out.refs.len() as u32;
                    out.refs.extend(r.refs.iter().map(|b| blob_base + b));
                    let number = out.records.len() as u32;
                    if out.ids.insert(r.id.clone(), number).is_some() {
                        return Err(Error::malformed(format!(
                            "record id {:?} appears twice in the shard",
                            r.id
                        ))
                        .at_offset(at));
                    }
                    out.records.push(RecordLoc {
                        id: r.id,
                        kind: r.kind,
                        frame: frame_no as u32,
                        meta_offset: data_start + rel,
                        meta_len: r.meta_len,
                        meta_crc: r.meta_crc,
                        meta_codec: r.meta_codec,
                        refs: first..out.refs.len() as u32,
                    });
                }
            }
            offset = offset
                .checked_add(entry.frame_len)
                .ok_or_else(|| Error::malformed("frame lengths overflow").at_offset(at))?;
        }
        if offset != trailer.index_offset {
            return Err(Error::malformed(format!(
                "the indexed frames end at byte {offset} but the index starts at {}",
                trailer.index_offset
            ))
            .at_offset(at));
        }
        if out.records.len() as u64 != trailer.record_count {
            return Err(Error::malformed(format!(
                "the index lists {} records but the trailer says {}",
                out.records.len(),
                trailer.record_count
            ))
            .at_offset(at));
        }
        Ok(out)
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
    /// The memory this parsed index holds, estimated from its parts: what a cache of loaded
    /// footers should count. Several times the footer's bytes on disk, which are compressed
    /// and hold each id once (here it is held twice: in its record and in the id map).
    pub fn heap_bytes(&self) -> u64 {
        use std::mem::size_of;
        // A String's heap block, rounded up as allocators do, plus the map's per-entry share
        // (key, value, control byte, load factor).
        let id = |s: &String| s.capacity().div_ceil(16) as u64 * 16;
        let ids: u64 = self.records.iter().map(|r| 2 * id(&r.id)).sum();
        let map_entry = (size_of::<String>() + size_of::<u32>() + 1) as u64 * 8 / 7;
        size_of::<Self>() as u64
            + ids
            + self.records.capacity() as u64 * (size_of::<RecordLoc>() as u64 + map_entry)
            + (self.frames.capacity() * size_of::<FrameLoc>()) as u64
            + (self.blobs.capacity() * size_of::<BlobLoc>()) as u64
            + (self.refs.capacity() * size_of::<u32>()) as u64
            + self.tables.capacity() as u64
    }
    /// The record with this id, if the shard has it.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.ids.get(id).map(|&i| i as usize)
    }
    /// Global blob numbers of record `i`'s images, in canonical order.
    pub fn record_blobs(&self, i: usize) -> &[u32] {
        let r = &self.records[i].refs;
        &self.refs[r.start as usize..r.end as usize]
    }
    /// The encoded group table of frame `f` (empty for other frames).
    pub fn table_bytes(&self, f: usize) -> &[u8] {
        let (start, len) = self.frames[f].table;
        &self.tables[start as usize..(start + len) as usize]
    }
    /// The byte range covering record `i`'s frame head (see [`FrameLoc::head_range`]), its
    /// metadata and all its images: one ranged read fetches the whole record and what checks
    /// that the index describes it truthfully.
    pub fn record_span(&self, i: usize) -> Range<u64> {
        let r = &self.records[i];
        let mut start = self.frames[r.frame as usize].offset;
        let mut end = r.meta_offset + u64::from(r.meta_len);
        for &b in self.record_blobs(i) {
            let blob = self.blobs[b as usize];
            start = start.min(blob.offset);
            end = end.max(blob.offset + u64::from(blob.len));
        }
        start..end
    }
    /// Length of the footer (index frame and trailer): the bytes a reader fetches to open
    /// the shard.
    pub fn footer_len(&self) -> u64 {
        self.trailer.index_len + TRAILER_LEN as u64
    }
}
