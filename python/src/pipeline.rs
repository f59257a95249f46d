//! `editshard._native.Pipeline`: the records of a batch rendered into batch tensors that
//! Python allocated (shared memory in a DataLoader worker), through the buffer protocol, with
//! the GIL released. The pixel work is the `editshard-pipeline` crate's.

use std::sync::Arc;

use editshard::record::{Image, Record};
use editshard_pipeline::{
    Crop, DType, DecodeError, Filter, Geometry, Job, Kind, Limits, Pipeline, Resize,
};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::records::PyRecord;

/// The decode limits of `verify --decode`, with `max_bytes` adjustable.
pub fn limits(max_decode_bytes: u64) -> Limits {
    Limits {
        max_bytes: max_decode_bytes,
        max_side: editshard::probe::MAX_DIMENSION,
    }
}

/// An image role of a batch: which image of a record, and its kind.
#[derive(Clone, Copy)]
enum Role {
    Source,
    Output,
    Rejected,
    Mask,
}

impl Role {
    fn parse(name: &str) -> PyResult<Role> {
        Ok(match name {
            "source" => Role::Source,
            "output" => Role::Output,
            "rejected" => Role::Rejected,
            "mask" => Role::Mask,
            other => {
                return Err(PyValueError::new_err(format!(
                    "image {other:?}: expected 'source', 'output', 'rejected' or 'mask'"
                )));
            }
        })
    }

    fn kind(self) -> Kind {
        match self {
            Role::Mask => Kind::Mask,
            _ => Kind::Color,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Output => "output",
            Role::Rejected => "rejected",
            Role::Mask => "mask",
        }
    }

    /// The record's image in this role: the source, or the first turn's output, first
    /// rejected image or mask (the first turn is the one whose input is the source).
    fn image(self, record: &Record) -> Option<&Image> {
        let turn = record.turns.first();
        match self {
            Role::Source => Some(&record.source),
            Role::Output => turn.map(|t| &t.output),
            Role::Rejected => turn.and_then(|t| t.rejected.first()),
            Role::Mask => turn.and_then(|t| t.mask.as_ref()),
        }
    }
}

fn parse<T>(what: &str, value: &str, choices: &[(&str, T)]) -> PyResult<T>
where
    T: Copy,
{
    choices
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<_> = choices.iter().map(|(n, _)| format!("{n:?}")).collect();
            PyValueError::new_err(format!(
                "{what}={value:?}: expected one of {}",
                names.join(", ")
            ))
        })
}

fn triple(what: &str, v: Option<Vec<f32>>) -> PyResult<Option<[f32; 3]>> {
    v.map(|v| {
        <[f32; 3]>::try_from(v.as_slice()).map_err(|_| {
            PyValueError::new_err(format!("{what} needs 3 values (R, G, B), got {}", v.len()))
        })
    })
    .transpose()
}

/// Decode, resize, crop, flip and convert, configured once.
#[pyclass(module = "editshard._native", name = "Pipeline", frozen)]
pub struct PyPipeline {
    inner: Pipeline,
}

/// A record's failure: the image role, the message, and whether it was the decode limit.
type Failure = (String, String, bool);

#[pymethods]
impl PyPipeline {
    #[new]
    #[pyo3(signature = (height, width, *, resize="shorter", crop=Some("center"), flip=0.0, dtype="uint8", mean=None, std=None, interpolation="bilinear", max_decode_bytes=editshard::probe::MAX_DECODE_BYTES, scaled_jpeg=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        height: u32,
        width: u32,
        resize: &str,
        crop: Option<&str>,
        flip: f64,
        dtype: &str,
        mean: Option<Vec<f32>>,
        std: Option<Vec<f32>>,
        interpolation: &str,
        max_decode_bytes: u64,
        scaled_jpeg: bool,
    ) -> PyResult<PyPipeline> {
        if height == 0 || width == 0 || height > 32_768 || width > 32_768 {
            return Err(PyValueError::new_err(format!(
                "size {height}x{width}: each side must be 1 to 32768"
            )));
        }
        let resize = parse(
            "resize",
            resize,
            &[
                ("shorter", Resize::Shorter),
                ("longer", Resize::Longer),
                ("exact", Resize::Exact),
            ],
        )?;
        let crop = match crop {
            None => Crop::None,
            Some(c) => parse(
                "crop",
                c,
                &[("center", Crop::Center), ("random", Crop::Random)],
            )?,
        };
        if crop == Crop::None && resize != Resize::Exact {
            return Err(PyValueError::new_err(
                "crop=None needs resize='exact': every image of a batch has the batch's size",
            ));
        }
        if !(0.0..=1.0).contains(&flip) {
            return Err(PyValueError::new_err(format!(
                "flip={flip}: a probability, 0 to 1"
            )));
        }
        let dtype = parse(
            "dtype",
            dtype,
            &[
                ("uint8", DType::U8),
                ("float32", DType::F32),
                ("bfloat16", DType::BF16),
            ],
        )?;
        let normalize = match (triple("mean", mean)?, triple("std", std)?) {
            (None, None) => None,
            (Some(m), Some(s)) => {
                if s.iter().any(|&v| v.is_nan() || v <= 0.0 || v.is_infinite()) {
                    return Err(PyValueError::new_err(format!(
                        "std={s:?}: every value must be > 0"
                    )));
                }
                Some((m, s))
            }
            _ => {
                return Err(PyValueError::new_err(
                    "mean and std go together: give both or neither",
                ));
            }
        };
        if normalize.is_some() && dtype == DType::U8 {
            return Err(PyValueError::new_err(
                "mean/std need dtype='float32' or 'bfloat16' (uint8 holds 0..255 only)",
            ));
        }
        let filter = parse(
            "interpolation",
            interpolation,
            &[
                ("nearest", Filter::Nearest),
                ("bilinear", Filter::Bilinear),
                ("bicubic", Filter::Bicubic),
                ("lanczos", Filter::Lanczos3),
            ],
        )?;
        let geometry = Geometry {
            height,
            width,
            resize,
            crop,
            flip,
        };
        Ok(PyPipeline {
            inner: Pipeline::new(
                geometry,
                filter,
                dtype,
                normalize,
                limits(max_decode_bytes),
                scaled_jpeg,
            ),
        })
    }

    /// Channels of an image role's tensors (3, or 1 for "mask").
    fn channels(&self, role: &str) -> PyResult<usize> {
        Ok(self.inner.channels(Role::parse(role)?.kind()))
    }

    /// The crop box and flip of a record: (top, left, flipped) in the reference image's
    /// resized frame (negative where padded), and that frame's (height, width).
    fn placement(
        &self,
        id: &str,
        ref_width: u32,
        ref_height: u32,
        seed: u64,
        epoch: u64,
    ) -> ((i64, i64, bool), (u32, u32)) {
        let p = self
            .inner
            .place(seed, epoch, id.as_bytes(), ref_width, ref_height);
        ((p.top, p.left, p.flip), (p.resized_height, p.resized_width))
    }

    /// Renders record i's image of role `roles[k]` into slot i of `outputs[k]` (a writable,
    /// C-contiguous buffer of len(records) slots). Returns, per record, None or its first
    /// failure (role, message, over-the-limit).
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        py: Python<'_>,
        records: Vec<Bound<'_, PyRecord>>,
        roles: Vec<String>,
        outputs: Vec<Bound<'_, PyAny>>,
        seed: u64,
        epoch: u64,
        threads: usize,
    ) -> PyResult<Vec<Option<Failure>>> {
        if roles.len() != outputs.len() {
            return Err(PyValueError::new_err("one output per image role"));
        }
        let roles = roles
            .iter()
            .map(|r| Role::parse(r))
            .collect::<PyResult<Vec<_>>>()?;
        let n = records.len();
        let mut buffers = Vec::with_capacity(outputs.len());
        for (role, out) in roles.iter().zip(&outputs) {
            let buffer = PyBuffer::<u8>::get(out)?;
            let want = n * self.inner.slot_len(role.kind());
            if buffer.readonly() || !buffer.is_c_contiguous() || buffer.len_bytes() != want {
                return Err(PyValueError::new_err(format!(
                    "the {} output must be a writable C-contiguous buffer of {want} bytes",
                    role.name()
                )));
            }
            buffers.push(buffer);
        }
        let records: Vec<Arc<Record>> = records.iter().map(|r| r.get().record.clone()).collect();
        let mut failures: Vec<Option<Failure>> = vec![None; n];
        let mut jobs = Vec::with_capacity(n * roles.len());
        let mut owners = Vec::with_capacity(n * roles.len());
        for (k, (role, buffer)) in roles.iter().zip(&buffers).enumerate() {
            let slot_len = self.inner.slot_len(role.kind());
            // SAFETY: `buffer` is a writable, C-contiguous export of exactly n * slot_len
            // bytes (checked above), held (so the memory stays valid and is not moved)
            // until after the jobs are done: `buffers` is dropped at the end of this
            // function, after `render_all` returned. The slices of different buffers do not
            // overlap unless the caller passed one object twice, which is refused below;
            // this call is the only writer (the tensors are fresh, not yet handed out).
            let all = unsafe {
                std::slice::from_raw_parts_mut(buffer.buf_ptr().cast::<u8>(), buffer.len_bytes())
            };
            if buffers[..k]
                .iter()
                .any(|b| std::ptr::eq(b.buf_ptr(), buffer.buf_ptr()))
            {
                return Err(PyValueError::new_err("the same output twice"));
            }
            for (i, slot) in all.chunks_exact_mut(slot_len.max(1)).enumerate().take(n) {
                let record = &records[i];
                let image = match role.image(record) {
                    Some(image) => image,
                    None => {
                        failures[i].get_or_insert_with(|| {
                            (
                                role.name().to_string(),
                                format!("record {:?} has no {} image", record.id, role.name()),
                                false,
                            )
                        });
                        continue;
                    }
                };
                let Some(bytes) = image.data.as_ref() else {
                    failures[i].get_or_insert_with(|| {
                        (
                            role.name().to_string(),
                            format!(
                                "record {:?}: its {} image's bytes were not fetched",
                                record.id,
                                role.name()
                            ),
                            false,
                        )
                    });
                    continue;
                };
                let placement = self.inner.place(
                    seed,
                    epoch,
                    record.id.as_bytes(),
                    record.source.width,
                    record.source.height,
                );
                owners.push((i, *role));
                jobs.push(Job {
                    bytes: bytes.as_ref(),
                    kind: role.kind(),
                    placement,
                    slot,
                });
            }
        }
        let results = py.detach(|| self.inner.render_all(jobs, threads));
        for ((i, role), result) in owners.into_iter().zip(results) {
            if let Err(e) = result {
                failures[i].get_or_insert_with(|| {
                    (
                        role.name().to_string(),
                        located(&records[i].id, role.name(), &e),
                        e.is_limit(),
                    )
                });
            }
        }
        drop(buffers);
        Ok(failures)
    }
}

fn located(id: &str, role: &str, e: &DecodeError) -> String {
    format!("record {id:?}, {role} image: {e}")
}
