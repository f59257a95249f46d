//! What an image is, from the first bytes of its header: media type and pixel size, without
//! decoding a pixel and without an image-decoding library.
//!
//! Writers use it to describe images ([`Image::from_bytes`](crate::record::Image::from_bytes));
//! `convert` and `verify` use it to reject anything that is not really an image (an HTML error
//! page served as a PNG). Full decoding, when wanted, lives above this crate
//! (`editshard::probe::decode`).
//!
//! Accepted: PNG (the `IHDR` chunk, its CRC checked), JPEG (the first start-of-frame segment)
//! and WebP (`VP8 `, `VP8L` and `VP8X` chunks). Other formats are named in the error.
//!
//! ```
//! use editshard_format::image_info::probe;
//! let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x03\0\0\0\x02\x08\x02\0\0\0".to_vec();
//! png.extend_from_slice(&crc32fast::hash(&png[12..29]).to_be_bytes());
//! let info = probe(&png).unwrap();
//! assert_eq!((info.media_type, info.width, info.height), ("image/png", 3, 2));
//! assert!(probe(b"<!DOCTYPE html>").unwrap_err().to_string().contains("not an image"));
//! ```

use crate::error::{Error, Result};

/// Largest width or height accepted, in pixels. Anything claiming more is rejected before
/// any pixel is decoded.
pub const MAX_DIMENSION: u32 = 32_768;

/// Media type and size read from an image header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub media_type: &'static str,
    pub width: u32,
    pub height: u32,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Reads the media type and dimensions from the header without decoding pixels.
pub fn probe(data: &[u8]) -> Result<ImageInfo> {
    let (media_type, dims) = if data.starts_with(PNG_SIGNATURE) {
        ("image/png", png(data))
    } else if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        ("image/jpeg", jpeg(data))
    } else if data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        ("image/webp", webp(data))
    } else if let Some(name) = other_format(data) {
        return Err(Error::rejected(format!(
            "unsupported image format {name} (JPEG, PNG and WebP are accepted)"
        )));
    } else {
        return Err(Error::rejected(format!(
            "not an image: {}",
            describe_start(data)
        )));
    };
    let (width, height) =
        dims.ok_or_else(|| Error::rejected(format!("unreadable {media_type} header")))?;
    check_dimensions(width, height)?;
    Ok(ImageInfo {
        media_type,
        width,
        height,
    })
}

/// Rejects sizes of zero or above [`MAX_DIMENSION`] on either side.
pub fn check_dimensions(width: u32, height: u32) -> Result<()> {
    if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(Error::rejected(format!(
            "image claims {width}x{height} pixels (accepted: 1 to {MAX_DIMENSION} per side)"
        )));
    }
    Ok(())
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// PNG: signature, then the `IHDR` chunk (length 13) with width and height, CRC-checked.
fn png(data: &[u8]) -> Option<(u32, u32)> {
    let chunk = data.get(8..33)?;
    if be32(&chunk[0..4]) != 13 || &chunk[4..8] != b"IHDR" {
        return None;
    }
    if crc32fast::hash(&chunk[4..21]) != be32(&chunk[21..25]) {
        return None;
    }
    Some((be32(&chunk[8..12]), be32(&chunk[12..16])))
}

/// JPEG: walk the marker segments to the first start-of-frame (SOF0-SOF15 except DHT 0xC4,
/// JPG 0xC8 and DAC 0xCC), which holds precision, height and width.
fn jpeg(data: &[u8]) -> Option<(u32, u32)> {
    let mut at = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        if *data.get(at)? != 0xFF {
            return None;
        }
        while *data.get(at)? == 0xFF {
            at += 1;
        }
        let marker = *data.get(at)?;
        at += 1;
        match marker {
            // Markers without a length: TEM and the restart markers.
            0x01 | 0xD0..=0xD7 => continue,
            // End of image or start of scan before any frame header.
            0xD9 | 0xDA => return None,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]));
        if len < 2 {
            return None;
        }
        if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let seg = data.get(at + 2..at + 7)?;
            let height = u16::from_be_bytes([seg[1], seg[2]]);
            let width = u16::from_be_bytes([seg[3], seg[4]]);
            return Some((u32::from(width), u32::from(height)));
        }
        at += len;
    }
}

/// WebP: the first chunk after `RIFF....WEBP` says which bitstream follows.
fn webp(data: &[u8]) -> Option<(u32, u32)> {
    let fourcc = data.get(12..16)?;
    let body = data.get(20..)?;
    match fourcc {
        // Lossy: 3-byte frame tag, start code 9D 01 2A, then 14-bit width and height.
        b"VP8 " => {
            let b = body.get(0..10)?;
            if b[3..6] != [0x9D, 0x01, 0x2A] {
                return None;
            }
            let w = u16::from_le_bytes([b[6], b[7]]) & 0x3FFF;
            let h = u16::from_le_bytes([b[8], b[9]]) & 0x3FFF;
            Some((u32::from(w), u32::from(h)))
        }
        // Lossless: signature 0x2F, then width-1 and height-1 in 14 bits each.
        b"VP8L" => {
            let b = body.get(0..5)?;
            if b[0] != 0x2F {
                return None;
            }
            let bits = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
            Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        // Extended: flags and reserved (4 bytes), then canvas width-1 and height-1 in 24 bits.
        b"VP8X" => {
            let b = body.get(0..10)?;
            let w = u32::from_le_bytes([b[4], b[5], b[6], 0]) + 1;
            let h = u32::from_le_bytes([b[7], b[8], b[9], 0]) + 1;
            Some((w, h))
        }
        _ => None,
    }
}

/// Names image formats that are recognised but not accepted.
fn other_format(data: &[u8]) -> Option<&'static str> {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"GIF87a", "GIF"),
        (b"GIF89a", "GIF"),
        (b"BM", "BMP"),
        (b"II*\0", "TIFF"),
        (b"MM\0*", "TIFF"),
        (b"\0\0\x01\0", "ICO"),
        (b"qoif", "QOI"),
        (b"#?RADIANCE", "HDR"),
        (b"\x76\x2f\x31\x01", "OpenEXR"),
        (b"farbfeld", "farbfeld"),
        (b"DDS ", "DDS"),
        (b"\0\0\0\x0cjP  ", "JPEG 2000"),
        (b"\xff\x0a", "JPEG XL"),
    ];
    if let Some((_, name)) = MAGIC.iter().find(|(m, _)| data.starts_with(m)) {
        return Some(name);
    }
    if data.len() >= 12 && &data[4..8] == b"ftyp" && matches!(&data[8..12], b"avif" | b"avis") {
        return Some("AVIF");
    }
    None
}

/// The file extension for a media type (`jpg`, `png`, `webp`, `gif`; `bin` for anything
/// else), used wherever images are written out as files.
pub fn extension(media_type: &str) -> &'static str {
    match media_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/gif" => "gif",
        _ => "bin",
    }
}

/// What the bytes look like (HTML, JSON, text, binary), for error messages. It never quotes
/// the bytes themselves: they may be a local file's contents (a key, an environment) that
/// must not end up in a failure report.
pub fn describe_start(data: &[u8]) -> String {
    if data.is_empty() {
        return "empty body".to_string();
    }
    let head = &data[..data.len().min(512)];
    let text = String::from_utf8_lossy(head);
    let is_text = text
        .chars()
        .all(|c| !c.is_control() || c.is_whitespace() || c == char::REPLACEMENT_CHARACTER);
    let what = match text.trim_start().chars().next() {
        _ if !is_text => "binary data with no known image signature",
        Some('<') => "text that looks like HTML or XML (an error page?)",
        Some('{' | '[') => "text that looks like JSON (an API error?)",
        _ => "text",
    };
    format!("{} bytes of {what}", data.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_header(w: u32, h: u32) -> Vec<u8> {
        let mut out = PNG_SIGNATURE.to_vec();
        out.extend_from_slice(&13u32.to_be_bytes());
        out.extend_from_slice(b"IHDR");
        out.extend_from_slice(&w.to_be_bytes());
        out.extend_from_slice(&h.to_be_bytes());
        out.extend_from_slice(&[8, 2, 0, 0, 0]);
        let crc = crc32fast::hash(&out[12..29]);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    #[test]
    fn png_size_and_crc() {
        assert_eq!(probe(&png_header(3, 2)).unwrap().width, 3);
        let mut bad = png_header(3, 2);
        bad[20] ^= 1; // breaks the IHDR CRC
        assert!(probe(&bad).is_err());
        assert!(probe(&png_header(u32::MAX, 1)).is_err());
        assert!(probe(&png_header(0, 1)).is_err());
    }

    #[test]
    fn jpeg_sof_after_app_segments_and_fill_bytes() {
        let mut j = vec![
            0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xFF, 0xC2, 0, 11, 8,
        ];
        j.extend_from_slice(&[0, 4, 0, 5, 3, 0, 0, 0]); // height 4, width 5
        assert_eq!(
            probe(&j).unwrap(),
            ImageInfo {
                media_type: "image/jpeg",
                width: 5,
                height: 4
            }
        );
        // Truncated before the frame header: an error, never a panic.
        for n in 0..j.len() - 4 {
            let _ = probe(&j[..n]);
        }
    }

    #[test]
    fn webp_three_bitstreams() {
        let riff = |fourcc: &[u8], body: &[u8]| {
            let mut d = b"RIFF\0\0\0\0WEBP".to_vec();
            d.extend_from_slice(fourcc);
            d.extend_from_slice(&(body.len() as u32).to_le_bytes());
            d.extend_from_slice(body);
            d
        };
        let lossy = riff(b"VP8 ", &[0, 0, 0, 0x9D, 1, 0x2A, 7, 0, 9, 0]);
        assert_eq!(
            (probe(&lossy).unwrap().width, probe(&lossy).unwrap().height),
            (7, 9)
        );
        let bits: u32 = 6 | (8 << 14);
        let mut body = vec![0x2F];
        body.extend_from_slice(&bits.to_le_bytes());
        let lossless = riff(b"VP8L", &body);
        assert_eq!(
            (
                probe(&lossless).unwrap().width,
                probe(&lossless).unwrap().height
            ),
            (7, 9)
        );
        let ext = riff(b"VP8X", &[0, 0, 0, 0, 6, 0, 0, 8, 0, 0]);
        assert_eq!(
            (probe(&ext).unwrap().width, probe(&ext).unwrap().height),
            (7, 9)
        );
    }

    #[test]
    fn names_what_it_is_not() {
        let err = probe(b"<!DOCTYPE html><html>rate limited</html>").unwrap_err();
        assert!(err.to_string().contains("not an image"), "{err}");
        assert!(err.to_string().contains("HTML"), "{err}");
        // The bytes themselves are never quoted: they may be a private file's.
        assert!(!err.to_string().contains("rate limited"), "{err}");
        let err = probe(b"AWS_SECRET_ACCESS_KEY=hunter2\n").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = probe(b"\x7fELF\x02\x01secret").unwrap_err();
        assert!(err.to_string().contains("binary"), "{err}");
        assert!(!err.to_string().contains("7f454c46"), "{err}");
        let err = probe(b"GIF89a\x01\0\x01\0").unwrap_err();
        assert!(
            err.to_string().contains("unsupported image format GIF"),
            "{err}"
        );
        assert!(probe(b"").unwrap_err().to_string().contains("empty body"));
    }
}
