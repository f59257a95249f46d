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
//!
//! **Format 1.1, the metadata dictionary.** Unless told to write 1.0, the writer holds back
//! the first closed groups (at most [`WriterOptions::max_group_bytes`] of them, besides the
//! open group) until it has the metadata of [`WriterOptions::dictionary_samples`] records,
//! trains a zstd dictionary on them, and keeps it only if it saves more on those records
//! than it costs (the dictionary frame and the index's copy): it then writes the dictionary
//! frame, the held groups with their metadata recompressed (codec 2 wherever smaller), and
//! every later record the same way. Otherwise it writes the held groups as they were.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use super::hasher::ShardHasher;
use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::dict::DictCompressor;
use crate::format::group::{BlobEntry, GroupTable, RecordEntry};
use crate::format::index::{IndexEntry, IndexFrame};
use crate::format::wire::crc32;
use crate::format::{
    CODEC_ZSTD_DICT, Dictionary, FRAME_DICTIONARY, FRAME_GROUP, FRAME_HEADER_LEN, FrameHeader,
    HEADER_LEN, Limits, ShardHeader, TRAILER_LEN, Trailer, VERSION_MAJOR, VERSION_MINOR,
    encode_block, meta,
};
use crate::record::Record;
pub use crate::shard::stats::ShardStats;

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
    /// The minor format version to write: 1 (format 1.1, the default) or 0 (format 1.0, for
    /// readers that predate 1.1; records that need 1.1 are then refused).
    pub minor_version: u16,
    /// Largest metadata dictionary to train (format 1.1); 0 writes none.
    pub dictionary_max_len: usize,
    /// How many records' metadata the dictionary is trained on (the shard's first records).
    pub dictionary_samples: usize,
    /// Closed groups held back (to be written after the dictionary, their metadata
    /// recompressed with it) while samples are collected, in bytes at most. Past it, they are
    /// written as they are and only their metadata is kept as samples: large images are not
    /// held in memory for a dictionary that saves a few hundred bytes a record.
    pub dictionary_hold_bytes: u64,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            compression_level: 3,
            max_group_bytes: 64 << 20,
            max_group_records: 256,
            verify_hashes: true,
            minor_version: VERSION_MINOR,
            dictionary_max_len: 16 << 10,
            dictionary_samples: 64,
            dictionary_hold_bytes: 8 << 20,
        }
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
    /// CRC-64/NVME of the whole file (see [`crate::crc64`]).
    pub crc64nvme: u64,
    pub stats: ShardStats,
    /// Every record id, in order.
    pub ids: Vec<String>,
    /// The minor format version written (the shard header's).
    pub minor_version: u16,
    /// Length of the metadata dictionary, if the shard has one.
    pub dictionary_len: Option<usize>,
}

#[derive(Default)]
struct PendingGroup {
    table: GroupTable,
    metas: Vec<Vec<u8>>,
    blobs: Vec<Bytes>,
    by_hash: HashMap<[u8; 32], u32>,
    bytes: u64,
    /// The records' metadata before compression, kept while the dictionary is being decided
    /// (to train it, and to recompress them with it).
    raws: Vec<Vec<u8>>,
}

/// Where the writer is with the metadata dictionary.
enum DictState {
    /// None: format 1.0, dictionaries turned off, or one did not pay.
    Off,
    /// Closed groups held back until enough records' metadata is there to train one.
    Collecting {
        held: Vec<PendingGroup>,
        /// Samples of groups already written (past the hold budget): each record's metadata
        /// and the length it was stored with.
        written: Vec<(Vec<u8>, usize)>,
    },
    On(Box<DictCompressor>),
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
    dict: DictState,
}

impl<W: Write> ShardWriter<W> {
    pub fn new(out: W) -> Result<Self> {
        Self::with_options(out, WriterOptions::default())
    }

    /// Starts a shard: writes the header.
    pub fn with_options(out: W, options: WriterOptions) -> Result<Self> {
        if options.minor_version > VERSION_MINOR {
            return Err(Error::invalid(format!(
                "format version {VERSION_MAJOR}.{} was asked for; this writer writes \
                 {VERSION_MAJOR}.0 to {VERSION_MAJOR}.{VERSION_MINOR}",
                options.minor_version
            )));
        }
        let dict = if options.minor_version >= 1
            && options.dictionary_max_len > 0
            && options.dictionary_samples > 0
            && options.compression_level > 0
        {
            DictState::Collecting {
                held: Vec::new(),
                written: Vec::new(),
            }
        } else {
            DictState::Off
        };
        let header = ShardHeader {
            major: VERSION_MAJOR,
            minor: options.minor_version,
        };
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
            dict,
        };
        w.write(&header.encode())?;
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
        let held = match &self.dict {
            DictState::Collecting { held, .. } => held.iter().map(|g| g.bytes).sum(),
            _ => 0,
        };
        self.offset + held + self.group.bytes
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
        if self.options.minor_version == 0 && record.needs_v1_1() {
            return fail(
                "the record has fields that format 1.0 cannot hold (a mask, an image caption, \
                 instruction variants, or provenance dataset, revision, row group or row); \
                 write format 1.1 (the default) or drop those fields"
                    .into(),
            );
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
        // A record's frame holds its distinct images: refused here, as this record, rather
        // than when its group is written (an error that ends the shard).
        let mut distinct = std::collections::HashSet::new();
        let images: u64 = record
            .images()
            .filter(|i| distinct.insert(i.sha256))
            .map(|i| i.len)
            .sum();
        let room = self.limits.record_image_room();
        if images > room {
            return fail(format!(
                "its images take {images} bytes together; a record's images must fit one frame \
                 ({room} bytes with room for its metadata)"
            ));
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
        let (mut meta_codec, mut stored) = encode_block(&raw, self.options.compression_level);
        if let DictState::On(c) = &mut self.dict {
            let packed = c.compress(&raw)?;
            if packed.len() < stored.len() {
                (meta_codec, stored) = (CODEC_ZSTD_DICT, packed);
            }
        }

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
        if matches!(self.dict, DictState::Collecting { .. }) {
            self.group.raws.push(raw);
        }
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
        if let DictState::Collecting { held, written } = &mut self.dict {
            held.push(group);
            let held_records: usize = held.iter().map(|g| g.table.records.len()).sum();
            if written.len() + held_records >= self.options.dictionary_samples {
                return self.decide_dictionary();
            }
            if held.iter().map(|g| g.bytes).sum::<u64>() >= self.options.dictionary_hold_bytes {
                // Written as they are; their records' metadata stays on as samples.
                let mut out = std::mem::take(held);
                for g in &mut out {
                    let raws = std::mem::take(&mut g.raws);
                    written.extend(raws.into_iter().zip(g.metas.iter().map(|m| m.len())));
                }
                for g in out {
                    self.write_group(g)?;
                }
            }
            return Ok(());
        }
        self.write_group(group)
    }

    /// Trains the dictionary on the held groups' metadata, keeps it if it pays on them, and
    /// writes the held groups (after the dictionary frame, recompressed, if it is kept).
    fn decide_dictionary(&mut self) -> Result<()> {
        let DictState::Collecting { mut held, written } =
            std::mem::replace(&mut self.dict, DictState::Off)
        else {
            return Ok(());
        };
        // Every record's metadata, those of groups already written first, with the length
        // each was stored with; the held groups give theirs up (they are not needed again).
        let n_written = written.len();
        let (mut samples, mut stored_lens): (Vec<Vec<u8>>, Vec<usize>) =
            written.into_iter().unzip();
        for g in &mut held {
            stored_lens.extend(g.metas.iter().map(|m| m.len()));
            samples.append(&mut g.raws);
        }
        // A dictionary much larger than an eighth of its samples mostly memorises them: it
        // looks good on them, costs its size twice, and helps later records little.
        let total: usize = samples.iter().map(Vec::len).sum();
        let max_len = (total / 8).min(self.options.dictionary_max_len);
        if let Some(dictionary) = Dictionary::train(&samples, max_len) {
            let mut c = DictCompressor::new(&dictionary, self.options.compression_level)?;
            let mut packed = Vec::with_capacity(samples.len());
            let mut saved = 0u64;
            for (raw, &stored) in samples.iter().zip(&stored_lens) {
                let p = c.compress(raw)?;
                saved += (stored as u64).saturating_sub(p.len() as u64);
                packed.push(p);
            }
            // Only the held groups' records are recompressed: the written ones were samples
            // (they predict what the dictionary saves on the records still to come).
            packed.drain(..n_written);
            // The dictionary is stored twice: its frame and the index's copy.
            let cost = 2 * dictionary.bytes().len() as u64 + (FRAME_HEADER_LEN + 2 + 8) as u64;
            if saved > cost {
                self.write_dictionary(&dictionary)?;
                let mut packed = packed.into_iter();
                for g in &mut held {
                    recompress(g, &mut packed);
                }
                self.dict = DictState::On(Box::new(c));
            }
        }
        for g in held {
            self.write_group(g)?;
        }
        Ok(())
    }

    fn write_dictionary(&mut self, dictionary: &Dictionary) -> Result<()> {
        let mut body = vec![FRAME_DICTIONARY, 0];
        body.extend_from_slice(dictionary.bytes());
        let header = FrameHeader {
            body_len: body.len() as u32,
            body_crc: crc32(&body),
        };
        self.write(&header.encode())?;
        self.write(&body)?;
        self.index.frames.push(IndexEntry {
            frame_len: header.frame_len(),
            frame_type: FRAME_DICTIONARY,
            table: None,
        });
        self.index.dictionary = Some(dictionary.bytes().clone());
        Ok(())
    }

    fn write_group(&mut self, group: PendingGroup) -> Result<()> {
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
        self.decide_dictionary()?;
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
        let digests = self.hasher.finalize()?;
        let summary = ShardSummary {
            bytes: self.offset,
            records: self.stats.records,
            footer_offset: index_offset,
            footer_len: self.offset - index_offset,
            sha256: digests.sha256,
            crc64nvme: digests.crc64nvme,
            stats: self.stats,
            ids: self.ids,
            minor_version: self.options.minor_version,
            dictionary_len: self.index.dictionary.as_ref().map(Bytes::len),
        };
        Ok((self.out, summary))
    }
}

/// Replaces each record's stored metadata in `group` by the next of `packed` (its metadata
/// compressed with the dictionary) where that is smaller.
fn recompress(group: &mut PendingGroup, packed: &mut impl Iterator<Item = Vec<u8>>) {
    for (entry, stored) in group.table.records.iter_mut().zip(&mut group.metas) {
        let Some(p) = packed.next() else { return };
        if p.len() < stored.len() {
            group.bytes -= (stored.len() - p.len()) as u64;
            entry.meta_codec = CODEC_ZSTD_DICT;
            entry.meta_len = p.len() as u32;
            entry.meta_crc = crc32(&p);
            *stored = p;
        }
    }
}
