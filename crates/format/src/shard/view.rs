//! [`ShardView`]: a shard's loaded footer, and everything that can be done with it without
//! I/O: which byte ranges hold a record, its metadata or an image, and turning those bytes,
//! however they were fetched, into checked records.
//!
//! ```text
//!   footer bytes ──► ShardView::from_footer
//!                      │ record_range(i) / metadata_range(i) / image_range(i, k)
//!                      ▼
//!   caller fetches the range (pread, an HTTP Range GET, S3, a memory map...)
//!                      │ bytes
//!                      ▼
//!                    ShardView::decode(i, bytes, start, with_data) ──► Record (CRCs checked)
//! ```
//!
//! [`RandomAccessShard`](super::RandomAccessShard) drives it with a synchronous
//! [`ReadAt`](super::ReadAt); the `editshard` library drives it with async ranged reads.

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::index::ShardIndex;
use crate::format::wire::crc32;
use crate::format::{
    CODEC_STORED, FRAME_GROUP, FRAME_HEADER_LEN, FrameHeader, decode_block_with, meta,
};
use crate::record::{Image, Record};
use crate::shard::image_hash;
use crate::shard::options::ReadOptions;

/// One slot per stored image for the SHA-256 it was found to have.
type BlobHashes = Box<[OnceLock<[u8; 32]>]>;

/// A shard's index with the name and options it is read under.
#[derive(Debug, Clone)]
pub struct ShardView {
    index: ShardIndex,
    name: String,
    options: ReadOptions,
    /// The SHA-256 each stored image (blob) was found to have, once hashed (with
    /// [`Verify::Full`](super::Verify::Full)): see [`ShardView::check_blob`]. Shared by clones;
    /// allocated on the first hash, so that views read at other levels hold nothing per image.
    blob_hashes: Arc<OnceLock<BlobHashes>>,
}

impl ShardView {
    /// Parses the footer (index frame and trailer) that starts at `footer_offset`.
    pub fn from_footer(
        name: String,
        options: ReadOptions,
        footer: &[u8],
        footer_offset: u64,
    ) -> Result<ShardView> {
        let index = ShardIndex::parse_footer(footer, footer_offset, &options.limits)
            .map_err(|e| e.in_shard(&name))?;
        Ok(Self::with_index(name, options, index))
    }

    /// [`Self::from_footer`] over shared bytes (a memory map): see
    /// [`ShardIndex::parse_footer_shared`].
    pub fn from_footer_shared(
        name: String,
        options: ReadOptions,
        footer: &Bytes,
        footer_offset: u64,
    ) -> Result<ShardView> {
        let index = ShardIndex::parse_footer_shared(footer, footer_offset, &options.limits)
            .map_err(|e| e.in_shard(&name))?;
        Ok(Self::with_index(name, options, index))
    }

    fn with_index(name: String, options: ReadOptions, index: ShardIndex) -> ShardView {
        ShardView {
            index,
            name,
            options,
            blob_hashes: Arc::default(),
        }
    }

    pub fn index(&self) -> &ShardIndex {
        &self.index
    }
    /// The shard's name (file, URL or object key) as used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The options the shard is read under.
    pub fn options(&self) -> &ReadOptions {
        &self.options
    }
    pub fn len(&self) -> usize {
        self.index.len()
    }
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn check_index(&self, i: usize) -> Result<()> {
        if i >= self.len() {
            return Err(Error::invalid(format!(
                "record #{i} does not exist: the shard has {}",
                self.len()
            ))
            .in_shard(&self.name));
        }
        Ok(())
    }

    /// The bytes that hold record `i` whole: its frame's head, its metadata and every image.
    pub fn record_range(&self, i: usize) -> Result<Range<u64>> {
        self.check_index(i)?;
        Ok(self.index.record_span(i))
    }

    /// The bytes to fetch for record `i` without images: from its frame's head (header and
    /// group table, which [`Self::decode`] checks against the index) to the end of its
    /// metadata block. The metadata blocks of a group are small and precede its images, so
    /// this is little more than the block itself.
    pub fn metadata_range(&self, i: usize) -> Result<Range<u64>> {
        self.check_index(i)?;
        let r = self.index.record(i);
        let frame = self.index.frames()[r.frame as usize];
        Ok(frame.offset..r.meta_range().end)
    }

    /// The bytes of record `i`'s stored metadata block alone.
    pub fn metadata_block_range(&self, i: usize) -> Result<Range<u64>> {
        self.check_index(i)?;
        Ok(self.index.record(i).meta_range())
    }

    /// The stored image (blob) number of image `k` of record `i`, in canonical order (0 is
    /// the source).
    fn blob_of(&self, i: usize, k: usize) -> Result<u32> {
        self.check_index(i)?;
        let blobs = self.index.record_blobs(i);
        blobs.get(k).copied().ok_or_else(|| {
            Error::invalid(format!(
                "record #{i} has {} images: it has no image {k} (they count from 0)",
                blobs.len(),
            ))
            .in_shard(&self.name)
        })
    }

    /// The bytes of image `k` of record `i`, in canonical order (0 is the source).
    pub fn image_range(&self, i: usize, k: usize) -> Result<Range<u64>> {
        Ok(self.index.blob(self.blob_of(i, k)?).range())
    }

    /// The bytes of each of record `i`'s images, in canonical order (0 is the source).
    pub fn image_ranges(&self, i: usize) -> Result<Vec<Range<u64>>> {
        self.check_index(i)?;
        Ok(self
            .index
            .record_blobs(i)
            .into_iter()
            .map(|b| self.index.blob(b).range())
            .collect())
    }

    /// The ranges to fetch to decode record `i` (with [`Self::decode`]): its
    /// [`Self::metadata_range`] alone without images; with images, its whole
    /// [`Self::record_range`] (one request) when that holds at most `slack` bytes of other
    /// records, else the metadata range and each image's.
    pub fn fetch_ranges(&self, i: usize, images: bool, slack: u64) -> Result<Vec<Range<u64>>> {
        let meta = self.metadata_range(i)?;
        if !images {
            return Ok(vec![meta]);
        }
        let span = self.record_range(i)?;
        let blobs = self.image_ranges(i)?;
        let needed: u64 =
            (meta.end - meta.start) + blobs.iter().map(|r| r.end - r.start).sum::<u64>();
        if (span.end - span.start).saturating_sub(needed) <= slack {
            return Ok(vec![span]);
        }
        let mut ranges = vec![meta];
        ranges.extend(blobs);
        Ok(ranges)
    }

    /// The bytes of the head of record `i`'s frame (header and group table), which
    /// [`Self::check_frame_head`] checks against the index.
    pub fn frame_head_range(&self, i: usize) -> Result<Range<u64>> {
        self.check_index(i)?;
        let r = self.index.record(i);
        Ok(self.index.frames()[r.frame as usize].head_range())
    }

    /// Checks image `k` of record `i`, fetched from [`Self::image_range`], against its CRC
    /// (unless verification is off). This checks the bytes against the index only:
    /// [`Self::check_frame_head`] checks that the index's reference is the frame's own, and
    /// [`Self::check_blob`] (with [`Verify::Full`](super::Verify::Full)) the bytes against
    /// the record's metadata.
    pub fn check_image(&self, i: usize, k: usize, bytes: &[u8]) -> Result<()> {
        let blob = self.index.blob(self.blob_of(i, k)?);
        self.check_crc(bytes, blob.crc, blob.offset, i)
    }

    /// Checks image `k` of record `i` (`bytes`, fetched from [`Self::image_range`]) as
    /// [`Self::check_blob`] does, `image` being what the record's metadata says of it.
    pub fn check_image_of(&self, i: usize, k: usize, image: &Image, bytes: &[u8]) -> Result<()> {
        self.check_blob(i, self.blob_of(i, k)?, image, bytes)
    }

    /// Checks image `k` of a record decoded without images (`bytes`, fetched from
    /// [`Self::image_range`]) as [`Self::check_image_of`] does, and puts them in it.
    pub fn attach_image(
        &self,
        i: usize,
        k: usize,
        record: &mut Record,
        bytes: Bytes,
    ) -> Result<()> {
        let Some(image) = record.images_mut().nth(k) else {
            return Err(
                Error::invalid(format!("record #{i} has fewer than {} images", k + 1))
                    .in_shard(&self.name),
            );
        };
        self.check_image_of(i, k, image, &bytes)?;
        image.data = Some(bytes);
        Ok(())
    }

    /// Checks that the head of record `i`'s frame (in `bytes`, which start at `start` and
    /// cover [`Self::frame_head_range`]) is the one the index describes: the frame length and
    /// type, and the group table byte for byte (so the record's id, kind, metadata and image
    /// locations are the frame's own). Nothing is checked with verification off.
    pub fn check_frame_head(&self, i: usize, bytes: &Bytes, start: u64) -> Result<()> {
        self.check_index(i)?;
        self.check_head(i, bytes, start).map_err(|e| {
            e.in_shard(&self.name)
                .at_record(i as u64)
                .with_id(self.index.record(i).id)
        })
    }

    fn check_head(&self, i: usize, bytes: &Bytes, start: u64) -> Result<()> {
        if !self.options.verify.checks_crc() {
            return Ok(());
        }
        let r = self.index.record(i);
        let frame = self.index.frames()[r.frame as usize];
        let range = frame.head_range();
        let head = slice(bytes, start, range.clone())?;
        let header = FrameHeader::parse(&head, frame.offset)?;
        let table = &head[FRAME_HEADER_LEN + 2..];
        let problem = if header.frame_len() != frame.len {
            Some(format!(
                "the frame there is {} bytes long, the index says {}",
                header.frame_len(),
                frame.len
            ))
        } else if head[FRAME_HEADER_LEN] != FRAME_GROUP {
            Some(format!(
                "the frame there has type {}, not a group",
                head[FRAME_HEADER_LEN]
            ))
        } else if table != self.index.table_bytes(r.frame as usize) {
            Some("the frame's group table differs from the index's copy".to_string())
        } else {
            None
        };
        match problem {
            None => Ok(()),
            Some(problem) => Err(Error::malformed(format!(
                "the index does not describe the frame at byte {}: {problem}",
                frame.offset
            ))
            .at_offset(frame.offset)),
        }
    }

    /// Decodes record `i` from `bytes`, which hold the file's bytes from `start` and must
    /// cover [`Self::metadata_range`] (and, when `with_data`, [`Self::record_range`]). A batch
    /// reader fetches one span for several records and calls this for each. At the default
    /// [`Verify::Crc`](super::Verify::Crc), the frame head is checked against the index, the
    /// metadata and each image against their CRCs; [`Verify::Full`](super::Verify::Full)
    /// also checks each image against its SHA-256.
    pub fn decode(&self, i: usize, bytes: &Bytes, start: u64, with_data: bool) -> Result<Record> {
        self.check_frame_head(i, bytes, start)?;
        self.decode_parts(i, bytes, start, with_data)
    }

    /// [`Self::decode`] without the frame head check: the record's own parts (metadata and
    /// images), each against its CRC (and with [`Verify::Full`](super::Verify::Full) each
    /// image against its SHA-256), located by the index alone. For salvaging the intact
    /// records of a frame whose head is damaged; the index's own CRC then vouches for the id.
    pub fn decode_parts(
        &self,
        i: usize,
        bytes: &Bytes,
        start: u64,
        with_data: bool,
    ) -> Result<Record> {
        self.check_index(i)?;
        let r = self.index.record(i);
        let context = |e: Error| e.in_shard(&self.name).at_record(i as u64).with_id(r.id);
        let slice = |range: Range<u64>| slice(bytes, start, range);
        let stored = slice(r.meta_range()).map_err(context)?;
        self.check_crc(&stored, r.meta_crc, r.meta_offset, i)?;
        let raw = decode_block_with(
            r.meta_codec,
            &stored,
            self.options.limits.max_meta_len,
            "record metadata",
            self.index.dictionary.as_ref(),
        )
        .map_err(|e| context(e.at_offset(r.meta_offset)))?;
        let blobs = self.index.record_blobs(i);
        let lens: Vec<u64> = blobs
            .iter()
            .map(|&b| u64::from(self.index.blob(b).len))
            .collect();
        let compressed = r.meta_codec != CODEC_STORED;
        let mut record = meta::decode(&raw, r.meta_offset, r.id, r.kind, &lens).map_err(|e| {
            context(if compressed {
                e.set_offset(r.meta_offset)
            } else {
                e
            })
        })?;
        if with_data {
            for (image, b) in record.images_mut().zip(blobs) {
                let data = slice(self.index.blob(b).range()).map_err(context)?;
                self.check_blob(i, b, image, &data)?;
                image.data = Some(data);
            }
        }
        Ok(record)
    }

    /// Checks stored image `b` (`bytes`, as fetched from the index's location) for record
    /// `i`, whose metadata describes it as `image`: its CRC at [`Verify::Crc`] and
    /// [`Verify::Full`], and at [`Verify::Full`] that it hashes to the record's SHA-256.
    ///
    /// The hash is computed only the first time this view reads the blob. What the SHA-256
    /// check catches is an index that points a record at other image bytes than its metadata
    /// describes; the index is fixed once loaded and the metadata is checked against its CRC
    /// on every read, so whether blob `b` hashes to what a record claims is settled by
    /// hashing it once. Every later read still checks the bytes' CRC (what catches damage on
    /// disk or in transit) and compares the record's claimed SHA-256 with the one found.
    ///
    /// [`Verify::Crc`]: super::Verify::Crc
    /// [`Verify::Full`]: super::Verify::Full
    pub fn check_blob(&self, i: usize, b: u32, image: &Image, bytes: &[u8]) -> Result<()> {
        self.check_index(i)?;
        if b as usize >= self.index.blob_count() {
            return Err(
                Error::bug(format!("stored image #{b} does not exist")).in_shard(&self.name)
            );
        }
        let blob = self.index.blob(b);
        self.check_crc(bytes, blob.crc, blob.offset, i)?;
        if !self.options.verify.checks_hashes() {
            return Ok(());
        }
        let hashes = self.blob_hashes.get_or_init(|| {
            (0..self.index.blob_count())
                .map(|_| OnceLock::new())
                .collect()
        });
        let slot = &hashes[b as usize];
        if slot.get() == Some(&image.sha256) {
            return Ok(());
        }
        let actual = image_hash::sha256(bytes);
        if actual != image.sha256 {
            return Err(image_hash::mismatch(&actual, image)
                .in_shard(&self.name)
                .at_record(i as u64)
                .with_id(self.index.record(i).id)
                .at_offset(blob.offset));
        }
        // Only a hash that matched is kept: a mismatch is reported again on every read.
        let _ = slot.set(actual);
        Ok(())
    }

    fn check_crc(&self, bytes: &[u8], expected: u32, offset: u64, i: usize) -> Result<()> {
        if !self.options.verify.checks_crc() {
            return Ok(());
        }
        let actual = crc32(bytes);
        if actual != expected {
            return Err(Error::checksum(expected, actual)
                .in_shard(&self.name)
                .at_record(i as u64)
                .with_id(self.index.record(i).id)
                .at_offset(offset));
        }
        Ok(())
    }
}

/// The part of `bytes` (which start at file offset `start`) that holds `range`.
fn slice(bytes: &Bytes, start: u64, range: Range<u64>) -> Result<Bytes> {
    if range.start < start || range.end - start > bytes.len() as u64 {
        return Err(Error::invalid(format!(
            "bytes {}..{} were not fetched",
            range.start, range.end
        )));
    }
    Ok(bytes.slice((range.start - start) as usize..(range.end - start) as usize))
}
