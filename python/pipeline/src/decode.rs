//! Bounded decoding of JPEG, PNG and WebP: the decoded size is checked against a limit from
//! the image's header before any pixel buffer is allocated, and a JPEG needed at half its
//! size or less is decoded at that size by its own IDCT (1/2, 1/4 or 1/8).

use std::fmt;
use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

/// What one decode may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of decoded pixels (width x height x channels, 8 bits each), counting the
    /// decoder's own buffer and the converted one.
    pub max_bytes: u64,
    /// Pixels on either side.
    pub max_side: u32,
}

/// Why an image did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Decoding would take more than the limit.
    TooLarge {
        width: u32,
        height: u32,
        bytes: u64,
        limits: Limits,
    },
    /// Not an image of a supported format, or damaged.
    Invalid(String),
}

impl DecodeError {
    pub fn is_limit(&self) -> bool {
        matches!(self, DecodeError::TooLarge { .. })
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooLarge {
                width,
                height,
                bytes,
                limits,
            } => write!(
                f,
                "the image is {width}x{height} pixels: decoding it takes {bytes} bytes, over \
                 the limit of {} bytes and {} pixels a side (raise max_decode_bytes to \
                 decode it)",
                limits.max_bytes, limits.max_side
            ),
            DecodeError::Invalid(msg) => write!(f, "the image does not decode: {msg}"),
        }
    }
}

impl std::error::Error for DecodeError {}

fn invalid(e: impl fmt::Display) -> DecodeError {
    DecodeError::Invalid(e.to_string())
}

/// Checks that `width` x `height` pixels of `bytes_per_pixel` fit the limits.
pub fn check_size(
    width: u32,
    height: u32,
    bytes_per_pixel: u64,
    limits: &Limits,
) -> Result<(), DecodeError> {
    let bytes = u64::from(width) * u64::from(height) * bytes_per_pixel;
    if width > limits.max_side || height > limits.max_side || bytes > limits.max_bytes {
        return Err(DecodeError::TooLarge {
            width,
            height,
            bytes,
            limits: *limits,
        });
    }
    Ok(())
}

/// The `image` crate's own limits, matching ours (its decoders check them too).
fn image_limits(limits: &Limits) -> image::Limits {
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_side);
    l.max_image_height = Some(limits.max_side);
    l.max_alloc = Some(limits.max_bytes);
    l
}

/// A format this crate decodes, from the bytes' signature.
fn format_of(bytes: &[u8]) -> Result<ImageFormat, DecodeError> {
    match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP)) => Ok(f),
        Ok(other) => Err(invalid(format!(
            "{other:?} is not one of JPEG, PNG, WebP"
        ))),
        Err(_) => Err(invalid("not a JPEG, PNG or WebP image")),
    }
}

/// A decoder for `bytes` whose size was checked against `limits`, assuming the decoded
/// image is converted to `out_channels` channels afterwards (0: kept as stored).
pub fn open<'a>(
    bytes: &'a [u8],
    out_channels: u8,
    limits: &Limits,
) -> Result<impl ImageDecoder + use<'a>, DecodeError> {
    let format = format_of(bytes)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    // Only the header is read here; the size is checked against ours below, with its
    // numbers in the message, before the decoder gets the same limits for its buffers.
    reader.no_limits();
    let mut decoder = reader.into_decoder().map_err(invalid)?;
    let (width, height) = decoder.dimensions();
    let stored = decoder.color_type().bytes_per_pixel();
    check_size(width, height, u64::from(stored), limits)?;
    if out_channels > 0 {
        check_size(width, height, u64::from(out_channels), limits)?;
    }
    decoder.set_limits(image_limits(limits)).map_err(invalid)?;
    Ok(decoder)
}

/// 8-bit pixels, rows of `width * channels` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixels {
    pub data: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub channels: u8,
}

/// Decodes to `channels` (1: luma, 3: RGB; an alpha channel is dropped), at a size of at
/// least `want(width, height)` (the image's whole size needed downstream): a JPEG that
/// may be halved at least once is decoded smaller by its IDCT when `scaled_jpeg` is on;
/// anything else at full size.
pub fn decode(
    bytes: &[u8],
    channels: u8,
    want: impl Fn(u32, u32) -> (u32, u32),
    scaled_jpeg: bool,
    limits: &Limits,
) -> Result<Pixels, DecodeError> {
    if scaled_jpeg && format_of(bytes)? == ImageFormat::Jpeg {
        if let Some(pixels) = scaled_jpeg_decode(bytes, channels, &want, limits)? {
            return Ok(pixels);
        }
    }
    let decoder = open(bytes, channels, limits)?;
    let img = DynamicImage::from_decoder(decoder).map_err(invalid)?;
    let (width, height) = (img.width(), img.height());
    let data = if channels == 1 {
        img.into_luma8().into_raw()
    } else {
        img.into_rgb8().into_raw()
    };
    Ok(Pixels {
        data,
        width,
        height,
        channels: if channels == 1 { 1 } else { 3 },
    })
}

/// The JPEG decoded by its IDCT at 1/2, 1/4 or 1/8 of its size when `want` allows at least
/// 1/2; None when it does not (or the JPEG is one jpeg-decoder does not scale: CMYK,
/// 16-bit), to be decoded at full size instead.
fn scaled_jpeg_decode(
    bytes: &[u8],
    channels: u8,
    want: &impl Fn(u32, u32) -> (u32, u32),
    limits: &Limits,
) -> Result<Option<Pixels>, DecodeError> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    if decoder.read_info().is_err() {
        return Ok(None); // the full decoder reports it
    }
    let Some(info) = decoder.info() else {
        return Ok(None);
    };
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    let stored: u8 = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => 1,
        jpeg_decoder::PixelFormat::RGB24 => 3,
        _ => return Ok(None),
    };
    let (want_w, want_h) = want(width, height);
    if want_w.saturating_mul(2) > width || want_h.saturating_mul(2) > height {
        return Ok(None);
    }
    // Both fit u16 (they are at most the JPEG's own sides).
    let (sw, sh) = match decoder.scale(want_w.max(1) as u16, want_h.max(1) as u16) {
        Ok((w, h)) => (u32::from(w), u32::from(h)),
        Err(_) => return Ok(None),
    };
    check_size(sw, sh, u64::from(stored.max(channels)), limits)?;
    decoder.set_max_decoding_buffer_size(usize::try_from(limits.max_bytes).unwrap_or(usize::MAX));
    let Ok(data) = decoder.decode() else {
        return Ok(None);
    };
    let expected = sw as usize * sh as usize * usize::from(stored);
    if data.len() != expected {
        return Ok(None);
    }
    let data = match (stored, channels) {
        (1, 1) | (3, 3) => data,
        (1, _) => data.iter().flat_map(|&v| [v, v, v]).collect(),
        _ => {
            let rgb = image::RgbImage::from_raw(sw, sh, data).ok_or_else(|| invalid("size"))?;
            DynamicImage::ImageRgb8(rgb).into_luma8().into_raw()
        }
    };
    Ok(Some(Pixels {
        data,
        width: sw,
        height: sh,
        channels: if channels == 1 { 1 } else { 3 },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_bytes: 1 << 30,
        max_side: 32_768,
    };

    fn gradient(w: u32, h: u32) -> image::RgbImage {
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128]))
    }

    fn encode(img: &image::RgbImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), format).unwrap();
        out
    }

    #[test]
    fn png_and_webp_decode_whole_to_rgb_and_luma() {
        for format in [ImageFormat::Png, ImageFormat::WebP] {
            let bytes = encode(&gradient(40, 30), format);
            let px = decode(&bytes, 3, |_, _| (1, 1), true, &LIMITS).unwrap();
            assert_eq!((px.width, px.height, px.channels, px.data.len()), (40, 30, 3, 3600));
            let px = decode(&bytes, 1, |w, h| (w, h), true, &LIMITS).unwrap();
            assert_eq!((px.width, px.height, px.channels), (40, 30, 1));
        }
    }

    #[test]
    fn jpeg_wanted_at_half_size_or_less_decodes_smaller() {
        let bytes = encode(&gradient(256, 128), ImageFormat::Jpeg);
        let px = decode(&bytes, 3, |_, _| (60, 30), true, &LIMITS).unwrap();
        assert_eq!((px.width, px.height), (64, 32)); // 1/4: the smallest at least 60x30
        let px = decode(&bytes, 3, |_, _| (60, 30), false, &LIMITS).unwrap();
        assert_eq!((px.width, px.height), (256, 128));
        let px = decode(&bytes, 3, |_, _| (129, 64), true, &LIMITS).unwrap();
        assert_eq!((px.width, px.height), (256, 128)); // more than half: full size
        let px = decode(&bytes, 1, |_, _| (128, 64), true, &LIMITS).unwrap();
        assert_eq!((px.width, px.height, px.data.len()), (128, 64, 128 * 64));
        // The scaled pixels are close to the full decode's averages.
        let full = decode(&bytes, 3, |_, _| (256, 128), true, &LIMITS).unwrap();
        let half = decode(&bytes, 3, |_, _| (128, 64), true, &LIMITS).unwrap();
        let (x, y) = (40usize, 20usize);
        let f = full.data[((2 * y) * 256 + 2 * x) * 3] as i32;
        let h = half.data[(y * 128 + x) * 3] as i32;
        assert!((f - h).abs() <= 4, "{f} vs {h}");
    }

    #[test]
    fn over_the_limit_is_refused_before_decoding() {
        let bytes = encode(&gradient(100, 100), ImageFormat::Png);
        let small = Limits {
            max_bytes: 100 * 100 * 3 - 1,
            max_side: 32_768,
        };
        let err = decode(&bytes, 3, |w, h| (w, h), true, &small).unwrap_err();
        assert!(err.is_limit(), "{err}");
        assert!(err.to_string().contains("100x100"), "{err}");
        // Luma output of an RGB image still needs the decoder's RGB buffer.
        let err = decode(&bytes, 1, |w, h| (w, h), true, &small).unwrap_err();
        assert!(err.is_limit());
        let narrow = Limits {
            max_bytes: 1 << 30,
            max_side: 99,
        };
        assert!(decode(&bytes, 3, |w, h| (w, h), true, &narrow).unwrap_err().is_limit());
        // A scaled JPEG counts what it decodes.
        let jpeg = encode(&gradient(400, 400), ImageFormat::Jpeg);
        let l = Limits {
            max_bytes: 100 * 100 * 3,
            max_side: 32_768,
        };
        assert!(decode(&jpeg, 3, |_, _| (100, 100), true, &l).is_ok());
        assert!(decode(&jpeg, 3, |_, _| (300, 300), true, &l).unwrap_err().is_limit());
    }

    #[test]
    fn a_huge_header_is_a_limit_error_not_an_allocation() {
        let mut png = encode(&gradient(1, 1), ImageFormat::Png);
        // IHDR width and height: 60000 x 60000 (the chunk CRC is then wrong: either error
        // is fine as long as nothing is allocated for 10.8 GB).
        png[16..20].copy_from_slice(&60_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&60_000u32.to_be_bytes());
        assert!(decode(&png, 3, |w, h| (w, h), true, &LIMITS).is_err());
    }

    #[test]
    fn garbage_is_invalid() {
        let err = decode(b"<html>", 3, |w, h| (w, h), true, &LIMITS).unwrap_err();
        assert!(!err.is_limit());
        let mut jpeg = encode(&gradient(64, 64), ImageFormat::Jpeg);
        jpeg.truncate(jpeg.len() / 3);
        let _ = decode(&jpeg, 3, |_, _| (8, 8), true, &LIMITS); // no panic, either way
    }
}
