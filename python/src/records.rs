//! Records, turns and images as frozen Python objects sharing the Rust data: those a read
//! returns, and those built in Python to be written (the constructors, whose arguments are
//! checked and converted by [`crate::construct`]).

use std::ffi::c_int;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use editshard::record::{Image, Kind, Record, Turn};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyBufferError, PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyType};

use crate::construct;
use crate::convert::json_to_py;
use crate::decode;
use crate::encode;

/// Image bytes owned by Rust, readable through the buffer protocol without a copy:
/// `memoryview(data)`, `bytes(data)` (one copy), `numpy.frombuffer(data, numpy.uint8)`.
#[pyclass(module = "editshard._native", name = "ImageData", frozen)]
pub struct ImageData {
    data: Bytes,
}

impl ImageData {
    pub fn new(data: Bytes) -> ImageData {
        ImageData { data }
    }
    pub fn bytes(&self) -> &Bytes {
        &self.data
    }
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

    fn alone(image: Image) -> PyImage {
        PyImage {
            of: ImageOf::Alone(image),
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
    /// An image to write, from its encoded bytes (`bytes`, an `ImageData`, or any buffer of
    /// bytes): the media type, width and height are read from the header (JPEG, PNG, WebP)
    /// and the bytes hashed, with the GIL released. The bytes are stored as they are.
    #[new]
    #[pyo3(signature = (data, *, media_type=None, url=None, path=None, caption=None, scores=None, rotation=None))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        media_type: Option<&str>,
        url: Option<String>,
        path: Option<String>,
        caption: Option<String>,
        scores: Option<&Bound<'_, PyAny>>,
        rotation: Option<u16>,
    ) -> PyResult<PyImage> {
        let bytes = construct::image_bytes(data)?;
        let mut image = construct::describe(py, bytes, media_type)?;
        image.url = url;
        image.path = path;
        image.caption = caption;
        image.rotation = rotation;
        if let Some(s) = scores {
            image.scores = construct::scores(s)?;
        }
        Ok(PyImage::alone(image))
    }

    /// An image from the bytes of a file, stored as they are (no decoding or re-encoding).
    /// Keyword arguments are the constructor's.
    #[classmethod]
    #[pyo3(signature = (file, **kwargs))]
    fn from_file<'py>(
        cls: &Bound<'py, PyType>,
        file: PathBuf,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let data = cls
            .py()
            .detach(|| std::fs::read(&file))
            .map_err(|e| PyOSError::new_err(format!("cannot read {}: {e}", file.display())))?;
        cls.call((ImageData::new(Bytes::from(data)),), kwargs)
    }

    /// A PIL image, encoded by Pillow in `format` ("PNG", "JPEG", "WEBP"). Keyword arguments
    /// are the constructor's.
    #[classmethod]
    #[pyo3(signature = (img, format="PNG", **kwargs))]
    fn from_pil<'py>(
        cls: &Bound<'py, PyType>,
        img: &Bound<'py, PyAny>,
        format: &str,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let bio = cls.py().import("io")?.call_method0("BytesIO")?;
        let save_kwargs = PyDict::new(cls.py());
        save_kwargs.set_item("format", format)?;
        img.call_method("save", (&bio,), Some(&save_kwargs))?;
        cls.call((bio.call_method0("getvalue")?,), kwargs)
    }

    /// A uint8 array of shape (H, W) or (H, W, C) with C = 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA),
    /// encoded in Rust with the GIL released as `format`: "PNG", "JPEG" (quality 95; no
    /// alpha) or "WEBP" (lossless). Keyword arguments are the constructor's.
    #[classmethod]
    #[pyo3(signature = (array, format="PNG", **kwargs))]
    fn from_numpy<'py>(
        cls: &Bound<'py, PyType>,
        array: &Bound<'py, PyAny>,
        format: &str,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        let contiguous = py
            .import("numpy")?
            .call_method1("ascontiguousarray", (array,))?;
        let dtype = contiguous.getattr("dtype")?.str()?.to_string();
        let buffer = PyBuffer::<u8>::get(&contiguous).map_err(|e| {
            PyTypeError::new_err(format!("from_numpy needs a uint8 array, not {dtype}: {e}"))
        })?;
        let shape = buffer.shape().to_vec();
        let (height, width, channels) = match shape[..] {
            [h, w] => (h, w, 1),
            [h, w, c] => (h, w, c),
            _ => {
                return Err(PyValueError::new_err(format!(
                    "from_numpy needs an array of shape (H, W) or (H, W, C), not {shape:?}"
                )));
            }
        };
        let color = encode::color_type(channels).map_err(PyValueError::new_err)?;
        let too_big = |n: usize| u32::try_from(n).map_err(|_| PyValueError::new_err("too large"));
        let (w, h) = (too_big(width)?, too_big(height)?);
        let pixels = buffer.to_vec(py)?;
        let encoded = py
            .detach(|| encode::encode(&pixels, w, h, color, format))
            .map_err(PyValueError::new_err)?;
        cls.call((ImageData::new(Bytes::from(encoded)),), kwargs)
    }

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

    /// Decodes the pixels (GIL released) to a uint8 NumPy array of shape (H, W, C), refusing
    /// images whose decoded pixels would take more than `max_decode_bytes`.
    #[pyo3(signature = (mode=None, exif_transpose=false, max_decode_bytes=editshard::probe::MAX_DECODE_BYTES))]
    fn to_numpy<'py>(
        &self,
        py: Python<'py>,
        mode: Option<&str>,
        exif_transpose: bool,
        max_decode_bytes: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let bytes = self.bytes()?.clone();
        decode::to_numpy(py, &bytes, mode, exif_transpose, max_decode_bytes)
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
    turn: TurnRef,
}

/// A turn of a record (shared with it, as reads give them), or one built in Python.
enum TurnRef {
    InRecord(Arc<Record>, usize),
    Own(Box<Turn>),
}

impl PyTurn {
    fn turn(&self) -> &Turn {
        match &self.turn {
            TurnRef::InRecord(record, index) => &record.turns[*index],
            TurnRef::Own(turn) => turn,
        }
    }
}

#[pymethods]
impl PyTurn {
    /// A turn to write. `output` (the edited image; for preference records the chosen one)
    /// is required; `rejected` are failed edits of the same instruction, `mask` the region
    /// the edit may change (format 1.1).
    #[new]
    #[pyo3(signature = (instruction, *, short_instruction=None, edit_type=None, category=None, output=None, rejected=Vec::new(), mask=None, instruction_variants=Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        instruction: Option<String>,
        short_instruction: Option<String>,
        edit_type: Option<String>,
        category: Option<String>,
        output: Option<PyRef<'_, PyImage>>,
        rejected: Vec<PyRef<'_, PyImage>>,
        mask: Option<PyRef<'_, PyImage>>,
        instruction_variants: Vec<String>,
    ) -> PyResult<PyTurn> {
        let output = output.ok_or_else(|| {
            PyValueError::new_err(
                "a turn needs its output image: Turn(instruction, output=editshard.Image(...))",
            )
        })?;
        Ok(PyTurn {
            turn: TurnRef::Own(Box::new(Turn {
                instruction,
                short_instruction,
                edit_type,
                category,
                output: output.image().clone(),
                rejected: rejected.iter().map(|i| i.image().clone()).collect(),
                mask: mask.map(|m| m.image().clone()),
                instruction_variants,
            })),
        })
    }

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
        match &self.turn {
            TurnRef::InRecord(r, t) => PyImage::in_record(r, Slot::Output(*t)),
            TurnRef::Own(turn) => PyImage::alone(turn.output.clone()),
        }
    }
    /// Failed edits of the same instruction (preference records).
    #[getter]
    fn rejected(&self) -> Vec<PyImage> {
        match &self.turn {
            TurnRef::InRecord(r, t) => (0..r.turns[*t].rejected.len())
                .map(|k| PyImage::in_record(r, Slot::Rejected(*t, k)))
                .collect(),
            TurnRef::Own(turn) => turn.rejected.iter().cloned().map(PyImage::alone).collect(),
        }
    }
    /// The region the edit may change, as an image (MagicBrush-style datasets; format 1.1).
    #[getter]
    fn mask(&self) -> Option<PyImage> {
        let turn = self.turn();
        turn.mask.as_ref()?;
        Some(match &self.turn {
            TurnRef::InRecord(r, t) => PyImage::in_record(r, Slot::Mask(*t)),
            TurnRef::Own(own) => PyImage::alone(own.mask.clone()?),
        })
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
    pub(crate) record: Arc<Record>,
}

impl PyRecord {
    pub fn new(record: Record) -> PyRecord {
        PyRecord {
            record: Arc::new(record),
        }
    }

    pub fn record(&self) -> &Arc<Record> {
        &self.record
    }
}

#[pymethods]
impl PyRecord {
    /// A record to write: `kind` is "sft", "preference", "multi-turn" or "generic";
    /// `provenance` a dict with the keys `Record.provenance` has; `extras` a dict of JSON
    /// values (the source row's other fields).
    #[new]
    #[pyo3(signature = (id, kind, source, turns, *, provenance=None, extras=None))]
    fn py_new(
        id: String,
        kind: &str,
        source: PyRef<'_, PyImage>,
        turns: Vec<PyRef<'_, PyTurn>>,
        provenance: Option<&Bound<'_, PyAny>>,
        extras: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyRecord> {
        let kind = Kind::from_name(kind).ok_or_else(|| {
            PyValueError::new_err(format!(
                "unknown kind {kind:?}: expected one of sft, preference, multi-turn, generic"
            ))
        })?;
        let mut record = Record::new(
            id,
            kind,
            source.image().clone(),
            turns.iter().map(|t| t.turn().clone()).collect(),
        );
        if let Some(p) = provenance {
            record.provenance = construct::provenance(p)?;
        }
        if let Some(e) = extras {
            record.extras = construct::extras(e)?;
        }
        Ok(PyRecord::new(record))
    }

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
                turn: TurnRef::InRecord(self.record.clone(), index),
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
