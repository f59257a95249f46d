//! Thumbnails: made on the server (decode, shrink to fit a square, JPEG) so that a gallery
//! page moves kilobytes, not the originals; kept in a bounded cache so that a page seen again
//! costs no reads.

use std::collections::{HashMap, VecDeque};
use std::io::Cursor;
use std::sync::Mutex;

use bytes::Bytes;

/// The longer side of a thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 256;
/// Largest image (per side) a thumbnail is made from: bounds the decoder's allocation.
const MAX_DECODE_SIDE: u32 = 16_384;
const MAX_DECODE_ALLOC: u64 = 512 << 20;

/// The size of the thumbnail of a `width` x `height` image (aspect kept, never enlarged).
pub fn thumb_size(width: u32, height: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= THUMB_SIDE || long == 0 {
        return (width.max(1), height.max(1));
    }
    let scale =
        |v: u32| ((u64::from(v) * u64::from(THUMB_SIDE)).div_ceil(u64::from(long)) as u32).max(1);
    (scale(width), scale(height))
}

/// Reads the header of `bytes` (nothing is decoded) and estimates the memory decoding it into
/// a thumbnail takes beyond [`input_memory`] ([`decode_memory`]).
pub fn probe(bytes: &[u8]) -> Result<u64, String> {
    use image::ImageDecoder;
    let reader = reader(bytes)?;
    let format = reader.format();
    let decoder = reader
        .into_decoder()
        .map_err(|e| format!("cannot decode the image: {e}"))?;
    Ok(decode_memory(format, decoder.total_bytes()))
}

/// What an image of `stored` bytes takes before it is decoded: its bytes, and the copy a
/// decoder may make of them (the JPEG decoder reads its input whole, even to read the header).
pub fn input_memory(stored: u64) -> u64 {
    stored.saturating_mul(2)
}

/// What decoding an image into `pixels` bytes takes beyond its input: the pixels, the
/// decoder's working planes (JPEG and WebP decode through per-component or YUV planes, up to
/// as large as the image again; PNG decodes row by row into the pixels) and the thumbnail's
/// buffers.
pub fn decode_memory(format: Option<image::ImageFormat>, pixels: u64) -> u64 {
    let planes = match format {
        Some(image::ImageFormat::Png) => 0,
        _ => pixels,
    };
    pixels
        .saturating_add(planes)
        .saturating_add(THUMB_WORK_BYTES)
}

/// The thumbnail's buffers and the encoder's: a 256 px square in RGB, a few times.
const THUMB_WORK_BYTES: u64 = 1 << 20;

/// A reader of `bytes` with the decoder limits set.
fn reader(bytes: &[u8]) -> Result<image::ImageReader<Cursor<&[u8]>>, String> {
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read the image: {e}"))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_DECODE_SIDE);
    limits.max_image_height = Some(MAX_DECODE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    Ok(reader)
}

/// Decodes `bytes` and encodes a JPEG thumbnail; the error says why it could not. (The server
/// reserves the memory [`probe`] estimates first.)
pub fn make_thumb(bytes: &[u8]) -> Result<Bytes, String> {
    let img = reader(bytes)?
        .decode()
        .map_err(|e| format!("cannot decode the image: {e}"))?;
    encode_thumb(&img)
}

fn encode_thumb(img: &image::DynamicImage) -> Result<Bytes, String> {
    let small = img.thumbnail(THUMB_SIDE, THUMB_SIDE).to_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 82)
        .encode_image(&small)
        .map_err(|e| format!("cannot encode the thumbnail: {e}"))?;
    Ok(Bytes::from(out))
}

/// Key: global record index and image position.
pub type ThumbKey = (u64, usize);

/// A cache of thumbnails bounded in bytes; the oldest entries leave first.
pub struct ThumbCache {
    max_bytes: usize,
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<ThumbKey, Bytes>,
    order: VecDeque<ThumbKey>,
    bytes: usize,
}

impl ThumbCache {
    pub fn new(max_bytes: usize) -> ThumbCache {
        ThumbCache {
            max_bytes,
            inner: Mutex::new(Entries::default()),
        }
    }

    pub fn get(&self, key: ThumbKey) -> Option<Bytes> {
        self.lock().map.get(&key).cloned()
    }

    pub fn insert(&self, key: ThumbKey, thumb: Bytes) {
        if thumb.len() > self.max_bytes {
            return;
        }
        let mut e = self.lock();
        if let Some(old) = e.map.insert(key, thumb.clone()) {
            e.bytes -= old.len();
        } else {
            e.order.push_back(key);
        }
        e.bytes += thumb.len();
        while e.bytes > self.max_bytes {
            let Some(oldest) = e.order.pop_front() else {
                break;
            };
            if let Some(gone) = e.map.remove(&oldest) {
                e.bytes -= gone.len();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves the map consistent (every step above is
        // complete before the next), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_fit_the_square_and_keep_the_aspect() {
        assert_eq!(thumb_size(1024, 768), (256, 192));
        assert_eq!(thumb_size(100, 50), (100, 50));
        assert_eq!(thumb_size(10_000, 1), (256, 1));
    }

    #[test]
    fn the_cache_stays_within_its_bytes() {
        let cache = ThumbCache::new(10);
        cache.insert((0, 0), Bytes::from_static(b"12345"));
        cache.insert((1, 0), Bytes::from_static(b"12345"));
        assert_eq!(cache.len(), 2);
        cache.insert((2, 0), Bytes::from_static(b"123"));
        assert!(cache.get((0, 0)).is_none(), "the oldest left");
        assert!(cache.get((2, 0)).is_some());
        cache.insert((3, 0), Bytes::from_static(b"too long, never kept"));
        assert!(cache.get((3, 0)).is_none());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(make_thumb(b"\x89PNG\r\n\x1a\nnot really").is_err());
        assert!(make_thumb(b"").is_err());
    }
}
