//! `NativeWriter`: a dataset written from Python, over the library's
//! [`DestinationWriter`] (the destination's lock, ids unique, shards published whole, the
//! manifest last). Every append (metadata encoding and compression, CRCs, the file writes,
//! uploads) runs with the GIL released; the images were hashed, also without the GIL, when
//! their `Image` objects were made.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use editshard::ErrorKind;
use editshard::record::Record;
use editshard::shard::WriterOptions;
use editshard::storage::Location;
use editshard::write::{DestinationOptions, DestinationWriter};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::records::PyRecord;
use crate::{Runtime, storage_options};

/// Where a writer is in its life.
enum State {
    Open(Box<DestinationWriter>),
    /// An append failed in a way that may have left a shard half-written (an I/O or upload
    /// error): only `abort` is left, which `close` and dropping the writer run.
    Failed(Box<DestinationWriter>, String),
    /// Closed (the manifest published) or aborted: nothing more can be written.
    Done(&'static str),
}

/// Defaults filled into the provenance of records that do not set them.
struct Defaults {
    licence: Option<String>,
    dataset: Option<String>,
}

impl Defaults {
    /// `record`, or a copy with the defaults filled in where its provenance has none.
    fn apply(&self, record: &Arc<Record>) -> Arc<Record> {
        let p = &record.provenance;
        let licence = self.licence.is_some() && p.licence.is_none();
        let dataset = self.dataset.is_some() && p.dataset.is_none();
        if !licence && !dataset {
            return record.clone();
        }
        let mut owned = Record::clone(record);
        if licence {
            owned.provenance.licence = self.licence.clone();
        }
        if dataset {
            owned.provenance.dataset = self.dataset.clone();
        }
        Arc::new(owned)
    }
}

/// Why a call on the writer did not happen.
enum WriteError {
    /// The writer is not open (closed, aborted or failed): the message says which.
    NotOpen(String),
    Library(editshard::Error),
}

impl From<WriteError> for PyErr {
    fn from(e: WriteError) -> PyErr {
        match e {
            WriteError::NotOpen(msg) => PyValueError::new_err(msg),
            WriteError::Library(e) => to_py(e),
        }
    }
}

/// Writes one dataset to a local directory or an `s3://` prefix (see `editshard.Writer`).
#[pyclass(module = "editshard._native", frozen)]
pub struct NativeWriter {
    rt: Arc<Runtime>,
    state: Mutex<State>,
    defaults: Defaults,
    display: String,
    written: AtomicU64,
}

/// The minor version of `"1.N"`, for the versions this writer writes.
fn minor_version(format_version: &str) -> PyResult<u16> {
    match format_version {
        "1.0" => Ok(0),
        "1.1" => Ok(1),
        other => Err(PyValueError::new_err(format!(
            "format_version {other:?}: this writer writes \"1.1\" (the default) or \"1.0\" (for \
             readers that predate 1.1)"
        ))),
    }
}

fn shard_bytes(shard_size: &Bound<'_, PyAny>) -> PyResult<u64> {
    if let Ok(text) = shard_size.extract::<String>() {
        return editshard::units::parse_size(&text).map_err(to_py);
    }
    match shard_size.extract::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(PyValueError::new_err(format!(
            "shard_size must be a positive number of bytes or a size such as \"512MiB\", not \
             {shard_size}"
        ))),
    }
}

impl NativeWriter {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn not_open(&self, state: &State) -> String {
        match state {
            State::Open(_) => unreachable!("asked only of a writer that is not open"),
            State::Failed(_, why) => format!(
                "this writer of {} failed ({why}): nothing more can be written, and nothing \
                 will be published",
                self.display
            ),
            State::Done(what) => format!(
                "this writer of {} is {what}: nothing more can be written",
                self.display
            ),
        }
    }

    /// Appends `record` with the GIL released. A refused record (a duplicate id, a limit)
    /// leaves the writer open; any other error leaves it failed.
    fn append(&self, py: Python<'_>, record: &Arc<Record>) -> PyResult<()> {
        let record = self.defaults.apply(record);
        py.detach(|| {
            let mut state = self.state();
            let State::Open(writer) = &mut *state else {
                return Err(WriteError::NotOpen(self.not_open(&state)));
            };
            let result = writer.append(&record);
            match &result {
                Ok(()) => {
                    self.written.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) if matches!(e.kind(), ErrorKind::Rejected(_)) => {}
                Err(e) => {
                    if let State::Open(w) = std::mem::replace(&mut *state, State::Done("failed")) {
                        *state = State::Failed(w, e.to_string());
                    }
                }
            }
            result.map_err(WriteError::Library)
        })
        .map_err(PyErr::from)
    }

    /// Takes the writer out of its state, leaving `Done(then)` if it was open or failed.
    fn take(&self, then: &'static str) -> State {
        let mut state = self.state();
        match &*state {
            State::Done(_) => State::Done("done"),
            _ => std::mem::replace(&mut *state, State::Done(then)),
        }
    }
}

#[pymethods]
impl NativeWriter {
    /// Takes the destination's lock and checks it can hold a new dataset.
    #[new]
    #[pyo3(signature = (location, *, shard_size, format_version, licence=None, dataset=None, s3_endpoint=None, timeout=None, connect_timeout=None, retries=None, break_lock=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        location: String,
        shard_size: &Bound<'_, PyAny>,
        format_version: &str,
        licence: Option<String>,
        dataset: Option<String>,
        s3_endpoint: Option<String>,
        timeout: Option<f64>,
        connect_timeout: Option<f64>,
        retries: Option<usize>,
        break_lock: bool,
    ) -> PyResult<NativeWriter> {
        let minor = minor_version(format_version)?;
        if minor == 0 && dataset.is_some() {
            return Err(PyValueError::new_err(
                "dataset= is recorded in each record's provenance, which format 1.0 cannot \
                 hold: write format 1.1 (the default) or leave dataset out",
            ));
        }
        let trimmed = location.trim_start();
        if ["http://", "https://", "hf://"]
            .iter()
            .any(|scheme| trimmed.starts_with(scheme))
        {
            return Err(PyValueError::new_err(format!(
                "{location}: HTTP and hf:// locations are read-only; write to a local directory \
                 or an s3:// prefix (and publish to the Hub with its own CLI: see the README's \
                 \"Host on the Hub or a CDN\")"
            )));
        }
        let storage = storage_options(s3_endpoint, timeout, connect_timeout, retries)?;
        let dest = Location::parse(&location, &storage).map_err(to_py)?;
        let opts = DestinationOptions {
            shard_bytes: shard_bytes(shard_size)?,
            writer: WriterOptions {
                // The images were hashed when their `Image` objects were made (or checked
                // against their hashes when read): a third SHA-256 pass would only cost.
                verify_hashes: false,
                minor_version: minor,
                ..WriterOptions::default()
            },
            licence: licence.clone(),
            command: "editshard.Writer (Python)".to_string(),
            break_lock,
            staging_parent: None,
        };
        let rt = Arc::new(Runtime::new()?);
        let handle = rt.get()?.handle().clone();
        let writer = py
            .detach(|| DestinationWriter::create(dest, opts, handle))
            .map_err(to_py)?;
        Ok(NativeWriter {
            rt,
            display: writer.display(),
            state: Mutex::new(State::Open(Box::new(writer))),
            defaults: Defaults { licence, dataset },
            written: AtomicU64::new(0),
        })
    }

    /// Appends one record.
    fn write(&self, py: Python<'_>, record: PyRef<'_, PyRecord>) -> PyResult<()> {
        let record = record.record().clone();
        self.append(py, &record)
    }

    /// Appends every record of an iterable, one at a time (only one is held at once);
    /// returns how many were written.
    fn write_many(&self, py: Python<'_>, records: &Bound<'_, PyAny>) -> PyResult<u64> {
        let mut n = 0;
        for item in records.try_iter()? {
            let item = item?;
            let record = item.cast::<PyRecord>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "write_many takes editshard.Record objects, not {}",
                    item.get_type()
                ))
            })?;
            let record = record.get().record().clone();
            drop(item);
            self.append(py, &record)?;
            n += 1;
        }
        Ok(n)
    }

    /// Finishes the last shard, waits for the uploads and publishes `manifest.json`; returns
    /// it as JSON text. A writer that failed is aborted instead (nothing is published) and
    /// the failure raised again.
    fn close(&self, py: Python<'_>) -> PyResult<String> {
        match self.take("closed") {
            State::Open(w) => {
                let manifest = py.detach(|| w.finish()).map_err(to_py)?;
                Ok(String::from_utf8_lossy(&manifest.to_json().map_err(to_py)?).into_owned())
            }
            State::Failed(w, why) => {
                let aborted = py.detach(|| w.abort());
                *self.state() = State::Done("aborted");
                let mut msg = format!(
                    "{} was not published: writing failed earlier ({why}); what was written \
                     has been removed",
                    self.display
                );
                if let Err(e) = aborted {
                    msg.push_str(&format!(" (except: {e})"));
                }
                Err(PyValueError::new_err(msg))
            }
            State::Done(_) => Err(WriteError::NotOpen(self.not_open(&self.state())).into()),
        }
    }

    /// Removes everything written and releases the destination (nothing is published). Does
    /// nothing on a writer already closed or aborted.
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        match self.take("aborted") {
            State::Open(w) | State::Failed(w, _) => py.detach(|| w.abort()).map_err(to_py),
            State::Done(_) => Ok(()),
        }
    }

    /// Records written so far.
    #[getter]
    fn records(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Whether the writer still takes records.
    #[getter]
    fn is_open(&self) -> bool {
        matches!(&*self.state(), State::Open(_))
    }

    /// The destination as shown in messages.
    #[getter]
    fn display(&self) -> &str {
        &self.display
    }
}

impl Drop for NativeWriter {
    /// A writer dropped without `close` or `abort` is aborted: nothing is published. In a
    /// process forked from the one that made it, nothing is touched (the runtime's threads
    /// are not there, and the files are the parent's).
    fn drop(&mut self) {
        let state = std::mem::replace(
            self.state.get_mut().unwrap_or_else(|p| p.into_inner()),
            State::Done("dropped"),
        );
        let (State::Open(w) | State::Failed(w, _)) = state else {
            return;
        };
        if self.rt.get().is_err() {
            std::mem::forget(w);
            return;
        }
        let aborted = Python::attach(|py| py.detach(|| w.abort()));
        if let Err(e) = aborted {
            eprintln!("editshard: {e}");
        }
    }
}
