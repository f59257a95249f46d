//! Pixel decoding with the `image` crate (JPEG, PNG, WebP), run with the GIL released and
//! bounded like `verify --decode`: the decoded size is checked from the header first.

use editshard_pipeline::DecodeError;
use image::{DynamicImage, ImageDecoder};
use pyo3::prelude::*;
use pyo3::types::PyByteArray;

use crate::errors::decode_error;
use crate::pipeline::limits;

/// Decoded pixels: rows of `width * channels` bytes.
pub struct Pixels {
    pub data: Vec<u8>,
    pub height: u32,
    pub width: u32,
    pub channels: u8,
}

/// Decodes `bytes` to 8-bit pixels.
///
/// `mode`: `None` keeps the stored channels (L: 1, LA: 2, RGB: 3, RGBA: 4; CMYK and YCCK
/// JPEGs come out as RGB; 16-bit and float images are reduced to 8 bits), or `"L"`, `"LA"`,
/// `"RGB"`, `"RGBA"` to convert. `exif_transpose`: apply the EXIF orientation tag (JPEG,
/// WebP); off by default, like `PIL.Image.open`. `max_decode_bytes`: the most the decoded
/// pixels may take (the decoder's buffer, and the converted one).
pub fn decode(
    bytes: &[u8],
    mode: Option<&str>,
    exif_transpose: bool,
    max_decode_bytes: u64,
) -> Result<Pixels, DecodeError> {
    let out_channels = match mode {
        None => 0,
        Some("L") => 1,
        Some("LA") => 2,
        Some("RGB") => 3,
        Some("RGBA") => 4,
        Some(other) => {
            return Err(DecodeError::Invalid(format!(
                "mode {other:?}: expected None, 'L', 'LA', 'RGB' or 'RGBA'"
            )));
        }
    };
    let mut decoder =
        editshard_pipeline::decode::open(bytes, out_channels, &limits(max_decode_bytes))?;
    let invalid = |e: image::ImageError| DecodeError::Invalid(e.to_string());
    let orientation = if exif_transpose {
        Some(decoder.orientation().map_err(invalid)?)
    } else {
        None
    };
    let mut img = DynamicImage::from_decoder(decoder).map_err(invalid)?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    let (width, height) = (img.width(), img.height());
    let channels = match out_channels {
        0 => img.color().channel_count(),
        n => n,
    };
    let data = match (channels, img) {
        (1, DynamicImage::ImageLuma8(b)) => b.into_raw(),
        (2, DynamicImage::ImageLumaA8(b)) => b.into_raw(),
        (3, DynamicImage::ImageRgb8(b)) => b.into_raw(),
        (4, DynamicImage::ImageRgba8(b)) => b.into_raw(),
        (1, img) => img.to_luma8().into_raw(),
        (2, img) => img.to_luma_alpha8().into_raw(),
        (4, img) => img.to_rgba8().into_raw(),
        (_, img) => img.to_rgb8().into_raw(),
    };
    Ok(Pixels {
        data,
        height,
        width,
        channels,
    })
}

/// Decodes with the GIL released and returns a writable uint8 NumPy array (H, W, C).
pub fn to_numpy<'py>(
    py: Python<'py>,
    bytes: &[u8],
    mode: Option<&str>,
    exif_transpose: bool,
    max_decode_bytes: u64,
) -> PyResult<Bound<'py, PyAny>> {
    let pixels = py
        .detach(|| decode(bytes, mode, exif_transpose, max_decode_bytes))
        .map_err(|e| decode_error(py, &format!("cannot decode image: {e}"), e.is_limit()))?;
    let buffer = PyByteArray::new(py, &pixels.data);
    drop(pixels.data);
    let np = py.import("numpy")?;
    let array = np.call_method1("frombuffer", (buffer, np.getattr("uint8")?))?;
    array.call_method1(
        "reshape",
        ((
            pixels.height as usize,
            pixels.width as usize,
            pixels.channels as usize,
        ),),
    )
}

/// Decodes image bytes (JPEG, PNG or WebP) to a uint8 NumPy array of shape (H, W, C).
#[pyfunction]
#[pyo3(signature = (data, mode=None, exif_transpose=false, max_decode_bytes=editshard::probe::MAX_DECODE_BYTES))]
pub fn decode_image<'py>(
    py: Python<'py>,
    data: &[u8],
    mode: Option<&str>,
    exif_transpose: bool,
    max_decode_bytes: u64,
) -> PyResult<Bound<'py, PyAny>> {
    to_numpy(py, data, mode, exif_transpose, max_decode_bytes)
}
