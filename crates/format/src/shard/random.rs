//! [`RandomAccessShard`]: one record, its metadata, or one image, each with one ranged read
//! once the footer is loaded, from anything that implements [`ReadAt`]. The decoding itself
//! is [`ShardView`]'s, which does no I/O: async readers fetch the ranges it names and hand
//! the bytes back to it.
//!
//! ```
//! use editshard_format::shard::RandomAccessShard;
//! # use editshard_format::record::{Image, Kind, Record, Turn};
//! # let mut w = editshard_format::shard::ShardWriter::new(Vec::new()).unwrap();
//! # let img = Image::with_info(vec![1u8, 2, 3].into(), "image/png".into(), 2, 1);
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

use super::view::ShardView;
use crate::error::{Error, Result};
use crate::format::TRAILER_LEN;
use crate::format::index::ShardIndex;
use crate::record::Record;
use crate::shard::options::{ReadOptions, Verify};

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

/// Borrowed bytes: each read copies the range it returns, and only that (use [`Bytes`] for
/// reads without a copy).
impl ReadAt for [u8] {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.len() as u64)
    }
    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Bytes> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(len) {
            Some(end) if end <= self.len() => Ok(Bytes::copy_from_slice(&self[start..end])),
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
        self.as_slice().size()
    }
    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Bytes> {
        self.as_slice().read_at(offset, len)
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

/// A shard read by index through a [`ReadAt`] source: a [`ShardView`] plus the source.
pub struct RandomAccessShard<R> {
    source: R,
    view: ShardView,
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
        let view = ShardView::from_footer(name, options, footer, footer_offset)?;
        Ok(RandomAccessShard { source, view })
    }

    /// The decoding half, without the source.
    pub fn view(&self) -> &ShardView {
        &self.view
    }
    pub fn index(&self) -> &ShardIndex {
        self.view.index()
    }
    pub fn name(&self) -> &str {
        self.view.name()
    }
    pub fn len(&self) -> usize {
        self.view.len()
    }
    pub fn is_empty(&self) -> bool {
        self.view.is_empty()
    }

    /// The whole record, images included: one read.
    pub fn get(&self, i: usize) -> Result<Record> {
        let span = self.view.record_range(i)?;
        let bytes = self.read(span.clone())?;
        self.view.decode(i, &bytes, span.start, true)
    }

    /// The record without image bytes (sizes, hashes and all text are there): one read of the
    /// metadata block only.
    pub fn metadata(&self, i: usize) -> Result<Record> {
        let range = self.view.metadata_range(i)?;
        let bytes = self.read(range.clone())?;
        self.view.decode(i, &bytes, range.start, false)
    }

    /// Image `k` of record `i` in canonical order (0 is the source): one read, checked
    /// against its CRC. At the default [`Verify::Crc`] one more small read checks the frame's
    /// head against the index (so the image is the one this record's frame names); at
    /// [`Verify::Full`] that read takes the record's metadata as well, whose SHA-256 the
    /// bytes must match.
    pub fn image(&self, i: usize, k: usize) -> Result<Bytes> {
        let range = self.view.image_range(i, k)?;
        let bytes = self.read(range)?;
        match self.view.options().verify {
            Verify::None => {}
            Verify::Crc => {
                self.view.check_image(i, k, &bytes)?;
                let head = self.view.frame_head_range(i)?;
                let head_bytes = self.read(head.clone())?;
                self.view.check_frame_head(i, &head_bytes, head.start)?;
            }
            Verify::Full => {
                let record = self.metadata(i)?;
                let image = record.images().nth(k).ok_or_else(|| {
                    Error::malformed(format!("record #{i} has fewer than {} images", k + 1))
                        .in_shard(self.name())
                })?;
                // The CRC as well: check_image_of checks both.
                self.view.check_image_of(i, k, image, &bytes)?;
            }
        }
        Ok(bytes)
    }

    /// The record with this id, if the shard has it.
    pub fn get_by_id(&self, id: &str) -> Result<Option<Record>> {
        self.view
            .index()
            .position(id)
            .map(|i| self.get(i))
            .transpose()
    }

    /// Decodes record `i` from bytes fetched elsewhere: see [`ShardView::decode`].
    pub fn decode(&self, i: usize, bytes: &Bytes, start: u64, with_data: bool) -> Result<Record> {
        self.view.decode(i, bytes, start, with_data)
    }

    fn read(&self, range: Range<u64>) -> Result<Bytes> {
        read(
            &self.source,
            range.start,
            (range.end - range.start) as usize,
            self.view.name(),
        )
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
