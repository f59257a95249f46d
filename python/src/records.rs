//! Records, turns and images as frozen Python objects sharing the Rust data.

use std::ffi::c_int;
use std::sync::Arc;

use bytes::Bytes;
use editshard::record::{Image, Record};
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::convert::json_to_py;
use crate::decode;

/// Image bytes owned by Rust, readable through the buffer protocol without a copy:
/// `memoryview(data)`, `bytes(data)` (one copy), `numpy.frombuffer(data, numpy.uint8)`.
#[pyclass(module = "editshard._native", name = "ImageData", frozen)]
pub struct ImageData {
    data: Bytes,
}

#[pymethods]
impl ImageData {
    /// Exposes the bytes read-only.
    ///
    /// # Safety
    /// Called by the interpreter with a valid `view`. The buffer points into `self.data`, an
    /// immutable `Bytes` (this class is frozen, so it is never replaced) that lives as long as
    /// this object; `PyBuffer_FillInfo` stores a new strong reference to `slf` in
    /// `view.obj`, released with the view, so the memory outlives every view. Write requests
    /// are refused (`readonly = 1` makes `PyBuffer_FillInfo` fail on `PyBUF_WRITABLE`).
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut pyo3::ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("null buffer view"));
        }
        let data = &slf.get().data;
        // SAFETY: see the doc comment: `view` is valid, the pointer and length describe
        // `data`, which outlives the view through the reference taken in `view.obj`.
        let rc = unsafe {
            pyo3::ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                data.as_ptr() as *mut std::ffi::c_void,
                data.len() as pyo3::ffi::Py_ssize_t,
                1,
                flags,
            )
        };
        if rc != 0 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    fn __len__(&self) -> usize {
        self.data.len()
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.data)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        if let Ok(o) = other.cast::<ImageData>() {
            return o.get().data == self.data;
        }
        if let Ok(b) = other.cast::<PyBytes>() {
            return b.as_bytes() == self.data.as_ref();
        }
        false
    }

    fn __repr__(&self) -> String {
        format!("<editshard.ImageData of {} bytes>", self.data.len())
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let ctor = py.get_type::<ImageData>().getattr("_from_bytes")?;
        let args = (PyBytes::new(py, &slf.get().data),);
        Ok((ctor, args).into_pyobject(py)?.into_any())
    }

    #[staticmethod]
    fn _from_bytes(data: &[u8]) -> ImageData {
        ImageData {
            data: Bytes::copy_from_slice(data),
        }
    }
}

fn scores_dict<'py>(py: Python<'py>, image: &Image) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for s in &image.scores {
        d.set_item(&s.name, s.value)?;
    }
    Ok(d)
}

fn json_err(e: serde_json::Error) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Which image of a record a [`PyImage`] shows.
#[derive(Clone, Copy)]
enum Slot {
    Source,
    Output(usize),
    Rejected(usize, usize),
    Mask(usize),
}

/// Where a [`PyImage`]'s image lives: in the record it was read with (shared, not copied:
/// a record's images are handed out without cloning their metadata), or on its own (an image
/// unpickled alone).
enum ImageOf {
    Record(Arc<Record>, Slot),
    Alone(Image),
}

/// One stored image: metadata always, bytes when they were fetched.
#[pyclass(module = "editshard._native", name = "Image", frozen)]
pub struct PyImage {
    of: ImageOf,
}

impl PyImage {
    fn in_record(record: &Arc<Record>, slot: Slot) -> PyImage {
        PyImage {
            of: ImageOf::Record(record.clone(), slot),
        }
    }

    /// The image. A slot always names an image of its record: slots are made from the
    /// record's own turns below.
    fn image(&self) -> &Image {
        match &self.of {
            ImageOf::Alone(image) => image,
            ImageOf::Record(r, Slot::Source) => &r.source,
            ImageOf::Record(r, Slot::Output(t)) => &r.turns[*t].output,
            ImageOf::Record(r, Slot::Rejected(t, k)) => &r.turns[*t].rejected[*k],
            ImageOf::Record(r, Slot::Mask(t)) => r.turns[*t]
                .mask
                .as_ref()
                .expect("a mask slot is made only for a turn with a mask"),
        }
    }

    fn bytes(&self) -> PyResult<&Bytes> {
        self.image().data.as_ref().ok_or_else(|| {
            PyValueError::new_err(
                "this image's bytes were not fetched (metadata-only read or an image \
                 projection without this image)",
            )
        })
    }
}

#[pymethods]
impl PyImage {
    /// The encoded bytes (buffer protocol, no copy), or None when not fetched.
    #[getter]
    fn data(&self) -> Option<ImageData> {
        self.image().data.clone().map(|data| ImageData { data })
    }
    #[getter]
    fn has_data(&self) -> bool {
        self.image().data.is_some()
    }
    #[getter]
    fn media_type(&self) -> &str {
        &self.image().media_type
    }
    #[getter]
    fn width(&self) -> u32 {
        self.image().width
    }
    #[getter]
    fn height(&self) -> u32 {
        self.image().height
    }
    /// Length of the encoded bytes (known even when they were not fetched).
    #[getter]
    fn len(&self) -> u64 {
        self.image().len
    }
    #[getter]
    fn sha256(&self) -> String {
        self.image().sha256_hex()
    }
    #[getter]
    fn url(&self) -> Option<&str> {
        self.image().url.as_deref()
    }
    #[getter]
    fn path(&self) -> Option<&str> {
        self.image().path.as_deref()
    }
    /// Counter-clockwise rotation in degrees recorded by the source (Open Images); the
    /// pixels are not rotated.
    #[getter]
    fn rotation(&self) -> Option<u16> {
        self.image().rotation
    }
    #[getter]
    fn scores<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        scores_dict(py, self.image())
    }
    /// A description of the image's content, if the source dataset has one (format 1.1).
    #[getter]
    fn caption(&self) -> Option<&str> {
        self.image().caption.as_deref()
    }

    /// Decodes the pixels (GIL released) to a uint8 NumPy array of shape (H, W, C).
    #[pyo3(signature = (mode=None, exif_transpose=false))]
    fn to_numpy<'py>(
        &self,
        py: Python<'py>,
        mode: Option<&str>,
        exif_transpose: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let bytes = self.bytes()?.clone();
        decode::to_numpy(py, &bytes, mode, exif_transpose)
    }

    /// The image as a `PIL.Image.Image` (opened lazily by PIL from a copy of the bytes).
    fn to_pil<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let bytes = PyBytes::new(py, self.bytes()?);
        let bio = py.import("io")?.call_method1("BytesIO", (bytes,))?;
        py.import("PIL.Image")?.call_method1("open", (bio,))
    }

    /// Metadata as a dict (no bytes).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &serde_json::to_value(self.image()).map_err(json_err)?)
    }

    fn __repr__(&self) -> String {
        format!(
            "<editshard.Image {} {}x{}, {} bytes{}>",
            self.image().media_type,
            self.image().width,
            self.image().height,
            self.image().len,
            if self.image().data.is_some() {
                ""
            } else {
                ", not fetched"
            }
        )
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let me = slf.get();
        let json = serde_json::to_string(me.image()).map_err(json_err)?;
        let data = me.image().data.as_ref().map(|d| PyBytes::new(py, d));
        let ctor = py.get_type::<PyImage>().getattr("_from_pickle")?;
        Ok((ctor, (json, data)).into_pyobject(py)?.into_any())
    }

    #[staticmethod]
    #[pyo3(signature = (json, data=None))]
    fn _from_pickle(json: &str, data: Option<Bound<'_, PyBytes>>) -> PyResult<PyImage> {
        let mut image: Image = serde_json::from_str(json).map_err(json_err)?;
        image.data = data.map(|b| Bytes::copy_from_slice(b.as_bytes()));
        Ok(PyImage {
            of: ImageOf::Alone(image),
        })
    }
}

/// One instruction and its result.
#[pyclass(module = "editshard._native", name = "Turn", frozen)]
pub struct PyTurn {
    record: Arc<Record>,
    index: usize,
}

impl PyTurn {
    fn turn(&self) -> &editshard::record::Turn {
        &self.record.turns[self.index]
    }
}

#[pymethods]
impl PyTurn {
    #[getter]
    fn instruction(&self) -> Option<&str> {
        self.turn().instruction.as_deref()
    }
    #[getter]
    fn short_instruction(&self) -> Option<&str> {
        self.turn().short_instruction.as_deref()
    }
    #[getter]
    fn edit_type(&self) -> Option<&str> {
        self.turn().edit_type.as_deref()
    }
    #[getter]
    fn category(&self) -> Option<&str> {
        self.turn().category.as_deref()
    }
    /// The edited image (for preference records: the chosen one).
    #[getter]
    fn output(&self) -> PyImage {
        PyImage::in_record(&self.record, Slot::Output(self.index))
    }
    /// Failed edits of the same instruction (preference records).
    #[getter]
    fn rejected(&self) -> Vec<PyImage> {
        (0..self.turn().rejected.len())
            .map(|k| PyImage::in_record(&self.record, Slot::Rejected(self.index, k)))
            .collect()
    }
    /// The region the edit may change, as an image (MagicBrush-style datasets; format 1.1).
    #[getter]
    fn mask(&self) -> Option<PyImage> {
        self.turn()
            .mask
            .is_some()
            .then(|| PyImage::in_record(&self.record, Slot::Mask(self.index)))
    }
    /// Other phrasings of the instruction, in the source's order (format 1.1).
    #[getter]
    fn instruction_variants(&self) -> Vec<String> {
        self.turn().instruction_variants.clone()
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &serde_json::to_value(self.turn()).map_err(json_err)?)
    }
    fn __repr__(&self) -> String {
        format!(
            "<editshard.Turn {:?} ({})>",
            self.turn().short_instruction.as_deref().unwrap_or(""),
            self.turn().edit_type.as_deref().unwrap_or("?")
        )
    }
}

/// One example: a source image and its turns.
#[pyclass(module = "editshard._native", name = "Record", frozen)]
pub struct PyRecord {
    record: Arc<Record>,
}

impl PyRecord {
    pub fn new(record: Record) -> PyRecord {
        PyRecord {
            record: Arc::new(record),
        }
    }
}

#[pymethods]
impl PyRecord {
    #[getter]
    fn id(&self) -> &str {
        &self.record.id
    }
    /// "sft", "preference", "multi-turn" or "generic".
    #[getter]
    fn kind(&self) -> &'static str {
        self.record.kind.name()
    }
    #[getter]
    fn source(&self) -> PyImage {
        PyImage::in_record(&self.record, Slot::Source)
    }
    #[getter]
    fn turns(&self) -> Vec<PyTurn> {
        (0..self.record.turns.len())
            .map(|index| PyTurn {
                record: self.record.clone(),
                index,
            })
            .collect()
    }
    /// Scores of the edited images, by name: those of each turn's (chosen) output, a later
    /// turn's value replacing an earlier one's. Single-turn records have one output.
    #[getter]
    fn scores<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for turn in &self.record.turns {
            for s in &turn.output.scores {
                d.set_item(&s.name, s.value)?;
            }
        }
        Ok(d)
    }
    #[getter]
    fn provenance<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(
            py,
            &serde_json::to_value(&self.record.provenance).map_err(json_err)?,
        )
    }
    /// Fields of the source row with no attribute of their own, verbatim.
    #[getter]
    fn extras<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &serde_json::Value::Object(self.record.extras.clone()))
    }
    /// Every image: the source, then each turn's output, its rejected images and its mask
    /// (the order of `Record::images`).
    fn images(&self) -> Vec<PyImage> {
        let mut out = vec![PyImage::in_record(&self.record, Slot::Source)];
        for (t, turn) in self.record.turns.iter().enumerate() {
            out.push(PyImage::in_record(&self.record, Slot::Output(t)));
            for k in 0..turn.rejected.len() {
                out.push(PyImage::in_record(&self.record, Slot::Rejected(t, k)));
            }
            if turn.mask.is_some() {
                out.push(PyImage::in_record(&self.record, Slot::Mask(t)));
            }
        }
        out
    }
    /// All metadata as plain Python values (no image bytes).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.record.to_json())
    }
    fn __repr__(&self) -> String {
        format!(
            "<editshard.Record {:?} {} turns={}>",
            self.record.id,
            self.record.kind.name(),
            self.record.turns.len()
        )
    }
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let record = &slf.get().record;
        let json = serde_json::to_string(record.as_ref()).map_err(json_err)?;
        let data = PyList::empty(py);
        for image in record.images() {
            match &image.data {
                Some(d) => data.append(PyBytes::new(py, d))?,
                None => data.append(py.None())?,
            }
        }
        let ctor = py.get_type::<PyRecord>().getattr("_from_pickle")?;
        Ok((ctor, (json, data)).into_pyobject(py)?.into_any())
    }
    #[staticmethod]
    fn _from_pickle(json: &str, data: Vec<Option<Bound<'_, PyBytes>>>) -> PyResult<PyRecord> {
        let mut record: Record = serde_json::from_str(json).map_err(json_err)?;
        let mut data = data.into_iter();
        for image in record.images_mut() {
            image.data = data
                .next()
                .flatten()
                .map(|b| Bytes::copy_from_slice(b.as_bytes()));
        }
        Ok(PyRecord::new(record))
    }
}
