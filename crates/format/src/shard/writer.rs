//! [`ShardWriter`]: appends records to one shard.
//!
//! ```
//! use editshard_format::record::{Image, Kind, Record, Turn};
//! use editshard_format::shard::ShardWriter;
//! use editshard_format::shard::ShardReader;
//! # fn png(w: u32, h: u32) -> Vec<u8> { // a PNG header: all that `from_bytes` reads
//! #     let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
//! #     v.extend_from_slice(&w.to_be_bytes());
//! #     v.extend_from_slice(&h.to_be_bytes());
//! #     v.extend_from_slice(&[8, 2, 0, 0, 0]);
//! #     let crc = crc32fast::hash(&v[12..29]);
//! #     v.extend_from_slice(&crc.to_be_bytes());
//! #     v
//! # }
//! let source = Image::from_bytes(png(2, 1).into()).unwrap();
//! let edit = Image::from_bytes(png(3, 1).into()).unwrap();
//! let record = Record::new("sft/1.png", Kind::Sft, source, vec![Turn::new(edit)]);
//!
//! let mut writer = ShardWriter::new(Vec::new()).unwrap();
//! writer.append(&record).unwrap();
//! let (bytes, summary) = writer.finish().unwrap();
//! assert_eq!(summary.records, 1);
//!
//! let read: Vec<Record> = ShardReader::new(&bytes[..]).collect::<Result<_, _>>().unwrap();
//! assert_eq!(read, vec![record]);
//! ```
//!
//! Records are gathered into *groups*: consecutive records that share an image (the same
//! SHA-256) go into one frame, where the shared image is stored once. A group is closed when
//! the next record shares nothing with it, or when it reaches
//! [`WriterOptions::max_group_bytes`] or [`WriterOptions::max_group_records`]. Put records
//! that share images next to each other to get the saving.
//!
//! The writer issues many small writes; give it a `BufWriter` when writing to a file.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;

use super::hasher::ShardHasher;
use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::group::{BlobEntry, GroupTable, RecordEntry};
use crate::format::index::{IndexEntry, IndexFrame};
use crate::format::wire::crc32;
use crate::format::{
    FRAME_GROUP, FRAME_HEADER_LEN, FrameHeader, HEADER_LEN, Limits, ShardHeader, TRAILER_LEN,
    Trailer, encode_block, meta,
};
use crate::record::Record;

#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// zstd level for metadata and the index; 0 stores them uncompressed.
    pub compression_level: i32,
    /// A group is closed before it would grow past this many bytes.
    pub max_group_bytes: u64,
    /// A group is closed when it holds this many records.
    pub max_group_records: usize,
    /// Recompute every image's SHA-256 and fail if it differs from the one recorded.
    pub verify_hashes: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            compression_level: 3,
            max_group_bytes: 64 << 20,
            max_group_records: 256,
            verify_hashes: true,
        }
    }
}

/// Counts per kind, edit type and category, and what image deduplication saved.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardStats {
    pub records: u64,
    pub kinds: BTreeMap<String, u64>,
    pub edit_types: BTreeMap<String, u64>,
    pub categories: BTreeMap<String, u64>,
    /// Images referenced by records, counting every reference.
    pub images_referenced: u64,
    pub image_bytes_referenced: u64,
    /// Images actually stored, after deduplication within groups.
    pub images_stored: u64,
    pub image_bytes_stored: u64,
}

impl ShardStats {
    /// Counts one record (kinds, turns' edit types and categories, image references); what
    /// is stored is counted as groups are written. `verify` recounts a dataset with it.
    pub fn count(&mut self, record: &Record) {
        self.records += 1;
        *self
            .kinds
            .entry(record.kind.name().to_string())
            .or_default() += 1;
        for turn in &record.turns {
            if let Some(t) = &turn.edit_type {
                *self.edit_types.entry(t.clone()).or_default() += 1;
            }
            if let Some(c) = &turn.category {
                *self.categories.entry(c.clone()).or_default() += 1;
            }
        }
        for image in record.images() {
            self.images_referenced += 1;
            self.image_bytes_referenced += image.len;
        }
    }
}

/// Adds every count of `theirs` to `mine`.
pub(crate) fn merge_counts(mine: &mut BTreeMap<String, u64>, theirs: &BTreeMap<String, u64>) {
    for (k, v) in theirs {
        *mine.entry(k.clone()).or_default() += v;
    }
}

/// What a finished shard looks like: everything the dataset manifest records about it.
#[derive(Debug, Clone)]
pub struct ShardSummary {
    pub bytes: u64,
    pub records: u64,
    /// Offset and length of the footer (index frame and trailer).
    pub footer_offset: u64,
    pub footer_len: u64,
    /// SHA-256 of the whole file.
    pub sha256: [u8; 32],
    pub stats: ShardStats,
    /// Every record id, in order.
    pub ids: Vec<String>,
}

#[derive(Default)]
struct PendingGroup {
    table: GroupTable,
    metas: Vec<Vec<u8>>,
    blobs: Vec<Bytes>,
    by_hash: HashMap<[u8; 32], u32>,
    bytes: u64,
}

/// Writes one shard to any `Write`.
pub struct ShardWriter<W: Write> {
    out: W,
    /// The whole file's SHA-256, computed on a thread of its own.
    hasher: ShardHasher,
    offset: u64,
    options: WriterOptions,
    limits: Limits,
    group: PendingGroup,
    index: IndexFrame,
    stats: ShardStats,
    ids: Vec<String>,
    seen_ids: HashSet<String>,
}

impl<W: Write> ShardWriter<W> {
    pub fn new(out: W) -> Result<Self> {
        Self::with_options(out, WriterOptions::default())
    }

    /// Starts a shard: writes the header.
    pub fn with_options(out: W, options: WriterOptions) -> Result<Self> {
        let mut w = ShardWriter {
            out,
            hasher: ShardHasher::new(),
            offset: 0,
            options,
            limits: Limits::DEFAULT,
            group: PendingGroup::default(),
            index: IndexFrame::default(),
            stats: ShardStats::default(),
            ids: Vec::new(),
            seen_ids: HashSet::new(),
        };
        w.write(&ShardHeader::CURRENT.encode())?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes)?;
        self.hasher.update(bytes);
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// [`Self::write`] for image bytes, handed to the hashing thread without a copy.
    fn write_shared(&mut self, bytes: &Bytes) -> Result<()> {
        self.out.write_all(bytes)?;
        self.hasher.update_shared(bytes);
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Bytes written so far plus the open group: what the file would measure if finished now,
    /// less the footer.
    pub fn bytes_written(&self) -> u64 {
        self.offset + self.group.bytes
    }

    pub fn records(&self) -> u64 {
        self.stats.records
    }

    /// True when `record` shares an image with the open group, so that appending it would
    /// store that image once for both.
    pub fn joins_group(&self, record: &Record) -> bool {
        record
            .images()
            .any(|i| self.group.by_hash.contains_key(&i.sha256))
    }

    /// Checks a record against the format's rules and limits without writing anything.
    pub fn check(&self, record: &Record) -> Result<()> {
        let fail = |msg: String| Err(Error::rejected(msg).with_id(record.id.clone()));
        if record.id.is_empty() || record.id.len() > self.limits.max_id_len as usize {
            return fail(format!(
                "record id must be 1 to {} bytes, is {}",
                self.limits.max_id_len,
                record.id.len()
            ));
        }
        if self.seen_ids.contains(&record.id) {
            return fail("the shard already holds a record with this id".into());
        }
        let images = record.images().count();
        if images > self.limits.max_record_images as usize {
            return fail(format!(
                "{images} images; a record may have at most {}",
                self.limits.max_record_images
            ));
        }
        let max_blob = u64::from(self.limits.max_frame_len) / 2;
        for (k, image) in record.images().enumerate() {
            let Some(data) = &image.data else {
                return fail(format!(
                    "image {k} has no bytes (it was read as metadata only)"
                ));
            };
            if data.is_empty() || data.len() as u64 > max_blob {
                return fail(format!(
                    "image {k} is {} bytes (accepted: 1 to {max_blob})",
                    data.len()
                ));
            }
            if self.options.verify_hashes {
                image
                    .check_data()
                    .map_err(|e| Error::rejected(format!("image {k}: {e}")))?;
            } else if data.len() as u64 != image.len {
                return fail(format!("image {k}: length does not match its bytes"));
            }
        }
        Ok(())
    }

    /// Appends a record. Images already in the open group are referenced, not stored again.
    pub fn append(&mut self, record: &Record) -> Result<()> {
        self.check(record)?;
        let raw = meta::encode(record);
        if raw.len() > self.limits.max_meta_len as usize {
            return Err(Error::rejected(format!(
                "metadata is {} bytes; the limit is {}",
                raw.len(),
                self.limits.max_meta_len
            ))
            .with_id(record.id.clone()));
        }
        let (meta_codec, stored) = encode_block(&raw, self.options.compression_level);

        let shares = self.joins_group(record);
        let new_bytes: u64 = stored.len() as u64
            + record
                .images()
                .filter(|i| !self.group.by_hash.contains_key(&i.sha256))
                .map(|i| i.len)
                .sum::<u64>();
        let full = self.group.table.records.len() >= self.options.max_group_records
            || self.group.bytes + new_bytes > self.options.max_group_bytes;
        if !self.group.table.records.is_empty() && (!shares || full) {
            self.flush_group()?;
        }

        let mut refs = Vec::new();
        for image in record.images() {
            let group = &mut self.group;
            let b = *group.by_hash.entry(image.sha256).or_insert_with(|| {
                let data = image.data.clone().expect("checked above");
                group.table.blobs.push(BlobEntry {
                    len: data.len() as u32,
                    crc: crc32(&data),
                });
                group.bytes += data.len() as u64;
                group.blobs.push(data);
                (group.blobs.len() - 1) as u32
            });
            refs.push(b);
        }
        self.group.bytes += stored.len() as u64;
        self.group.table.records.push(RecordEntry {
            id: record.id.clone(),
            kind: record.kind,
            meta_codec,
            meta_len: stored.len() as u32,
            meta_crc: crc32(&stored),
            refs,
        });
        self.group.metas.push(stored);
        self.stats.count(record);
        self.ids.push(record.id.clone());
        self.seen_ids.insert(record.id.clone());
        Ok(())
    }

    /// Closes the open group, writing it as one frame. Later records will not share images
    /// with the ones already appended.
    pub fn flush_group(&mut self) -> Result<()> {
        if self.group.table.records.is_empty() {
            return Ok(());
        }
        let group = std::mem::take(&mut self.group);
        let mut head = vec![FRAME_GROUP, 0];
        group.table.encode(&mut head);
        // The frame CRC is the CRC of head, metas and blobs in turn; combine the parts' CRCs
        // (already computed for the table) instead of reading every image twice.
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        let parts = group
            .table
            .records
            .iter()
            .map(|r| (r.meta_crc, u64::from(r.meta_len)))
            .chain(group.table.blobs.iter().map(|b| (b.crc, u64::from(b.len))));
        for (part_crc, len) in parts {
            crc.combine(&crc32fast::Hasher::new_with_initial_len(part_crc, len));
        }
        let body_len = head.len() as u64 + group.table.data_len();
        if body_len > u64::from(self.limits.max_frame_len) {
            return Err(Error::rejected(format!(
                "a group of {} records needs a {body_len}-byte frame; the limit is {}",
                group.table.records.len(),
                self.limits.max_frame_len
            )));
        }
        let header = FrameHeader {
            body_len: body_len as u32,
            body_crc: crc.finalize(),
        };
        self.write(&header.encode())?;
        self.write(&head)?;
        for m in &group.metas {
            self.write(m)?;
        }
        for b in &group.blobs {
            self.write_shared(b)?;
        }
        self.stats.images_stored += group.blobs.len() as u64;
        self.stats.image_bytes_stored += group.blobs.iter().map(|b| b.len() as u64).sum::<u64>();
        self.index.frames.push(IndexEntry {
            frame_len: FRAME_HEADER_LEN as u64 + body_len,
            frame_type: FRAME_GROUP,
            table: Some(group.table),
        });
        Ok(())
    }

    /// Writes the open group, the index and the trailer, flushes, and returns the writer and
    /// a summary of the shard.
    pub fn finish(mut self) -> Result<(W, ShardSummary)> {
        self.flush_group()?;
        let body = self.index.encode_body(self.options.compression_level);
        let header = FrameHeader {
            body_len: u32::try_from(body.len())
                .map_err(|_| Error::invalid("the index exceeds 4 GiB"))?,
            body_crc: crc32(&body),
        };
        let index_offset = self.offset;
        self.write(&header.encode())?;
        self.write(&body)?;
        let trailer = Trailer {
            index_offset,
            index_len: header.frame_len(),
            record_count: self.stats.records,
        };
        self.write(&trailer.encode())?;
        self.out.flush()?;
        debug_assert!(self.offset >= (HEADER_LEN + TRAILER_LEN) as u64);
        let summary = ShardSummary {
            bytes: self.offset,
            records: self.stats.records,
            footer_offset: index_offset,
            footer_len: self.offset - index_offset,
            sha256: self.hasher.finalize()?,
            stats: self.stats,
            ids: self.ids,
        };
        Ok((self.out, summary))
    }
}
