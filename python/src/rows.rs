//! Records as the rows of `editshard.ray`'s Arrow schema (`editshard/_arrow.py`): plain
//! Python dicts built straight from the record, for `pyarrow.Table.from_pylist`; image bytes
//! as memoryviews over the record's own buffers (no copy before Arrow's). The same
//! rows can be made in Python from `Record.to_dict()`, but that goes through JSON text and a
//! walk of the result: this is the per-record cost of a Ray read task.

use editshard::record::{Image, Record};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyMemoryView};

use crate::records::{ImageData, PyRecord};

/// `[(name, value), ...]` in stored order: an Arrow map's Python form.
fn score_pairs<'py, 'a>(
    py: Python<'py>,
    scores: impl Iterator<Item = (&'a str, f32)>,
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for (name, value) in scores {
        let pair = (name, f64::from(value)).into_pyobject(py)?;
        list.append(pair)?;
    }
    Ok(list)
}

fn image_row<'py>(py: Python<'py>, image: &Image) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    match &image.data {
        // A memoryview over the shared bytes: pyarrow copies them once, into the block.
        Some(bytes) => {
            let data = Bound::new(py, ImageData::new(bytes.clone()))?;
            d.set_item("bytes", PyMemoryView::from(data.as_any())?)?;
        }
        None => d.set_item("bytes", py.None())?,
    }
    d.set_item("media_type", &image.media_type)?;
    d.set_item("width", image.width)?;
    d.set_item("height", image.height)?;
    d.set_item("len", image.len)?;
    d.set_item("sha256", image.sha256_hex())?;
    d.set_item("url", image.url.as_deref())?;
    d.set_item("path", image.path.as_deref())?;
    d.set_item("rotation", image.rotation)?;
    d.set_item("caption", image.caption.as_deref())?;
    let scores = image.scores.iter().map(|s| (s.name.as_str(), s.value));
    d.set_item("scores", score_pairs(py, scores)?)?;
    Ok(d)
}

fn record_row<'py>(py: Python<'py>, record: &Record) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", &record.id)?;
    d.set_item("kind", record.kind.name())?;
    d.set_item("source", image_row(py, &record.source)?)?;
    let turns = PyList::empty(py);
    // The record's scores: each turn's output's, a later turn's value replacing an earlier
    // one's in its first place (as a dict's update does, and `Record.scores`).
    let mut scores: Vec<(&str, f32)> = Vec::new();
    for turn in &record.turns {
        let t = PyDict::new(py);
        t.set_item("instruction", turn.instruction.as_deref())?;
        t.set_item("short_instruction", turn.short_instruction.as_deref())?;
        t.set_item("edit_type", turn.edit_type.as_deref())?;
        t.set_item("category", turn.category.as_deref())?;
        t.set_item("output", image_row(py, &turn.output)?)?;
        let rejected = PyList::empty(py);
        for image in &turn.rejected {
            rejected.append(image_row(py, image)?)?;
        }
        t.set_item("rejected", rejected)?;
        match &turn.mask {
            Some(mask) => t.set_item("mask", image_row(py, mask)?)?,
            None => t.set_item("mask", py.None())?,
        }
        t.set_item("instruction_variants", &turn.instruction_variants)?;
        turns.append(t)?;
        for s in &turn.output.scores {
            match scores.iter_mut().find(|(name, _)| *name == s.name) {
                Some(slot) => slot.1 = s.value,
                None => scores.push((s.name.as_str(), s.value)),
            }
        }
    }
    d.set_item("turns", turns)?;
    d.set_item("scores", score_pairs(py, scores.into_iter())?)?;
    let p = &record.provenance;
    let provenance = PyDict::new(py);
    provenance.set_item("subset", p.subset.as_deref())?;
    provenance.set_item("file", p.file.as_deref())?;
    provenance.set_item("line", p.line)?;
    provenance.set_item("licence", p.licence.as_deref())?;
    provenance.set_item("dataset", p.dataset.as_deref())?;
    provenance.set_item("revision", p.revision.as_deref())?;
    provenance.set_item("row_group", p.row_group)?;
    provenance.set_item("row", p.row)?;
    d.set_item("provenance", provenance)?;
    if record.extras.is_empty() {
        d.set_item("extras", py.None())?;
    } else {
        let text = serde_json::to_string(&record.extras)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
        d.set_item("extras", text)?;
    }
    Ok(d)
}

/// The rows of `records`, in order (see `editshard/_arrow.py` for the schema).
#[pyfunction]
pub fn record_rows<'py>(
    py: Python<'py>,
    records: Vec<Bound<'py, PyRecord>>,
) -> PyResult<Bound<'py, PyList>> {
    let rows = PyList::empty(py);
    for record in &records {
        rows.append(record_row(py, record.get().record())?)?;
    }
    Ok(rows)
}
