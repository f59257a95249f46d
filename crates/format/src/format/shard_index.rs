//! [`ShardIndex`]: a shard's footer read in place. The index payload is kept as the bytes the
//! file holds (a slice of the footer when it is stored uncompressed, zero-copy over a memory
//! map; one owned buffer when it is compressed), and a record, an image or a frame is read
//! out of those bytes when asked for.
//!
//! Opening checks everything once: the footer's CRC, every count and length against the
//! limits, that each group table is consistent, that the frames tile the file and that ids
//! are distinct. Besides the payload, the index keeps only small fixed-size tables that
//! locate entries in it: per record 12 bytes (where its entry is, where its metadata is in
//! its frame, its place in id order), per stored image 8, per frame 40. Lookups then read
//! entries without checking them again.

use std::ops::Range;

use bytes::Bytes;

use super::dict::Dictionary;
use super::group::{GroupTable, ScannedTable};
use super::header::{FrameHeader, Trailer};
use super::index::{IndexBody, WalkedEntry};
use super::wire::crc32;
use super::{FRAME_DICTIONARY, FRAME_HEADER_LEN, HEADER_LEN, Limits, TRAILER_LEN};
use crate::error::{Error, Result};
use crate::record::Kind;

/// Where one record's pieces are in the shard file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLoc<'a> {
    pub id: &'a str,
    pub kind: Kind,
    /// Index into [`ShardIndex::frames`].
    pub frame: u32,
    /// Absolute offset of the stored metadata block.
    pub meta_offset: u64,
    pub meta_len: u32,
    pub meta_crc: u32,
    pub meta_codec: u8,
}

impl RecordLoc<'_> {
    /// The bytes of the stored metadata block.
    pub fn meta_range(&self) -> Range<u64> {
        self.meta_offset..self.meta_offset + u64::from(self.meta_len)
    }
}

/// Where one stored image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLoc {
    pub offset: u64,
    pub len: u32,
    pub crc: u32,
}

impl BlobLoc {
    pub fn range(&self) -> Range<u64> {
        self.offset..self.offset + u64::from(self.len)
    }
}

/// Where one frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLoc {
    pub offset: u64,
    pub len: u64,
    pub frame_type: u8,
    /// For a group frame, where its table's bytes are in the index payload (position and
    /// length; empty for other frames): a random read compares the frame's own table with
    /// them.
    pub table: (u32, u32),
    /// The shard's number of its first record (for other frames: of the next group's).
    pub first_record: u32,
    /// The shard's number of its first stored image (likewise).
    pub first_blob: u32,
}

impl FrameLoc {
    /// The frame's head: its header, type, flags and group table, up to where its data
    /// starts. A random read fetches it with the record to check the index against it.
    pub fn head_range(&self) -> Range<u64> {
        self.offset..self.data_start()
    }
    /// Where the frame's data (metadata blocks, then images) starts.
    pub fn data_start(&self) -> u64 {
        self.offset + FRAME_HEADER_LEN as u64 + 2 + u64::from(self.table.1)
    }
}

/// Where a record's entry is in the payload, and its metadata block in its frame's data.
#[derive(Debug, Clone, Copy)]
struct RecordSlot {
    entry: u32,
    meta_rel: u32,
}

/// Where a stored image's entry is in the payload, and the image in its frame's data.
#[derive(Debug, Clone, Copy)]
struct BlobSlot {
    entry: u32,
    data_rel: u32,
}

/// What a [`ShardIndex`] holds in memory, in bytes, by part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexMemory {
    /// The index payload, when it is a buffer of its own (a compressed index, decompressed);
    /// 0 when it is read in place over a memory map.
    pub payload: u64,
    /// The fixed-size tables that locate entries in the payload.
    pub tables: u64,
}

impl IndexMemory {
    pub fn total(&self) -> u64 {
        self.payload + self.tables
    }
}

/// The index of one shard, read in place: every record, frame and image with absolute
/// offsets, looked up in the footer's own bytes.
#[derive(Debug, Clone)]
pub struct ShardIndex {
    pub trailer: Trailer,
    /// The shard's metadata dictionary (format 1.1), for records of codec 2.
    pub dictionary: Option<Dictionary>,
    /// The index payload: frame entries with every group table, then the dictionary's copy.
    payload: Bytes,
    /// Whether `payload` is a buffer of its own (a decompressed payload, or a copy of a
    /// borrowed footer) rather than a slice of the caller's footer bytes (a memory map).
    payload_owned: bool,
    frames: Vec<FrameLoc>,
    records: Vec<RecordSlot>,
    blobs: Vec<BlobSlot>,
    /// Record numbers in the order of their ids' bytes.
    by_id: Vec<u32>,
}

impl ShardIndex {
    /// Parses the footer: the index frame followed by the trailer. `footer` may start earlier
    /// than the index frame (a speculative read of the file's tail); `footer_offset` is the
    /// absolute offset of `footer[0]`, so `footer_offset + footer.len()` is the file length.
    /// The index keeps a copy of the payload; [`Self::parse_footer_shared`] keeps a slice.
    pub fn parse_footer(footer: &[u8], footer_offset: u64, limits: &Limits) -> Result<ShardIndex> {
        Self::parse(Footer::Borrowed(footer), footer_offset, limits)
    }

    /// [`Self::parse_footer`] over shared bytes: an index stored uncompressed is read in
    /// place, as a slice of `footer` (of a memory map, the page cache's own pages).
    pub fn parse_footer_shared(
        footer: &Bytes,
        footer_offset: u64,
        limits: &Limits,
    ) -> Result<ShardIndex> {
        Self::parse(Footer::Shared(footer), footer_offset, limits)
    }

    fn parse(footer: Footer<'_>, footer_offset: u64, limits: &Limits) -> Result<ShardIndex> {
        let bytes = footer.bytes();
        if bytes.len() < TRAILER_LEN {
            return Err(Error::truncated(format!(
                "a shard ends with a {TRAILER_LEN}-byte trailer; only {} bytes given",
                bytes.len()
            ))
            .at_offset(footer_offset));
        }
        let trailer_at = footer_offset + (bytes.len() - TRAILER_LEN) as u64;
        let trailer = Trailer::parse(&bytes[bytes.len() - TRAILER_LEN..], trailer_at)?;
        if trailer.index_offset < footer_offset {
            return Err(Error::invalid(format!(
                "the footer read starts at byte {footer_offset} but the index starts at {}",
                trailer.index_offset
            )));
        }
        let start = (trailer.index_offset - footer_offset) as usize;
        let frame = &bytes[start..bytes.len() - TRAILER_LEN];
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
        let body = IndexBody::open(body, body_base, limits)?;
        let mut builder = Builder::new(trailer);
        // Record and blob slots are filed by the table scan, frames by `add`: two closures,
        // two sets of state.
        let (mut records, mut blobs, mut used) = (Vec::new(), Vec::new(), Vec::new());
        let dictionary = body.walk(
            limits,
            |c| GroupTable::scan(c, limits, &mut used, &mut records, &mut blobs),
            |entry| builder.add(entry),
        )?;
        builder.records = records
            .into_iter()
            .map(|(entry, meta_rel)| RecordSlot { entry, meta_rel })
            .collect();
        builder.blobs = blobs
            .into_iter()
            .map(|(entry, data_rel)| BlobSlot { entry, data_rel })
            .collect();
        let (payload, payload_owned) = match (body.payload, footer) {
            (std::borrow::Cow::Borrowed(slice), Footer::Shared(shared)) => {
                (shared.slice_ref(slice), false)
            }
            (std::borrow::Cow::Borrowed(slice), Footer::Borrowed(_)) => {
                (Bytes::copy_from_slice(slice), true)
            }
            // A decompressed payload is kept as it is, not copied.
            (std::borrow::Cow::Owned(payload), _) => (Bytes::from(payload), true),
        };
        builder.finish(payload, payload_owned, dictionary, limits)
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Record `i`: where its pieces are. Panics if `i >= len()`, as slice indexing does.
    pub fn record(&self, i: usize) -> RecordLoc<'_> {
        let slot = self.records[i];
        let frame_no = self.frame_of_record(i);
        let frame = &self.frames[frame_no];
        let mut e = Entry::at(&self.payload, slot.entry);
        let id_len = e.varint() as usize;
        let id = std::str::from_utf8(e.bytes(id_len)).unwrap_or_default();
        // Checked when the index was opened: the fallbacks are never taken.
        let kind = Kind::from_code(e.u8()).unwrap_or(Kind::Sft);
        let meta_codec = e.u8();
        let meta_len = e.varint() as u32;
        let meta_crc = e.u32();
        RecordLoc {
            id,
            kind,
            frame: frame_no as u32,
            meta_offset: frame.data_start() + u64::from(slot.meta_rel),
            meta_len,
            meta_crc,
            meta_codec,
        }
    }

    /// Record `i`, if the shard has it.
    pub fn get(&self, i: usize) -> Option<RecordLoc<'_>> {
        (i < self.len()).then(|| self.record(i))
    }

    /// Every record in order.
    pub fn records(&self) -> impl ExactSizeIterator<Item = RecordLoc<'_>> + '_ {
        (0..self.len()).map(|i| self.record(i))
    }

    /// Shard numbers of record `i`'s stored images, in canonical order.
    pub fn record_blobs(&self, i: usize) -> Vec<u32> {
        let slot = self.records[i];
        let first_blob = self.frames[self.frame_of_record(i)].first_blob;
        let mut e = Entry::at(&self.payload, slot.entry);
        let id_len = e.varint() as usize;
        e.bytes(id_len);
        e.u8();
        e.u8();
        e.varint();
        e.u32();
        let n = e.varint() as usize;
        (0..n).map(|_| first_blob + e.varint() as u32).collect()
    }

    /// How many distinct images the shard stores.
    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    /// Stored image `b`. Panics if `b >= blob_count()`, as slice indexing does.
    pub fn blob(&self, b: u32) -> BlobLoc {
        let slot = self.blobs[b as usize];
        let frame = &self.frames[self.frames.partition_point(|f| f.first_blob <= b) - 1];
        let mut e = Entry::at(&self.payload, slot.entry);
        let len = e.varint() as u32;
        let crc = e.u32();
        BlobLoc {
            offset: frame.data_start() + u64::from(slot.data_rel),
            len,
            crc,
        }
    }

    /// Every stored image in order.
    pub fn blobs(&self) -> impl ExactSizeIterator<Item = BlobLoc> + '_ {
        (0..self.blobs.len() as u32).map(|b| self.blob(b))
    }

    pub fn frames(&self) -> &[FrameLoc] {
        &self.frames
    }

    /// The numbers of frame `f`'s records (empty for frames other than groups): records are
    /// numbered in frame order, so a group's are one run.
    pub fn frame_records(&self, f: usize) -> Range<usize> {
        let first = self.frames[f].first_record as usize;
        let end = self
            .frames
            .get(f + 1)
            .map_or(self.len(), |next| next.first_record as usize);
        first..end
    }

    fn frame_of_record(&self, i: usize) -> usize {
        // The last frame starting at or before record `i` is its group: a frame of another
        // type that follows the group starts after it.
        self.frames
            .partition_point(|f| f.first_record as usize <= i)
            - 1
    }

    /// The memory this index holds (what a cache of loaded footers should count): the
    /// payload when it is a buffer of its own, and the tables that locate entries in it.
    pub fn heap_bytes(&self) -> u64 {
        self.memory().total()
    }

    /// [`Self::heap_bytes`] by part.
    pub fn memory(&self) -> IndexMemory {
        use std::mem::size_of;
        let payload = if self.payload_owned {
            self.payload.len()
        } else {
            0
        };
        let tables = size_of::<Self>()
            + self.frames.capacity() * size_of::<FrameLoc>()
            + self.records.capacity() * size_of::<RecordSlot>()
            + self.blobs.capacity() * size_of::<BlobSlot>()
            + self.by_id.capacity() * size_of::<u32>();
        // The dictionary's bytes are in the payload; its prepared form is in the process's
        // bounded cache of them (`super::prepared`), not counted here.
        IndexMemory {
            payload: payload as u64,
            tables: tables as u64,
        }
    }

    /// The record with this id, if the shard has it.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.by_id
            .binary_search_by(|&i| self.id_bytes(i as usize).cmp(id.as_bytes()))
            .ok()
            .map(|k| self.by_id[k] as usize)
    }

    fn id_bytes(&self, i: usize) -> &[u8] {
        let mut e = Entry::at(&self.payload, self.records[i].entry);
        let id_len = e.varint() as usize;
        e.bytes(id_len)
    }

    /// The encoded group table of frame `f` (empty for other frames).
    pub fn table_bytes(&self, f: usize) -> &[u8] {
        let (start, len) = self.frames[f].table;
        self.payload
            .get(start as usize..(start + len) as usize)
            .unwrap_or_default()
    }

    /// The byte range covering record `i`'s frame head (see [`FrameLoc::head_range`]), its
    /// metadata and all its images: one ranged read fetches the whole record and what checks
    /// that the index describes it truthfully.
    pub fn record_span(&self, i: usize) -> Range<u64> {
        let r = self.record(i);
        let mut start = self.frames[r.frame as usize].offset;
        let mut end = r.meta_offset + u64::from(r.meta_len);
        for b in self.record_blobs(i) {
            let blob = self.blob(b);
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

/// The footer bytes a [`ShardIndex`] is parsed from.
#[derive(Clone, Copy)]
enum Footer<'a> {
    Borrowed(&'a [u8]),
    Shared(&'a Bytes),
}

impl Footer<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Footer::Borrowed(b) => b,
            Footer::Shared(b) => b,
        }
    }
}

/// Builds the locating tables while the payload is walked, and checks that the frames add
/// up.
struct Builder {
    trailer: Trailer,
    frames: Vec<FrameLoc>,
    records: Vec<RecordSlot>,
    blobs: Vec<BlobSlot>,
    /// Records and blobs of the frames added so far (their slots are filed after the walk).
    record_count: usize,
    blob_count: usize,
    offset: u64,
    dictionary_seen: bool,
}

impl Builder {
    fn new(trailer: Trailer) -> Builder {
        Builder {
            trailer,
            frames: Vec::new(),
            records: Vec::new(),
            blobs: Vec::new(),
            record_count: 0,
            blob_count: 0,
            offset: HEADER_LEN as u64,
            dictionary_seen: false,
        }
    }

    fn add(&mut self, entry: WalkedEntry<ScannedTable<'_>>) -> Result<()> {
        let at = self.trailer.index_offset;
        let frame_no = self.frames.len();
        let offset = self.offset;
        // The payload is at most `max_index_len` (a u32), so positions fit.
        let table = entry
            .table
            .as_ref()
            .map_or((0, 0), |t| (t.span.start as u32, t.span.len() as u32));
        self.frames.push(FrameLoc {
            offset,
            len: entry.frame_len,
            frame_type: entry.frame_type,
            table,
            first_record: self.record_count as u32,
            first_blob: self.blob_count as u32,
        });
        self.dictionary_seen |= entry.frame_type == FRAME_DICTIONARY;
        if let Some(walked) = entry.table {
            let t = &walked.located;
            if let Some(id) = t.first_dict_id.filter(|_| !self.dictionary_seen) {
                return Err(Error::malformed(format!(
                    "record {id:?} (frame {frame_no}, byte {offset}) uses the shard's \
                     dictionary (codec 2) but no dictionary frame precedes it"
                ))
                .at_offset(at));
            }
            let data_start = offset + FRAME_HEADER_LEN as u64 + 2 + walked.span.len() as u64;
            if data_start + t.data_len != offset + entry.frame_len {
                return Err(Error::malformed(format!(
                    "index entry for frame {frame_no} (byte {offset}) does not add up: \
                     length {} but table and data need {}",
                    entry.frame_len,
                    data_start + t.data_len - offset
                ))
                .at_offset(at));
            }
            // The data is at most `max_frame_len` (a u32) long, so offsets in it fit.
            self.record_count += t.records;
            self.blob_count += t.blobs;
        }
        self.offset = offset
            .checked_add(entry.frame_len)
            .ok_or_else(|| Error::malformed("frame lengths overflow").at_offset(at))?;
        Ok(())
    }

    fn finish(
        self,
        payload: Bytes,
        payload_owned: bool,
        dictionary: Option<Range<usize>>,
        limits: &Limits,
    ) -> Result<ShardIndex> {
        let trailer = self.trailer;
        let at = trailer.index_offset;
        if self.offset != trailer.index_offset {
            return Err(Error::malformed(format!(
                "the indexed frames end at byte {} but the index starts at {}",
                self.offset, trailer.index_offset
            ))
            .at_offset(at));
        }
        if self.records.len() as u64 != trailer.record_count {
            return Err(Error::malformed(format!(
                "the index lists {} records but the trailer says {}",
                self.records.len(),
                trailer.record_count
            ))
            .at_offset(at));
        }
        let dictionary = match dictionary {
            Some(range) => Some(
                Dictionary::parse(payload.slice(range), limits.max_dictionary_len)
                    .map_err(|e| e.at_offset(at))?,
            ),
            None => None,
        };
        let mut index = ShardIndex {
            trailer,
            dictionary,
            payload,
            payload_owned,
            frames: self.frames,
            records: self.records,
            blobs: self.blobs,
            by_id: Vec::new(),
        };
        let mut by_id: Vec<u32> = (0..index.records.len() as u32).collect();
        by_id.sort_unstable_by(|&a, &b| index.id_bytes(a as usize).cmp(index.id_bytes(b as usize)));
        if let Some(pair) = by_id
            .windows(2)
            .find(|p| index.id_bytes(p[0] as usize) == index.id_bytes(p[1] as usize))
        {
            return Err(Error::malformed(format!(
                "record id {:?} appears twice in the shard (records #{} and #{})",
                index.record(pair[0] as usize).id,
                pair[0].min(pair[1]),
                pair[0].max(pair[1]),
            ))
            .at_offset(at));
        }
        index.by_id = by_id;
        index.frames.shrink_to_fit();
        index.records.shrink_to_fit();
        index.blobs.shrink_to_fit();
        Ok(index)
    }
}

/// Reads an entry the index was checked to hold when it was opened: reads past the end give
/// zeros rather than a panic (they do not happen).
struct Entry<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Entry<'a> {
    fn at(buf: &'a [u8], pos: u32) -> Entry<'a> {
        Entry {
            buf,
            pos: pos as usize,
        }
    }
    fn u8(&mut self) -> u8 {
        let b = self.buf.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn u32(&mut self) -> u32 {
        let b = self.bytes(4);
        b.try_into().map(u32::from_le_bytes).unwrap_or(0)
    }
    fn varint(&mut self) -> u64 {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8();
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        value
    }
    fn bytes(&mut self, len: usize) -> &'a [u8] {
        let start = self.pos.min(self.buf.len());
        let end = self.pos.saturating_add(len).min(self.buf.len());
        self.pos = self.pos.saturating_add(len);
        &self.buf[start..end]
    }
}
