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

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::index::ShardIndex;
use crate::format::wire::crc32;
use crate::format::{CODEC_STORED, decode_block, meta};
use crate::record::Record;
use crate::shard::stream::ReadOptions;

/// A shard's index with the name and options it is read under.
#[derive(Debug, Clone)]
pub struct ShardView {
    index: ShardIndex,
    name: String,
    options: ReadOptions,
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
        Ok(ShardView {
            index,
            name,
            options,
        })
    }

    pub fn index(&self) -> &ShardIndex {
        &self.index
    }
    /// The shard's name (file, URL or object key) as used in messages.
    pub fn name(&self) -> &str {
        &self.name
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

    /// The bytes that hold record `i` whole: its metadata and every image.
    pub fn record_range(&self, i: usize) -> Result<Range<u64>> {
        self.check_index(i)?;
        Ok(self.index.record_span(i))
    }

    /// The bytes of record `i`'s metadata block.
    pub fn metadata_range(&self, i: usize) -> Result<Range<u64>> {
        self.check_index(i)?;
        let r = &self.index.records[i];
        Ok(r.meta_offset..r.meta_offset + u64::from(r.meta_len))
    }

    /// The bytes of image `k` of record `i`, in canonical order (0 is the source).
    pub fn image_range(&self, i: usize, k: usize) -> Result<Range<u64>> {
        self.check_index(i)?;
        let blobs = self.index.record_blobs(i);
        let Some(&b) = blobs.get(k) else {
            return Err(Error::invalid(format!(
                "record #{i} has {} images, not {}",
                blobs.len(),
                k + 1
            ))
            .in_shard(&self.name));
        };
        let blob = self.index.blobs[b as usize];
        Ok(blob.offset..blob.offset + u64::from(blob.len))
    }

    /// Checks the CRC of image `k` of record `i`, fetched from [`Self::image_range`].
    pub fn check_image(&self, i: usize, k: usize, bytes: &[u8]) -> Result<()> {
        let range = self.image_range(i, k)?;
        let b = self.index.record_blobs(i)[k];
        self.check_crc(bytes, self.index.blobs[b as usize].crc, range.start, i)
    }

    /// Decodes record `i` from `bytes`, which hold the file's bytes from `start` and must
    /// cover the metadata block (and, when `with_data`, every image of the record). A batch
    /// reader fetches one span for several records and calls this for each.
    pub fn decode(&self, i: usize, bytes: &Bytes, start: u64, with_data: bool) -> Result<Record> {
        self.check_index(i)?;
        let r = &self.index.records[i];
        let context = |e: Error| e.in_shard(&self.name).at_record(i as u64).with_id(&r.id);
        let slice = |range: Range<u64>| -> Result<Bytes> {
            if range.start < start || range.end - start > bytes.len() as u64 {
                return Err(Error::invalid(format!(
                    "bytes {}..{} were not fetched",
                    range.start, range.end
                )));
            }
            Ok(bytes.slice((range.start - start) as usize..(range.end - start) as usize))
        };
        let stored =
            slice(r.meta_offset..r.meta_offset + u64::from(r.meta_len)).map_err(context)?;
        self.check_crc(&stored, r.meta_crc, r.meta_offset, i)?;
        let raw = decode_block(
            r.meta_codec,
            &stored,
            self.options.limits.max_meta_len,
            "record metadata",
        )
        .map_err(|e| context(e.at_offset(r.meta_offset)))?;
        let blobs = self.index.record_blobs(i);
        let lens: Vec<u64> = blobs
            .iter()
            .map(|&b| u64::from(self.index.blobs[b as usize].len))
            .collect();
        let compressed = r.meta_codec != CODEC_STORED;
        let mut record = meta::decode(&raw, r.meta_offset, &r.id, r.kind, &lens).map_err(|e| {
            context(if compressed {
                e.set_offset(r.meta_offset)
            } else {
                e
            })
        })?;
        if with_data {
            for (image, &b) in record.images_mut().zip(blobs) {
                let blob = self.index.blobs[b as usize];
                let data =
                    slice(blob.offset..blob.offset + u64::from(blob.len)).map_err(context)?;
                self.check_crc(&data, blob.crc, blob.offset, i)?;
                image.data = Some(data);
            }
        }
        Ok(record)
    }

    fn check_crc(&self, bytes: &[u8], expected: u32, offset: u64, i: usize) -> Result<()> {
        if !self.options.verify {
            return Ok(());
        }
        let actual = crc32(bytes);
        if actual != expected {
            let r = &self.index.records[i];
            return Err(Error::checksum(expected, actual)
                .in_shard(&self.name)
                .at_record(i as u64)
                .with_id(&r.id)
                .at_offset(offset));
        }
        Ok(())
    }
}
