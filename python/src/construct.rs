//! Python values into the record model: what the constructors of `Image`, `Turn` and
//! `Record` are made of. Image bytes are described (media type and size from the header,
//! SHA-256) with the GIL released.

use bytes::Bytes;
use editshard::record::{Image, Provenance, Score};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::errors::to_py;
use crate::records::ImageData;

/// The keys of a record's provenance, as `Record.provenance` gives them (named in the
/// refusal of another key; which keys are refused is decided by the struct itself, see
/// [`provenance`]).
const PROVENANCE_KEYS: &str = "subset, file, line, licence, dataset, revision, row_group, row";

/// Encoded image bytes from `bytes`, an `ImageData` (shared, no copy), or any object with
/// the buffer protocol holding bytes (`bytearray`, `memoryview`, a uint8 NumPy array).
pub fn image_bytes(data: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(d) = data.cast::<ImageData>() {
        return Ok(d.get().bytes().clone());
    }
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(Bytes::copy_from_slice(b.as_bytes()));
    }
    let buffer = PyBuffer::<u8>::get(data).map_err(|e| {
        PyTypeError::new_err(format!(
            "image data must be bytes or a buffer of bytes (bytearray, memoryview, a uint8 \
             array), not {}: {e}",
            data.get_type()
        ))
    })?;
    Ok(Bytes::from(buffer.to_vec(data.py())?))
}

/// Describes `data` (GIL released): the media type, width and height read from its header
/// (JPEG, PNG, WebP; nothing is decoded) and its SHA-256. A `media_type` given must be the
/// one the bytes are.
pub fn describe(py: Python<'_>, data: Bytes, media_type: Option<&str>) -> PyResult<Image> {
    let image = py.detach(|| Image::from_bytes(data)).map_err(to_py)?;
    if let Some(given) = media_type
        && given != image.media_type
    {
        return Err(PyValueError::new_err(format!(
            "media_type {given:?} was given, but the bytes are {} ({}x{}): give the type the \
             bytes are, or leave media_type out to have it read from them",
            image.media_type, image.width, image.height
        )));
    }
    Ok(image)
}

/// Named scores from a mapping of names to numbers, in its order.
pub fn scores(value: &Bound<'_, PyAny>) -> PyResult<Vec<Score>> {
    let items = value.call_method0("items").map_err(|_| {
        PyTypeError::new_err(format!(
            "scores must be a mapping of names to numbers (a dict), not {}",
            value.get_type()
        ))
    })?;
    let mut out = Vec::new();
    for item in items.try_iter()? {
        let (name, value): (String, f64) = item?.extract().map_err(|e| {
            PyTypeError::new_err(format!("scores: each entry must be str -> number: {e}"))
        })?;
        out.push(Score {
            name,
            value: value as f32,
        });
    }
    Ok(out)
}

/// A JSON object from a dict, through the standard `json` module (small values only:
/// provenance and extras). Values JSON cannot hold (bytes, sets, NaN) are refused.
fn json_object(
    value: &Bound<'_, PyAny>,
    what: &str,
) -> PyResult<serde_json::Map<String, serde_json::Value>> {
    if !value.is_instance_of::<PyDict>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a dict, not {}",
            value.get_type()
        )));
    }
    let kwargs = PyDict::new(value.py());
    kwargs.set_item("allow_nan", false)?;
    let text: String = value
        .py()
        .import("json")?
        .call_method("dumps", (value,), Some(&kwargs))
        .map_err(|e| {
            PyValueError::new_err(format!(
                "{what} must hold JSON values only (str, numbers, bool, None, lists, dicts): {e}"
            ))
        })?
        .extract()?;
    serde_json::from_str(&text).map_err(|e| PyValueError::new_err(format!("{what}: {e}")))
}

/// A record's provenance from a dict with the keys `Record.provenance` has. A key the struct
/// does not keep (it would be dropped without a word) is refused; a `None` value is no value.
pub fn provenance(value: &Bound<'_, PyAny>) -> PyResult<Provenance> {
    let map = json_object(value, "provenance")?;
    let given = serde_json::Value::Object(map.clone());
    let provenance: Provenance = serde_json::from_value(given)
        .map_err(|e| PyValueError::new_err(format!("provenance: {e}")))?;
    let kept =
        serde_json::to_value(&provenance).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let dropped = map
        .iter()
        .find(|(k, v)| !v.is_null() && kept.get(k.as_str()).is_none());
    if let Some((unknown, _)) = dropped {
        return Err(PyValueError::new_err(format!(
            "provenance has no field {unknown:?}: its fields are {PROVENANCE_KEYS}; put other \
             facts in extras"
        )));
    }
    Ok(provenance)
}

/// A record's extras from a dict of JSON values.
pub fn extras(value: &Bound<'_, PyAny>) -> PyResult<serde_json::Map<String, serde_json::Value>> {
    json_object(value, "extras")
}
