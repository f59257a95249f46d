//! The editshard v1 byte format, as specified in `spec/FORMAT.md`.
//!
//! This module holds only pure encoding and parsing over byte slices; the readers and writers
//! built on it live in [`crate::shard`]: the writer, the sync reader, the async decoder and
//! the random-access reader. A shard is:
//!
//! ```text
//! header (16 B) | frame* | index frame | trailer (32 B)
//! frame = body_len u32 | body_crc u32 | body (type u8, flags u8, ...)
//! ```
//!
//! ```
//! use editshard_format::format::{ShardHeader, HEADER_LEN};
//! let bytes = ShardHeader::CURRENT.encode();
//! assert_eq!(bytes.len(), HEADER_LEN);
//! assert_eq!(ShardHeader::parse(&bytes).unwrap(), ShardHeader::CURRENT);
//! ```

pub mod dict;
pub mod group;
pub mod header;
pub mod index;
pub mod meta;
pub mod prepared;
pub mod shard_index;
pub mod wire;

pub use dict::Dictionary;
pub use group::{BlobEntry, GroupTable, RecordEntry};
pub use header::{FrameHeader, ShardHeader, Trailer};
pub use index::{IndexFrame, ShardIndex};
pub use prepared::{prepared_dictionaries, set_prepared_dictionary_budget};

/// The eight bytes every shard starts with.
pub const SHARD_MAGIC: [u8; 8] = *b"\x89ESHARD\n";
/// The four bytes every shard ends with.
pub const TRAILER_MAGIC: [u8; 4] = *b"ESIX";
pub const VERSION_MAJOR: u16 = 1;
/// The newest minor version this implementation reads and writes (1.1). It writes 1.0 too
/// ([`crate::shard::WriterOptions::minor_version`]) and reads every 1.x it knows.
pub const VERSION_MINOR: u16 = 1;

pub const HEADER_LEN: usize = 16;
pub const FRAME_HEADER_LEN: usize = 8;
pub const TRAILER_LEN: usize = 32;

/// Frame type of a group of records and the images they share.
pub const FRAME_GROUP: u8 = 0x01;
/// Frame type of the shard index (the footer); always the last frame.
pub const FRAME_INDEX: u8 = 0x02;
/// Frame type of the shard's metadata dictionary (format 1.1): a zstd dictionary for codec 2.
pub const FRAME_DICTIONARY: u8 = 0x03;
/// Frame types from this value up are optional: a reader that does not know one skips it.
pub const FRAME_OPTIONAL_MIN: u8 = 0x80;

/// Codec of a stored block: the bytes as they are.
pub const CODEC_STORED: u8 = 0;
/// Codec of a stored block: one zstd frame that declares its content size.
pub const CODEC_ZSTD: u8 = 1;
/// Codec of a record's metadata block (format 1.1): one zstd frame compressed with the
/// shard's dictionary (the dictionary frame that precedes the group).
pub const CODEC_ZSTD_DICT: u8 = 2;

/// Resource bounds a reader enforces before it allocates or loops on a length it read.
/// The defaults are the normative limits of spec/FORMAT.md; a writer never exceeds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame body.
    pub max_frame_len: u32,
    /// Largest decompressed record metadata block.
    pub max_meta_len: u32,
    /// Largest decompressed index payload.
    pub max_index_len: u32,
    /// Most records in one group.
    pub max_group_records: u32,
    /// Most distinct images in one group.
    pub max_group_blobs: u32,
    /// Most image references in one record.
    pub max_record_images: u32,
    /// Longest record id, in bytes.
    pub max_id_len: u32,
    /// Most frames in one shard.
    pub max_frames: u32,
    /// Largest metadata dictionary (format 1.1), in bytes.
    pub max_dictionary_len: u32,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_frame_len: 1 << 30,
        max_meta_len: 16 << 20,
        max_index_len: 256 << 20,
        max_group_records: 65_535,
        max_group_blobs: 65_535,
        max_record_images: 4_096,
        max_id_len: 4_096,
        max_frames: 1 << 24,
        max_dictionary_len: 1 << 20,
    };

    /// The most bytes a record's distinct images may take together: a record is never split
    /// across frames, and its frame also holds its metadata block (at most `max_meta_len`)
    /// and the group table.
    pub const fn record_image_room(&self) -> u64 {
        (self.max_frame_len as u64).saturating_sub(self.max_meta_len as u64 + (64 << 10))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Declared sizes above this are decompressed by streaming rather than into a buffer of the
/// declared size.
const STREAM_ABOVE: u64 = 1 << 20;
/// Largest zstd window accepted (32 MiB), so that a frame cannot make the decoder allocate
/// more than that for its history.
const MAX_WINDOW_LOG: u32 = 25;

/// Decompresses a block stored with `codec`, refusing to produce more than `max` bytes.
/// A zstd block must declare its content size, and must decode to exactly that size.
pub fn decode_block(codec: u8, stored: &[u8], max: u32, what: &str) -> crate::Result<Vec<u8>> {
    decode_block_with(codec, stored, max, what, None)
}

/// [`decode_block`] for a record's metadata, which may use codec 2: a zstd frame compressed
/// with the shard's `dictionary`.
pub fn decode_block_with(
    codec: u8,
    stored: &[u8],
    max: u32,
    what: &str,
    dictionary: Option<&Dictionary>,
) -> crate::Result<Vec<u8>> {
    use crate::error::Error;
    let dictionary = match (codec, dictionary) {
        (CODEC_ZSTD_DICT, Some(d)) => Some(d),
        (CODEC_ZSTD_DICT, None) => {
            return Err(Error::malformed(format!(
                "{what} is compressed with the shard's dictionary (codec 2), but no dictionary \
                 frame precedes it"
            )));
        }
        _ => None,
    };
    match codec {
        CODEC_STORED => {
            if stored.len() > max as usize {
                return Err(Error::limit(format!(
                    "{what} is {} bytes; the limit is {max}",
                    stored.len()
                )));
            }
            Ok(stored.to_vec())
        }
        CODEC_ZSTD | CODEC_ZSTD_DICT => {
            let declared = match zstd::zstd_safe::get_frame_content_size(stored) {
                Ok(Some(n)) => n,
                Ok(None) => {
                    return Err(Error::malformed(format!(
                        "{what}: zstd frame does not declare its content size"
                    )));
                }
                Err(_) => return Err(Error::malformed(format!("{what}: not a zstd frame"))),
            };
            if declared > u64::from(max) {
                return Err(Error::limit(format!(
                    "{what} declares {declared} bytes decompressed; the limit is {max}"
                )));
            }
            // Checked before any decompression, whichever path decodes the frame.
            match zstd_window_size(stored) {
                Some(window) if window <= 1 << MAX_WINDOW_LOG => {}
                Some(window) => {
                    return Err(Error::limit(format!(
                        "{what}: the zstd frame asks for a {window}-byte window; the limit is \
                         {} bytes (window log {MAX_WINDOW_LOG})",
                        1u64 << MAX_WINDOW_LOG
                    )));
                }
                None => return Err(Error::malformed(format!("{what}: not a zstd frame"))),
            }
            let out = if declared <= STREAM_ABOVE {
                // Creating a zstd context costs more than decompressing a record's metadata:
                // keep one per thread, and decompress in one call into an exact buffer.
                thread_local! {
                    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
                        const { std::cell::RefCell::new(None) };
                }
                match dictionary {
                    None => DECOMPRESSOR.with(|cell| {
                        let mut slot = cell.borrow_mut();
                        if slot.is_none() {
                            *slot = Some(zstd::bulk::Decompressor::new()?);
                        }
                        let d = slot.as_mut().expect("set above");
                        d.decompress(stored, declared as usize)
                    }),
                    Some(dict) => decompress_with_dictionary(stored, declared as usize, dict),
                }
            } else {
                // A large declared size is only a claim: stream, so that memory grows with
                // what the frame really produces (a damaged or hostile frame that declares
                // 256 MiB but holds a few bytes allocates a few bytes).
                use std::io::Read;
                let mut out = Vec::with_capacity(STREAM_ABOVE as usize);
                let decoder = match dictionary {
                    Some(dict) => zstd::stream::read::Decoder::with_dictionary(stored, dict.bytes()),
                    None => zstd::stream::read::Decoder::with_buffer(stored),
                };
                decoder
                    .and_then(|mut d| {
                        d.window_log_max(MAX_WINDOW_LOG)?;
                        d.single_frame().take(declared + 1).read_to_end(&mut out)
                    })
                    .map(|_| out)
            }
            .map_err(|e| Error::malformed(format!("{what}: zstd: {e}")))?;
            if out.len() as u64 != declared {
                return Err(Error::malformed(format!(
                    "{what}: zstd frame declared {declared} bytes but produced {}",
                    out.len()
                )));
            }
            Ok(out)
        }
        other => Err(Error::unsupported(format!("{what}: unknown codec {other}"))),
    }
}

/// Decompresses one small frame with a prepared dictionary, in one call into an exact buffer,
/// on a decompression context kept per thread (any dictionary can be referenced per call).
fn decompress_with_dictionary(
    stored: &[u8],
    declared: usize,
    dict: &Dictionary,
) -> std::io::Result<Vec<u8>> {
    thread_local! {
        static DCTX: std::cell::RefCell<Option<zstd::zstd_safe::DCtx<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    DCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::zstd_safe::DCtx::try_create().ok_or_else(|| {
                std::io::Error::other("zstd could not create a decompression context")
            })?);
        }
        let dctx = slot.as_mut().expect("set above");
        let ddict = dict.prepared().map_err(std::io::Error::other)?;
        let mut out = Vec::with_capacity(declared);
        dctx.decompress_using_ddict(&mut out, stored, &ddict)
            .map_err(|code| std::io::Error::other(zstd::zstd_safe::get_error_name(code)))?;
        Ok(out)
    })
}

/// The Window_Size a zstd frame header declares (RFC 8878, 3.1.1.1): from the
/// Window_Descriptor, or the content size for a single-segment frame. `None` if the bytes do
/// not start with a complete zstd frame header.
pub fn zstd_window_size(frame: &[u8]) -> Option<u64> {
    if frame.get(..4)? != [0x28, 0xB5, 0x2F, 0xFD] {
        return None;
    }
    let descriptor = *frame.get(4)?;
    let single_segment = descriptor & 0x20 != 0;
    if !single_segment {
        let w = *frame.get(5)?;
        let log = 10 + u64::from(w >> 3);
        let base = 1u64 << log;
        return Some(base + (base / 8) * u64::from(w & 7));
    }
    // Single segment: the window is the content size, whose field follows the descriptor
    // and the dictionary id.
    let dict_len = [0usize, 1, 2, 4][usize::from(descriptor & 3)];
    let fcs_len = [1usize, 2, 4, 8][usize::from(descriptor >> 6)];
    let at = 5 + dict_len;
    let field = frame.get(at..at + fcs_len)?;
    let mut le = [0u8; 8];
    le[..fcs_len].copy_from_slice(field);
    let value = u64::from_le_bytes(le);
    Some(if fcs_len == 2 { value + 256 } else { value })
}

/// Compresses `raw` with zstd at `level` when that makes it smaller; returns the codec and
/// the bytes to store.
pub fn encode_block(raw: &[u8], level: i32) -> (u8, Vec<u8>) {
    thread_local! {
        static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
            const { std::cell::RefCell::new(None) };
    }
    if level > 0 && raw.len() >= 64 {
        let packed = COMPRESSOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.as_ref().map(|(l, _)| *l) != Some(level) {
                let mut c = zstd::bulk::Compressor::new(level).ok()?;
                // Levels above 19 use windows of up to 128 MiB on large inputs; a reader
                // refuses more than 32 MiB (spec section 9), so the writer never asks for it.
                if level > 19 {
                    c.set_parameter(zstd::zstd_safe::CParameter::WindowLog(MAX_WINDOW_LOG))
                        .ok()?;
                }
                *slot = Some((level, c));
            }
            let (_, c) = slot.as_mut().expect("set above");
            c.compress(raw).ok()
        });
        if let Some(packed) = packed {
            if packed.len() < raw.len() {
                return (CODEC_ZSTD, packed);
            }
        }
    }
    (CODEC_STORED, raw.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_through_both_decompression_paths() {
        for len in [100usize, 3 << 20] {
            let raw: Vec<u8> = (0..len).map(|i| (i % 7) as u8).collect();
            let (codec, stored) = encode_block(&raw, 3);
            assert_eq!(codec, CODEC_ZSTD);
            assert_eq!(decode_block(codec, &stored, 16 << 20, "t").unwrap(), raw);
            assert!(
                decode_block(codec, &stored, len as u32 - 1, "t").is_err(),
                "over the limit"
            );
            assert!(decode_block(codec, &stored[..stored.len() - 1], 16 << 20, "t").is_err());
        }
    }

    /// A hand-made frame (RFC 8878) declaring `content` as its 8-byte content size, with the
    /// window descriptor byte `window` (not single-segment), holding `content` in raw blocks.
    fn frame_with_window(window: u8, content: &[u8]) -> Vec<u8> {
        let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0xC0, window];
        frame.extend_from_slice(&(content.len() as u64).to_le_bytes());
        let blocks: Vec<&[u8]> = content.chunks(128 << 10).collect();
        for (i, block) in blocks.iter().enumerate() {
            let last = u32::from(i + 1 == blocks.len());
            let header = ((block.len() as u32) << 3) | last;
            frame.extend_from_slice(&header.to_le_bytes()[..3]);
            frame.extend_from_slice(block);
        }
        frame
    }

    #[test]
    fn a_window_over_the_limit_is_refused_before_decompressing() {
        // Exponent 15 is a 32 MiB window (the limit), 16 is 64 MiB; both paths (a small
        // declared size decoded in one call, a large one streamed).
        for len in [300usize, 2 << 20] {
            let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let ok = frame_with_window(15 << 3, &content);
            assert_eq!(zstd_window_size(&ok), Some(32 << 20));
            assert_eq!(
                decode_block(CODEC_ZSTD, &ok, 16 << 20, "record metadata").unwrap(),
                content
            );
            let over = frame_with_window(16 << 3, &content);
            assert_eq!(zstd_window_size(&over), Some(64 << 20));
            let err = decode_block(CODEC_ZSTD, &over, 16 << 20, "record metadata").unwrap_err();
            assert!(
                matches!(err.kind(), crate::ErrorKind::Limit(_)),
                "{len}: {err}"
            );
            assert!(err.to_string().contains("window"), "{err}");
            // The mantissa counts: 32 MiB + 1/8 is over too.
            let err = decode_block(
                CODEC_ZSTD,
                &frame_with_window((15 << 3) | 1, &content),
                16 << 20,
                "m",
            )
            .unwrap_err();
            assert!(matches!(err.kind(), crate::ErrorKind::Limit(_)), "{err}");
        }
        // A single-segment frame's window is its content size.
        let mut single = vec![0x28, 0xB5, 0x2F, 0xFD, 0xE0];
        single.extend_from_slice(&(40u64 << 20).to_le_bytes());
        assert_eq!(zstd_window_size(&single), Some(40 << 20));
        let err = decode_block(CODEC_ZSTD, &single, 256 << 20, "index").unwrap_err();
        assert!(matches!(err.kind(), crate::ErrorKind::Limit(_)), "{err}");
        assert_eq!(zstd_window_size(&[0x28, 0xB5, 0x2F]), None);
    }

    #[test]
    fn the_highest_levels_stay_within_the_window_limit() {
        // 40 MiB (over the window limit) of cheap-to-compress bytes at level 22, whose own
        // window would be 128 MiB.
        let raw: Vec<u8> = (0..40u32 << 20).map(|i| (i >> 12) as u8).collect();
        let (codec, stored) = encode_block(&raw, 22);
        assert_eq!(codec, CODEC_ZSTD);
        assert!(zstd_window_size(&stored).unwrap() <= 1 << MAX_WINDOW_LOG);
        assert_eq!(decode_block(codec, &stored, 64 << 20, "t").unwrap(), raw);
    }

    #[test]
    fn a_false_large_declared_size_is_an_error() {
        // A hand-made frame (RFC 8878): 8-byte content size declaring 200 MiB, a 1 KiB window,
        // and one raw block of 10 bytes. Decoding must fail on the mismatch, having allocated
        // for what the frame produced, not for what it declared.
        let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0xC0, 0x00];
        frame.extend_from_slice(&(200u64 << 20).to_le_bytes());
        frame.extend_from_slice(&[(10 << 3) | 1, 0, 0]);
        frame.extend_from_slice(&[7u8; 10]);
        let err = decode_block(CODEC_ZSTD, &frame, 256 << 20, "index").unwrap_err();
        assert!(err.is_corruption(), "{err}");
        // The same frame declaring its true size decodes.
        frame[6..14].copy_from_slice(&10u64.to_le_bytes());
        assert_eq!(
            decode_block(CODEC_ZSTD, &frame, 256 << 20, "index").unwrap(),
            [7u8; 10]
        );
    }
}
