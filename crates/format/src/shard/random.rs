//! [`RandomAccessShard`]: one record, its metadata, or one image, each with one ranged read
//! once the footer is loaded.
//!
//! ```
//! use editshard::random::RandomAccessShard;
//! # use editshard::record::{Image, Kind, Record, Turn};
//! # let png = |w| { let mut v = Vec::new(); image::RgbImage::new(w, 1)
//! #     .write_to(&mut std::io::Cursor::new(&mut v), image::ImageFormat::Png).unwrap(); v };
//! # let mut w = editshard::writer::ShardWriter::new(Vec::new()).unwrap();
//! # let img = Image::from_bytes(png(2).into()).unwrap();
//! # w.append(&Record::new("a", Kind::Sft, img.clone(), vec![Turn::new(img)])).unwrap();
//! # let bytes = w.finish().unwrap().0;
//! let shard = RandomAccessShard::open(bytes, "example.esd").unwrap();
//! let meta = shard.metadata(0).unwrap();          // no image bytes transferred
//! assert!(meta.source.data.is_none());
//! let full = shard.get_by_id("a").unwrap().unwrap();
//! assert_eq!(full.source.data.as_ref().unwrap().len() as u64, full.source.len);
//! ```

use std::fs::File;
use std::ops::Range;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::index::ShardIndex;
use crate::format::wire::crc32;
use crate::format::{CODEC_STORED, TRAILER_LEN, decode_block, meta};
use crate::record::Record;
use crate::shard::stream::ReadOptions;

/// Anything that can read a byte range: a file, a buffer, an HTTP or S3 object.
pub trait ReadAt {
    /// Total length in bytes.
    fn size(&self) -> std::io::Result<u64>;
    /// Exactly `len` bytes from `offset`; an error if the source is shorter.
    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Bytes>;
}

impl ReadAt for File {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Bytes> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; len];
        self.read_exact_at(&mut buf, offset)?;
        Ok(Bytes::from(buf))
    }
}

impl ReadAt for Bytes {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.len() as u64)
    }
    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Bytes> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(len) {
            Some(end) if end <= self.len() => Ok(self.slice(start..end)),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "range {offset}..+{len} is past the end ({} bytes)",
                    self.len()
                ),
            )),
        }
    }
}

impl ReadAt for Vec<u8> {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.len() as u64)
    }
    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Bytes> {
        Bytes::copy_from_slice(self).read_at(offset, len)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn size(&self) -> std::io::Result<u64> {
        (**self).size()
    }
    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Bytes> {
        (**self).read_at(offset, len)
    }
}

/// How many bytes of the tail to read when the footer's size is not known: a footer this
/// small (most are) then costs one read instead of two.
const TAIL_GUESS: u64 = 64 << 10;

pub struct RandomAccessShard<R> {
    source: R,
    index: ShardIndex,
    name: String,
    options: ReadOptions,
}

impl<R: ReadAt> RandomAccessShard<R> {
    /// Opens a shard whose footer location is unknown: reads the last 64 KiB, and the rest of
    /// the footer if it is larger.
    pub fn open(source: R, name: impl Into<String>) -> Result<Self> {
        Self::open_with(source, name, ReadOptions::default())
    }

    pub fn open_with(source: R, name: impl Into<String>, options: ReadOptions) -> Result<Self> {
        let name = name.into();
        let size = source.size().map_err(|e| Error::from(e).in_shard(&name))?;
        let guess = size.min(TAIL_GUESS);
        let tail = read(&source, size - guess, guess as usize, &name)?;
        if tail.len() < TRAILER_LEN {
            return Err(
                Error::truncated(format!("{size} bytes is too short to be a shard")).in_shard(name),
            );
        }
        let trailer = crate::format::Trailer::parse(
            &tail[tail.len() - TRAILER_LEN..],
            size - TRAILER_LEN as u64,
        )
        .map_err(|e| e.in_shard(&name))?;
        let footer_offset = trailer.index_offset;
        let footer = if footer_offset >= size - guess {
            tail.slice((footer_offset - (size - guess)) as usize..)
        } else {
            read(
                &source,
                footer_offset,
                (size - footer_offset) as usize,
                &name,
            )?
        };
        Self::from_footer(source, name, options, &footer, footer_offset)
    }

    /// Opens a shard whose footer location is known (from the dataset manifest): one read.
    pub fn open_with_footer(
        source: R,
        name: impl Into<String>,
        options: ReadOptions,
        footer_offset: u64,
        footer_len: u64,
    ) -> Result<Self> {
        let name = name.into();
        if footer_len > u64::from(options.limits.max_index_len) + 64 {
            return Err(Error::limit(format!(
                "footer of {footer_len} bytes; the limit is {}",
                options.limits.max_index_len
            ))
            .in_shard(name));
        }
        let footer = read(&source, footer_offset, footer_len as usize, &name)?;
        Self::from_footer(source, name, options, &footer, footer_offset)
    }

    /// Builds the reader from footer bytes already fetched.
    pub fn from_footer(
        source: R,
        name: String,
        options: ReadOptions,
        footer: &[u8],
        footer_offset: u64,
    ) -> Result<Self> {
        let index = ShardIndex::parse_footer(footer, footer_offset, &options.limits)
            .map_err(|e| e.in_shard(&name))?;
        Ok(RandomAccessShard {
            source,
            index,
            name,
            options,
        })
    }

    pub fn index(&self) -> &ShardIndex {
        &self.index
    }
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

    /// The whole record, images included: one read.
    pub fn get(&self, i: usize) -> Result<Record> {
        self.check_index(i)?;
        let span = self.index.record_span(i);
        let bytes = read(
            &self.source,
            span.start,
            (span.end - span.start) as usize,
            &self.name,
        )?;
        self.decode(i, &bytes, span.start, true)
    }

    /// The record without image bytes (sizes, hashes and all text are there): one read of the
    /// metadata block only.
    pub fn metadata(&self, i: usize) -> Result<Record> {
        self.check_index(i)?;
        let r = &self.index.records[i];
        let bytes = read(&self.source, r.meta_offset, r.meta_len as usize, &self.name)?;
        self.decode(i, &bytes, r.meta_offset, false)
    }

    /// Image `k` of record `i` in canonical order (0 is the source): one read.
    pub fn image(&self, i: usize, k: usize) -> Result<Bytes> {
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
        let bytes = read(&self.source, blob.offset, blob.len as usize, &self.name)?;
        self.check_crc(&bytes, blob.crc, blob.offset, i)?;
        Ok(bytes)
    }

    /// The record with this id, if the shard has it.
    pub fn get_by_id(&self, id: &str) -> Result<Option<Record>> {
        self.index.position(id).map(|i| self.get(i)).transpose()
    }

    /// Decodes record `i` from `bytes`, which hold the file's bytes from `start` and must
    /// cover the metadata block (and, when `with_data`, every image of the record). A batch
    /// reader fetches one span for several records and calls this for each.
    pub fn decode(&self, i: usize, bytes: &Bytes, start: u64, with_data: bool) -> Result<Record> {
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

fn read<R: ReadAt>(source: &R, offset: u64, len: usize, name: &str) -> Result<Bytes> {
    source.read_at(offset, len).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::truncated(format!("could not read {len} bytes: {e}"))
        } else {
            Error::from(e)
        };
        kind.in_shard(name).at_offset(offset)
    })
}
