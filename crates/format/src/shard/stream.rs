//! The one state machine that reads a shard front to back. The sync [`ShardReader`](super::ShardReader) and the
//! async [`ShardDecoder`](super::ShardDecoder) both drive it: they ask [`StreamState::need`] how many bytes the next
//! step takes, gather exactly that many, and [`StreamState::feed`] them in.

use std::collections::HashMap;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::group::GroupTable;
use crate::format::index::{IndexEntry, IndexFrame};
use crate::format::wire::{Cursor, crc32, put_varint};
use crate::format::{
    Dictionary, FRAME_DICTIONARY, FRAME_GROUP, FRAME_HEADER_LEN, FRAME_INDEX, FRAME_OPTIONAL_MIN,
    FrameHeader, HEADER_LEN, Limits, ShardHeader, TRAILER_LEN, Trailer, decode_block_with, meta,
};
use crate::record::Record;
use crate::shard::image_hash;
use crate::shard::options::ReadOptions;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Header,
    FrameHeader,
    Body(FrameHeader),
    Trailer,
    Done,
    Failed,
}

pub(crate) struct StreamState {
    options: ReadOptions,
    phase: Phase,
    /// Absolute offset of the next byte to be fed.
    offset: u64,
    /// Offset of the frame whose body is expected next.
    frame_offset: u64,
    records: u64,
    frames: u64,
    /// The index payload the frames seen so far call for, minus its leading frame count:
    /// the index frame must match it byte for byte.
    expected_index: Vec<u8>,
    index_offset: u64,
    /// The CRC of the body being fed, when the reader computed it already.
    body_crc: Option<u32>,
    /// Every id read so far and its record number: ids are unique within a shard. (The
    /// index the shard must end with repeats them all, so this is bounded by its limit.)
    ids: HashMap<String, u64>,
    /// The shard's metadata dictionary, once its frame was read (format 1.1).
    dictionary: Option<Dictionary>,
    /// The minor version in the shard's header.
    minor: u16,
}

impl StreamState {
    pub fn new(options: ReadOptions) -> Self {
        StreamState {
            options,
            phase: Phase::Header,
            offset: 0,
            frame_offset: 0,
            records: 0,
            frames: 0,
            expected_index: Vec::new(),
            index_offset: 0,
            body_crc: None,
            ids: HashMap::new(),
            dictionary: None,
            minor: 0,
        }
    }

    /// Bytes the next [`feed`](Self::feed) takes; 0 once the trailer was read or after an
    /// error.
    pub fn need(&self) -> usize {
        match self.phase {
            Phase::Header => HEADER_LEN,
            Phase::FrameHeader => FRAME_HEADER_LEN,
            Phase::Body(h) => h.body_len as usize,
            Phase::Trailer => TRAILER_LEN,
            Phase::Done | Phase::Failed => 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Absolute offset of the next byte expected.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The error for an input that ended before the shard did.
    pub fn eof_error(&self) -> Error {
        let what = match self.phase {
            Phase::Header => "the shard header",
            Phase::FrameHeader => "a frame header (the shard has no index: it was cut short)",
            Phase::Body(_) => "a frame",
            Phase::Trailer => "the trailer",
            Phase::Done | Phase::Failed => "nothing",
        };
        Error::truncated(format!("the input ended inside {what}"))
            .at_offset(self.offset)
            .at_record(self.records)
            .from_minor(self.minor)
    }

    /// True when frame CRCs are checked (the default).
    pub fn verifies(&self) -> bool {
        self.options.verify.checks_crc()
    }

    /// True when the next [`feed`](Self::feed) is a frame body, whose CRC a reader may compute
    /// as the bytes arrive and pass to [`feed_with_crc`](Self::feed_with_crc).
    pub fn expects_body(&self) -> bool {
        matches!(self.phase, Phase::Body(_))
    }

    /// Consumes exactly [`need`](Self::need) bytes and returns the records they complete.
    pub fn feed(&mut self, bytes: Bytes) -> Result<Vec<Record>> {
        self.feed_with_crc(bytes, None)
    }

    /// Like [`feed`](Self::feed), with the CRC32 of a frame body already computed by the
    /// caller (piece by piece while the bytes were still in cache), so it is not computed again.
    pub fn feed_with_crc(&mut self, bytes: Bytes, body_crc: Option<u32>) -> Result<Vec<Record>> {
        debug_assert_eq!(bytes.len(), self.need());
        self.body_crc = body_crc;
        let result = self.step(bytes);
        if result.is_err() {
            self.phase = Phase::Failed;
        }
        result.map_err(|e| e.from_minor(self.minor))
    }

    fn step(&mut self, bytes: Bytes) -> Result<Vec<Record>> {
        let at = self.offset;
        self.offset += bytes.len() as u64;
        match self.phase {
            Phase::Header => {
                self.minor = ShardHeader::parse(&bytes)?.minor;
                self.phase = Phase::FrameHeader;
                Ok(Vec::new())
            }
            Phase::FrameHeader => {
                let header = FrameHeader::parse(&bytes, at)?;
                if header.body_len > self.options.limits.max_frame_len {
                    return Err(Error::limit(format!(
                        "frame of {} bytes; the limit is {}",
                        header.body_len, self.options.limits.max_frame_len
                    ))
                    .at_offset(at)
                    .at_record(self.records));
                }
                self.frame_offset = at;
                self.phase = Phase::Body(header);
                Ok(Vec::new())
            }
            Phase::Body(header) => {
                let records = self.frame(header, bytes, at)?;
                Ok(records)
            }
            Phase::Trailer => {
                let trailer = Trailer::parse(&bytes, at)?;
                if trailer.index_offset != self.index_offset || trailer.record_count != self.records
                {
                    return Err(Error::malformed(format!(
                        "the trailer says {} records with the index at {}, but the stream had {} \
                         records with the index at {}",
                        trailer.record_count, trailer.index_offset, self.records, self.index_offset
                    ))
                    .at_offset(at));
                }
                self.phase = Phase::Done;
                Ok(Vec::new())
            }
            Phase::Done | Phase::Failed => Err(Error::invalid("the shard was already read")),
        }
    }

    fn frame(&mut self, header: FrameHeader, body: Bytes, at: u64) -> Result<Vec<Record>> {
        let frame_at = self.frame_offset;
        if self.options.verify.checks_crc() {
            let actual = self.body_crc.take().unwrap_or_else(|| crc32(&body));
            if actual != header.body_crc {
                return Err(Error::checksum(header.body_crc, actual)
                    .at_offset(frame_at)
                    .at_record(self.records));
            }
        }
        let frame_type = body[0];
        self.phase = Phase::FrameHeader;
        match frame_type {
            FRAME_GROUP => {
                let (table, records) = decode_group(
                    &body,
                    at,
                    &self.options.limits,
                    self.records,
                    self.dictionary.as_ref(),
                )?;
                if self.options.verify.checks_hashes() {
                    image_hash::check_group(&table, &records, at, body.len(), self.records)?;
                }
                for (i, r) in table.records.iter().enumerate() {
                    let number = self.records + i as u64;
                    if let Some(first) = self.ids.insert(r.id.clone(), number) {
                        return Err(Error::malformed(format!(
                            "record id {:?} appears twice in the shard (first as record #{first}); \
                             ids are unique within a dataset",
                            r.id
                        ))
                        .at_offset(frame_at)
                        .at_record(number)
                        .with_id(r.id.clone()));
                    }
                }
                self.note_frame(header, frame_type, Some(table))?;
                self.records += records.len() as u64;
                Ok(records)
            }
            FRAME_DICTIONARY => {
                if self.dictionary.is_some() {
                    return Err(Error::malformed(
                        "a second dictionary frame; a shard has at most one",
                    )
                    .at_offset(frame_at));
                }
                let dictionary =
                    Dictionary::parse(body.slice(2..), self.options.limits.max_dictionary_len)
                        .map_err(|e| e.at_offset(frame_at))?;
                self.note_frame(header, FRAME_DICTIONARY, None)?;
                self.dictionary = Some(dictionary);
                Ok(Vec::new())
            }
            FRAME_INDEX => {
                let index = IndexFrame::parse_body(&body, at, &self.options.limits)?;
                let mut payload = Vec::with_capacity(self.expected_index.len() + 10);
                put_varint(&mut payload, self.frames);
                payload.extend_from_slice(&self.expected_index);
                if let Some(d) = &self.dictionary {
                    payload.extend_from_slice(d.bytes());
                }
                let actual = index.encode_payload();
                if actual != payload {
                    return Err(Error::malformed(
                        "the index does not describe the frames that precede it",
                    )
                    .at_offset(frame_at));
                }
                self.index_offset = frame_at;
                self.phase = Phase::Trailer;
                Ok(Vec::new())
            }
            t if t >= FRAME_OPTIONAL_MIN => {
                self.note_frame(header, t, None)?;
                Ok(Vec::new())
            }
            t => Err(Error::unsupported(format!(
                "frame type {t:#04x} is required but unknown to this reader"
            ))
            .at_offset(frame_at)),
        }
    }

    fn note_frame(
        &mut self,
        header: FrameHeader,
        frame_type: u8,
        table: Option<GroupTable>,
    ) -> Result<()> {
        self.frames += 1;
        if self.frames > u64::from(self.options.limits.max_frames) {
            return Err(Error::limit(format!(
                "more than {} frames in one shard",
                self.options.limits.max_frames
            ))
            .at_offset(self.frame_offset));
        }
        IndexEntry {
            frame_len: header.frame_len(),
            frame_type,
            table,
        }
        .encode(&mut self.expected_index);
        if self.expected_index.len() > self.options.limits.max_index_len as usize {
            return Err(
                Error::limit("the shard's index would exceed its size limit")
                    .at_offset(self.frame_offset),
            );
        }
        Ok(())
    }
}

/// Decodes a whole group frame body (type byte first) into records with their image bytes.
/// `body_at` is the body's absolute offset and `first_record` the shard-wide index of the
/// group's first record, both for error messages. Images are zero-copy slices of `body`.
/// `dictionary` is the shard's metadata dictionary, if a dictionary frame preceded the group.
pub fn decode_group(
    body: &Bytes,
    body_at: u64,
    limits: &Limits,
    first_record: u64,
    dictionary: Option<&Dictionary>,
) -> Result<(GroupTable, Vec<Record>)> {
    let mut c = Cursor::new(body, body_at);
    c.u8("frame type")?;
    c.u8("frame flags")?;
    let table = GroupTable::parse(&mut c, limits).map_err(|e| e.at_record(first_record))?;
    let data_start = c.position();
    if (body.len() - data_start) as u64 != table.data_len() {
        return Err(Error::malformed(format!(
            "the group table describes {} bytes of data but the frame holds {}",
            table.data_len(),
            body.len() - data_start
        ))
        .at_offset(body_at)
        .at_record(first_record));
    }
    let blob_ranges: Vec<(usize, usize)> = table
        .blob_offsets()
        .into_iter()
        .zip(&table.blobs)
        .map(|(off, b)| {
            let start = data_start + off as usize;
            (start, start + b.len as usize)
        })
        .collect();
    let mut records = Vec::with_capacity(table.records.len());
    for ((i, entry), off) in table.records.iter().enumerate().zip(table.meta_offsets()) {
        let number = first_record + i as u64;
        let start = data_start + off as usize;
        let stored = &body[start..start + entry.meta_len as usize];
        let meta_at = body_at + start as u64;
        let context = |e: Error| e.at_record(number).with_id(entry.id.clone());
        let raw = decode_block_with(
            entry.meta_codec,
            stored,
            limits.max_meta_len,
            "record metadata",
            dictionary,
        )
        .map_err(|e| context(e.at_offset(meta_at)))?;
        let lens: Vec<u64> = entry
            .refs
            .iter()
            .map(|&b| u64::from(table.blobs[b as usize].len))
            .collect();
        // Offsets inside a decompressed block do not exist in the file: point at the block.
        let compressed = entry.meta_codec != crate::format::CODEC_STORED;
        let mut record = meta::decode(&raw, meta_at, &entry.id, entry.kind, &lens)
            .map_err(|e| context(if compressed { e.set_offset(meta_at) } else { e }))?;
        for (image, &b) in record.images_mut().zip(&entry.refs) {
            let (s, e) = blob_ranges[b as usize];
            image.data = Some(body.slice(s..e));
        }
        records.push(record);
    }
    Ok((table, records))
}
