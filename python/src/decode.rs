//! Pixel decoding with the `image` crate (JPEG, PNG, WebP), run with the GIL released.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader};
use pyo3::prelude::*;
use pyo3::types::PyByteArray;

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
/// WebP); off by default, like `PIL.Image.open`.
pub fn decode(bytes: &[u8], mode: Option<&str>, exif_transpose: bool) -> Result<Pixels, String> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut decoder = reader.into_decoder().map_err(|e| e.to_string())?;
    let orientation = if exif_transpose {
        Some(decoder.orientation().map_err(|e| e.to_string())?)
    } else {
        None
    };
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    let (width, height) = (img.width(), img.height());
    let channels = match mode {
        None => img.color().channel_count(),
        Some("L") => 1,
        Some("LA") => 2,
        Some("RGB") => 3,
        Some("RGBA") => 4,
        Some(other) => {
            return Err(format!(
                "mode {other:?}: expected None, 'L', 'LA', 'RGB' or 'RGBA'"
            ));
        }
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
) -> PyResult<Bound<'py, PyAny>> {
    let pixels = py
        .detach(|| decode(bytes, mode, exif_transpose))
        .map_err(|e| {
            pyo3::exceptions::PyValueError::new_err(format!("cannot decode image: {e}"))
        })?;
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
#[pyo3(signature = (data, mode=None, exif_transpose=false))]
pub fn decode_image<'py>(
    py: Python<'py>,
    data: &[u8],
    mode: Option<&str>,
    exif_transpose: bool,
) -> PyResult<Bound<'py, PyAny>> {
    to_numpy(py, data, mode, exif_transpose)
}
