//! Whole-image decoding, for `verify --decode` and `convert --validate decode`: an image is
//! accepted only if every pixel decodes and the size matches its header. Reading the header
//! alone is the format core's [`image_info::probe`](crate::image_info::probe), re-exported
//! here.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

use crate::error::{Error, Result};
pub use crate::image_info::{ImageInfo, MAX_DIMENSION, probe};

/// Largest allocation a full decode may make.
pub const MAX_DECODE_BYTES: u64 = 1 << 30;

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}

/// Decodes the whole image (bounded by [`MAX_DECODE_BYTES`]) and checks that its size
/// matches the header.
pub fn decode(data: &[u8]) -> Result<ImageInfo> {
    let info = probe(data)?;
    let format = match info.media_type {
        "image/jpeg" => ImageFormat::Jpeg,
        "image/png" => ImageFormat::Png,
        _ => ImageFormat::WebP,
    };
    let media_type = info.media_type;
    let mut reader = ImageReader::with_format(Cursor::new(data), format);
    reader.limits(limits());
    let img = reader
        .decode()
        .map_err(|e| Error::rejected(format!("{media_type} does not decode: {e}")))?;
    if (img.width(), img.height()) != (info.width, info.height) {
        return Err(Error::rejected(format!(
            "{media_type} header says {}x{} but decodes to {}x{}",
            info.width,
            info.height,
            img.width(),
            img.height()
        )));
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(img: image::RgbImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), format).unwrap();
        out
    }

    #[test]
    fn probes_and_decodes_png_and_jpeg() {
        let png = encode(image::RgbImage::new(3, 2), ImageFormat::Png);
        let info = probe(&png).unwrap();
        assert_eq!(
            info,
            ImageInfo {
                media_type: "image/png",
                width: 3,
                height: 2
            }
        );
        assert_eq!(decode(&png).unwrap(), info);
        let jpeg = encode(image::RgbImage::new(5, 4), ImageFormat::Jpeg);
        let info = decode(&jpeg).unwrap();
        assert_eq!(
            (info.media_type, info.width, info.height),
            ("image/jpeg", 5, 4)
        );
        let webp = encode(image::RgbImage::new(7, 9), ImageFormat::WebP);
        let info = decode(&webp).unwrap();
        assert_eq!(
            (info.media_type, info.width, info.height),
            ("image/webp", 7, 9)
        );
    }

    #[test]
    fn rejects_html_served_as_png() {
        let err = decode(b"<!DOCTYPE html><html>rate limited</html>").unwrap_err();
        assert!(err.to_string().contains("not an image"), "{err}");
        assert!(err.to_string().contains("HTML"), "{err}");
        assert!(
            !err.to_string().contains("rate limited"),
            "quotes the bytes: {err}"
        );
    }

    #[test]
    fn rejects_truncated_png_on_decode() {
        let data = encode(image::RgbImage::new(64, 64), ImageFormat::Png);
        assert!(probe(&data[..data.len() - 20]).is_ok());
        assert!(decode(&data[..data.len() - 20]).is_err());
    }

    #[test]
    fn rejects_absurd_dimensions_before_decoding() {
        let mut data = encode(image::RgbImage::new(1, 1), ImageFormat::Png);
        // IHDR width lives at bytes 16..20; patching it breaks the chunk CRC too, so either
        // error is fine: what matters is no 4-billion-pixel allocation.
        data[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(&data).is_err());
    }
}
