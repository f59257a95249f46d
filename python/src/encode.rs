//! Pixels to image bytes (PNG, JPEG or lossless WebP) with the `image` crate, for
//! `Image.from_numpy`; run with the GIL released.

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageEncoder};

/// JPEG quality of `Image.from_numpy(..., format="JPEG")`: high, since a dataset's images
/// are usually encoded once and decoded many times.
pub const JPEG_QUALITY: u8 = 95;

/// The color type of `channels` 8-bit samples per pixel.
pub fn color_type(channels: usize) -> Result<ExtendedColorType, String> {
    match channels {
        1 => Ok(ExtendedColorType::L8),
        2 => Ok(ExtendedColorType::La8),
        3 => Ok(ExtendedColorType::Rgb8),
        4 => Ok(ExtendedColorType::Rgba8),
        n => Err(format!(
            "{n} channels: expected 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA)"
        )),
    }
}

/// Encodes rows of `width * channels` bytes as `format` ("PNG", "JPEG" or "WEBP", any case).
pub fn encode(
    pixels: &[u8],
    width: u32,
    height: u32,
    color: ExtendedColorType,
    format: &str,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let written = match format.to_ascii_uppercase().as_str() {
        "PNG" => PngEncoder::new(&mut out).write_image(pixels, width, height, color),
        "JPEG" | "JPG" => JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
            .write_image(pixels, width, height, color),
        "WEBP" => WebPEncoder::new_lossless(&mut out).write_image(pixels, width, height, color),
        other => {
            return Err(format!(
                "format {other:?}: expected 'PNG', 'JPEG' or 'WEBP' (the formats editshard \
                 stores)"
            ));
        }
    };
    written.map_err(|e| format!("cannot encode {width}x{height} {color:?} as {format}: {e}"))?;
    Ok(out)
}
