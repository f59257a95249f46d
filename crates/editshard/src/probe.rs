//! What an image is, from its bytes: media type and dimensions from the header, and an
//! optional full decode. Used by writers to describe images and by `convert` and `verify`
//! to reject anything that is not really an image (an HTML error page served as a PNG).

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

use crate::error::{Error, Result};

/// Largest width or height accepted, in pixels. Anything claiming more is rejected before
/// any pixel is decoded.
pub const MAX_DIMENSION: u32 = 32_768;
/// Largest allocation a full decode may make.
pub const MAX_DECODE_BYTES: u64 = 1 << 30;

/// Media type and size read from an image header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub media_type: &'static str,
    pub width: u32,
    pub height: u32,
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}

fn reader(data: &[u8]) -> Result<(ImageReader<Cursor<&[u8]>>, &'static str)> {
    let format = image::guess_format(data)
        .map_err(|_| Error::invalid(format!("not an image: {}", describe_start(data))))?;
    let media_type = match format {
        ImageFormat::Jpeg => "image/jpeg",
        ImageFormat::Png => "image/png",
        ImageFormat::WebP => "image/webp",
        other => {
            return Err(Error::invalid(format!(
                "unsupported image format {other:?} (JPEG, PNG and WebP are accepted)"
            )));
        }
    };
    let mut reader = ImageReader::with_format(Cursor::new(data), format);
    reader.limits(limits());
    Ok((reader, media_type))
}

/// Reads the media type and dimensions from the header without decoding pixels.
pub fn probe(data: &[u8]) -> Result<ImageInfo> {
    let (reader, media_type) = reader(data)?;
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| Error::invalid(format!("unreadable {media_type} header: {e}")))?;
    check_dimensions(width, height)?;
    Ok(ImageInfo {
        media_type,
        width,
        height,
    })
}

/// Decodes the whole image (bounded by [`MAX_DECODE_BYTES`]) and checks that its size
/// matches the header.
pub fn decode(data: &[u8]) -> Result<ImageInfo> {
    let info = probe(data)?;
    let (reader, media_type) = reader(data)?;
    let img = reader
        .decode()
        .map_err(|e| Error::invalid(format!("{media_type} does not decode: {e}")))?;
    if (img.width(), img.height()) != (info.width, info.height) {
        return Err(Error::invalid(format!(
            "{media_type} header says {}x{} but decodes to {}x{}",
            info.width,
            info.height,
            img.width(),
            img.height()
        )));
    }
    Ok(info)
}

fn check_dimensions(width: u32, height: u32) -> Result<()> {
    if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(Error::invalid(format!(
            "image claims {width}x{height} pixels (accepted: 1 to {MAX_DIMENSION} per side)"
        )));
    }
    Ok(())
}

/// A short, printable description of what the bytes start with, for error messages.
fn describe_start(data: &[u8]) -> String {
    if data.is_empty() {
        return "empty body".to_string();
    }
    let head = &data[..data.len().min(24)];
    let text = String::from_utf8_lossy(head);
    if text.chars().all(|c| !c.is_control() || c.is_whitespace()) {
        format!("{} bytes starting {:?}", data.len(), text.trim())
    } else {
        format!(
            "{} bytes starting 0x{}",
            data.len(),
            crate::record::hex(&head[..head.len().min(8)])
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        image::RgbImage::new(w, h)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn probes_png_and_jpeg() {
        let info = probe(&png(3, 2)).unwrap();
        assert_eq!(
            info,
            ImageInfo {
                media_type: "image/png",
                width: 3,
                height: 2
            }
        );
        let mut jpeg = Vec::new();
        image::RgbImage::new(5, 4)
            .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
            .unwrap();
        assert_eq!(decode(&jpeg).unwrap().media_type, "image/jpeg");
    }

    #[test]
    fn rejects_html_served_as_png() {
        let err = probe(b"<!DOCTYPE html><html>rate limited</html>").unwrap_err();
        assert!(err.to_string().contains("not an image"), "{err}");
        assert!(err.to_string().contains("<!DOCTYPE html>"), "{err}");
    }

    #[test]
    fn rejects_truncated_png_on_decode() {
        let data = png(64, 64);
        assert!(decode(&data[..data.len() - 20]).is_err());
    }

    #[test]
    fn rejects_absurd_dimensions_before_decoding() {
        let mut data = png(1, 1);
        // IHDR width lives at bytes 16..20; patching it breaks the chunk CRC, which the png
        // crate checks too, so either error is fine: what matters is no 4-billion-pixel alloc.
        data[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(&data).is_err());
    }
}
