//! `editshard._native`: the Rust half of the `editshard` Python package.
//!
//! A thin layer over `editshard::read`: a [`NativeDataset`] owns a small tokio runtime and an
//! async [`Dataset`]; every call that does I/O, CRC checking or image decoding releases the
//! GIL (`Python::detach`) while it runs. Records come back as frozen pyclasses whose image
//! bytes are shared with Rust (`ImageData` exposes them through the buffer protocol without a
//! copy). The friendly API (indexing, filters, PyTorch datasets) is the pure-Python part.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::prelude::*;

mod construct;
mod convert;
mod decode;
mod encode;
mod errors;
mod mix;
mod pipeline;
mod records;
mod rows;
mod writer;

use editshard::read::{
    Dataset, DatasetOptions, EpochOrder, Filter, Images, Partition, PlanStream, ReadPlan,
    ResumeState, Shuffle, SkipFn,
};
use editshard::shard::Verify;
use editshard::storage::{Location, StorageOptions};
use errors::to_py;
use records::{ImageData, PyImage, PyRecord, PyTurn};

/// A tokio runtime that is never torn down in a process other than the one that built it:
/// after `fork` the child has none of the runtime's threads, and joining or signalling them
/// could wait forever on a lock a parent thread held at the time of the fork.
struct Runtime {
    rt: Option<tokio::runtime::Runtime>,
    pid: u32,
}

impl Runtime {
    fn new() -> PyResult<Runtime> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            // Local reads run on blocking threads; few of them keep few malloc arenas (each
            // thread that allocates image buffers may hold on to freed memory in its own).
            .max_blocking_threads(4)
            .thread_name("editshard-py")
            .enable_all()
            .build()
            .map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("tokio runtime: {e}")))?;
        Ok(Runtime {
            rt: Some(rt),
            pid: std::process::id(),
        })
    }

    fn get(&self) -> PyResult<&tokio::runtime::Runtime> {
        if self.pid != std::process::id() {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "this editshard dataset was opened in another process (before a fork): \
                 reopen it in this process (the Python wrapper does so automatically)",
            ));
        }
        Ok(self.rt.as_ref().expect("present until dropped"))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            if self.pid == std::process::id() {
                rt.shutdown_background();
            } else {
                // Forked child: the runtime's threads do not exist here. Leak it.
                std::mem::forget(rt);
            }
        }
    }
}

/// Network settings from the keyword arguments every location-taking call accepts.
fn storage_options(
    s3_endpoint: Option<String>,
    timeout: Option<f64>,
    connect_timeout: Option<f64>,
    retries: Option<usize>,
) -> PyResult<StorageOptions> {
    let mut storage = StorageOptions {
        s3_endpoint,
        ..StorageOptions::default()
    };
    let secs = |s: f64, what: &str| {
        Duration::try_from_secs_f64(s).map_err(|_| {
            pyo3::exceptions::PyValueError::new_err(format!("{what} must be >= 0 seconds"))
        })
    };
    if let Some(t) = timeout {
        storage.timeout = secs(t, "timeout")?;
    }
    if let Some(t) = connect_timeout {
        storage.connect_timeout = secs(t, "connect_timeout")?;
    }
    if let Some(r) = retries {
        storage.retries = r.min(editshard::storage::MAX_RETRIES);
    }
    Ok(storage)
}

/// Storage and read settings as given from Python, kept to reopen after a fork.
#[derive(Clone)]
struct Settings {
    url: String,
    storage: StorageOptions,
    options: DatasetOptions,
}

/// An opened dataset (manifest read, footers cached as they are loaded).
#[pyclass(module = "editshard._native", frozen)]
struct NativeDataset {
    rt: Arc<Runtime>,
    ds: Dataset,
    settings: Settings,
}

fn images_of(spec: (bool, bool, bool)) -> Images {
    match spec {
        (true, true, true) => Images::All,
        (false, false, false) => Images::None,
        (source, outputs, rejected) => Images::Only {
            source,
            outputs,
            rejected,
        },
    }
}

fn filter_of(
    kinds: Vec<String>,
    edit_types: Vec<String>,
    categories: Vec<String>,
    min_score: Option<(String, f32)>,
) -> PyResult<Filter> {
    let kinds = kinds
        .iter()
        .map(|k| {
            editshard::Kind::from_name(k).ok_or_else(|| {
                pyo3::exceptions::PyValueError::new_err(format!(
                    "unknown kind {k:?}: expected one of generic, sft, preference, multi-turn"
                ))
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok(Filter {
        kinds,
        edit_types,
        categories,
        min_score,
    })
}

fn shuffle_of(shuffle: &str, window: u32) -> PyResult<Shuffle> {
    match shuffle {
        "none" => Ok(Shuffle::None),
        "full" => Ok(Shuffle::Full),
        "block" => Ok(Shuffle::Block { window }),
        other => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "shuffle {other:?}: expected 'none', 'full' or 'block'"
        ))),
    }
}

/// Logs a skipped damaged record through Python's `logging` (logger `editshard`).
fn python_skip_logger() -> SkipFn {
    Arc::new(|e: &editshard::Error| {
        let msg = format!("skipping damaged record: {e}");
        Python::attach(|py| {
            let logged = py
                .import("logging")
                .and_then(|m| m.call_method1("getLogger", ("editshard",)))
                .and_then(|l| l.call_method1("warning", (msg.as_str(),)));
            if logged.is_err() {
                eprintln!("editshard: {msg}");
            }
        });
    })
}

impl NativeDataset {
    fn block_on<F: std::future::Future + Send>(&self, py: Python<'_>, f: F) -> PyResult<F::Output>
    where
        F::Output: Send,
    {
        let rt = self.rt.get()?;
        Ok(py.detach(|| rt.block_on(f)))
    }
}

#[pymethods]
impl NativeDataset {
    /// Opens the dataset at `url`: reads `manifest.json`, nothing else.
    #[staticmethod]
    #[pyo3(signature = (url, s3_endpoint=None, hf_token=None, timeout=None, connect_timeout=None, retries=None, verify="crc", coalesce_gap=None, concurrency=None, map_local=true, footer_cache_bytes=None))]
    #[allow(clippy::too_many_arguments)]
    fn open(
        py: Python<'_>,
        url: String,
        s3_endpoint: Option<String>,
        hf_token: Option<String>,
        timeout: Option<f64>,
        connect_timeout: Option<f64>,
        retries: Option<usize>,
        verify: &str,
        coalesce_gap: Option<u64>,
        concurrency: Option<usize>,
        map_local: bool,
        footer_cache_bytes: Option<u64>,
    ) -> PyResult<NativeDataset> {
        let mut storage = storage_options(s3_endpoint, timeout, connect_timeout, retries)?;
        storage.hf_token = hf_token;
        let mut options = DatasetOptions::default();
        options.read.verify = verify
            .parse::<Verify>()
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
        // Local shards are memory-mapped unless told otherwise: a shard truncated or rewritten
        // in place while mapped would kill the process (SIGBUS) or show through the bytes.
        options.map_local = map_local;
        if let Some(g) = coalesce_gap {
            options.coalesce_gap = g;
        }
        if let Some(c) = concurrency {
            options.concurrency = c.max(1);
        }
        if let Some(b) = footer_cache_bytes {
            options.footer_cache_bytes = b;
        }
        let settings = Settings {
            url,
            storage,
            options,
        };
        let rt = Arc::new(Runtime::new()?);
        let location = Location::parse(&settings.url, &settings.storage).map_err(to_py)?;
        let opened = {
            let rt = rt.get()?;
            let options = settings.options.clone();
            py.detach(|| rt.block_on(Dataset::open_with(location, options)))
        };
        let ds = opened.map_err(to_py)?;
        Ok(NativeDataset { rt, ds, settings })
    }

    /// A new handle on the same dataset with its own runtime and connections, built from the
    /// manifest already read (no I/O). Used after a fork.
    fn reopen(&self) -> PyResult<NativeDataset> {
        let rt = Arc::new(Runtime::new()?);
        let location =
            Location::parse(&self.settings.url, &self.settings.storage).map_err(to_py)?;
        // Shared, not cloned: a forked worker holds no second copy of the manifest.
        let manifest = self.ds.shared_manifest();
        let ds = Dataset::from_shared_manifest(location, manifest, self.settings.options.clone());
        Ok(NativeDataset {
            rt,
            ds,
            settings: self.settings.clone(),
        })
    }

    /// The process id this handle's runtime belongs to.
    #[getter]
    fn pid(&self) -> u32 {
        self.rt.pid
    }

    #[getter]
    fn url(&self) -> &str {
        &self.settings.url
    }

    /// The location as shown in messages.
    #[getter]
    fn display(&self) -> String {
        self.ds.location().display()
    }

    fn __len__(&self) -> usize {
        self.ds.len() as usize
    }

    /// `manifest.json` as JSON text, id filters included (read again from the dataset's
    /// location: a reader does not keep them, see `Dataset::id_filters`).
    fn manifest_json(&self, py: Python<'_>) -> PyResult<String> {
        let whole = self
            .block_on(py, self.ds.whole_manifest())?
            .map_err(to_py)?;
        Ok(String::from_utf8_lossy(&whole.to_json().map_err(to_py)?).into_owned())
    }

    /// `manifest.json`'s top-level fields (totals, counts, licence, sources) as JSON text,
    /// without its `shards`: what a summary needs, without reading the id filters.
    fn manifest_summary_json(&self) -> PyResult<String> {
        let mut summary = self.ds.manifest().clone();
        summary.shards = Vec::new();
        summary.filters_in = None;
        Ok(String::from_utf8_lossy(&summary.to_json().map_err(to_py)?).into_owned())
    }

    /// Record counts of each shard, in manifest order.
    fn shard_records(&self) -> Vec<u64> {
        self.ds
            .manifest()
            .shards
            .iter()
            .map(|s| s.records)
            .collect()
    }

    #[pyo3(signature = (index, images=(true, true, true)))]
    fn get(&self, py: Python<'_>, index: u64, images: (bool, bool, bool)) -> PyResult<PyRecord> {
        let r = self
            .block_on(py, self.ds.get_with(index, images_of(images)))?
            .map_err(to_py)?;
        Ok(PyRecord::new(r))
    }

    #[pyo3(signature = (indices, images=(true, true, true)))]
    fn get_many(
        &self,
        py: Python<'_>,
        indices: Vec<u64>,
        images: (bool, bool, bool),
    ) -> PyResult<Vec<PyRecord>> {
        let rs = self
            .block_on(py, self.ds.get_many(&indices, images_of(images)))?
            .map_err(to_py)?;
        Ok(rs.into_iter().map(PyRecord::new).collect())
    }

    /// The global index of the record with this id, or None.
    fn find(&self, py: Python<'_>, id: String) -> PyResult<Option<u64>> {
        self.block_on(py, self.ds.find(&id))?.map_err(to_py)
    }

    #[pyo3(signature = (id, images=(true, true, true)))]
    fn get_by_id(
        &self,
        py: Python<'_>,
        id: String,
        images: (bool, bool, bool),
    ) -> PyResult<Option<PyRecord>> {
        let r = self
            .block_on(py, self.ds.get_by_id_with(&id, images_of(images)))?
            .map_err(to_py)?;
        Ok(r.map(PyRecord::new))
    }

    /// Records at `indices` that pass the filter (None for the others, and for damaged
    /// records when `skip_corrupt`).
    #[pyo3(signature = (indices, images=(true, true, true), kinds=vec![], edit_types=vec![], categories=vec![], min_score=None, skip_corrupt=false))]
    #[allow(clippy::too_many_arguments)]
    fn select(
        &self,
        py: Python<'_>,
        indices: Vec<u64>,
        images: (bool, bool, bool),
        kinds: Vec<String>,
        edit_types: Vec<String>,
        categories: Vec<String>,
        min_score: Option<(String, f32)>,
        skip_corrupt: bool,
    ) -> PyResult<Vec<Option<PyRecord>>> {
        let filter = filter_of(kinds, edit_types, categories, min_score)?;
        let skip = skip_corrupt.then(python_skip_logger);
        let rs = self
            .block_on(
                py,
                self.ds
                    .select(&indices, images_of(images), &filter, skip.as_ref()),
            )?
            .map_err(to_py)?;
        Ok(rs.into_iter().map(|r| r.map(PyRecord::new)).collect())
    }

    /// The global record index at each epoch position for (shuffle, seed, epoch).
    #[pyo3(signature = (positions, shuffle="none", window=64, seed=0, epoch=0))]
    fn order(
        &self,
        positions: Vec<u64>,
        shuffle: &str,
        window: u32,
        seed: u64,
        epoch: u64,
    ) -> PyResult<Vec<u64>> {
        let order = EpochOrder::new(
            &self.shard_records(),
            shuffle_of(shuffle, window)?,
            seed,
            epoch,
        );
        positions
            .into_iter()
            .map(|p| {
                if p < order.len() {
                    Ok(order.record_at(p))
                } else {
                    Err(pyo3::exceptions::PyIndexError::new_err(format!(
                        "position {p} is outside the epoch of {} records",
                        order.len()
                    )))
                }
            })
            .collect()
    }

    /// One consumer's share of an epoch (see `editshard::read::Dataset::reader`).
    #[pyo3(signature = (*, seed=0, epoch=0, position=0, shuffle="none", window=64, rank=0, world_size=1, worker=0, workers=1, batch=64, images=(true, true, true), kinds=vec![], edit_types=vec![], categories=vec![], min_score=None, skip_corrupt=false, prefetch_batches=4, prefetch_bytes=256 << 20))]
    #[allow(clippy::too_many_arguments)]
    fn reader(
        &self,
        seed: u64,
        epoch: u64,
        position: u64,
        shuffle: &str,
        window: u32,
        rank: u32,
        world_size: u32,
        worker: u32,
        workers: u32,
        batch: u64,
        images: (bool, bool, bool),
        kinds: Vec<String>,
        edit_types: Vec<String>,
        categories: Vec<String>,
        min_score: Option<(String, f32)>,
        skip_corrupt: bool,
        prefetch_batches: usize,
        prefetch_bytes: u64,
    ) -> PyResult<Reader> {
        let partition = Partition::rank(rank, world_size).with_worker(worker, workers);
        partition.validate().map_err(to_py)?;
        let mut plan = ReadPlan::new(ResumeState {
            seed,
            epoch,
            position,
        })
        .shuffle(shuffle_of(shuffle, window)?)
        .partition(partition)
        .batch(batch)
        .filter(filter_of(kinds, edit_types, categories, min_score)?)
        .images(images_of(images))
        .skip_corrupt(skip_corrupt);
        plan.on_skip = skip_corrupt.then(python_skip_logger);
        plan.prefetch_batches = prefetch_batches.max(1);
        plan.prefetch_bytes = prefetch_bytes;
        let rt = self.rt.get()?;
        let stream = {
            let _guard = rt.enter();
            self.ds.reader(plan)
        };
        Ok(Reader {
            rt: self.rt.clone(),
            stream: Mutex::new(Some(stream)),
        })
    }
}

/// Batches of one consumer's share of an epoch, fetched ahead in the background.
#[pyclass(module = "editshard._native", frozen)]
struct Reader {
    rt: Arc<Runtime>,
    stream: Mutex<Option<PlanStream>>,
}

#[pymethods]
impl Reader {
    /// The records of the next batch of positions (fewer than `batch` when some were
    /// filtered out or skipped), or None at the end of the share.
    fn next_batch(&self, py: Python<'_>) -> PyResult<Option<Vec<PyRecord>>> {
        let rt = self.rt.get()?;
        let next = py.detach(|| {
            let mut guard = self.stream.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_mut() {
                None => None,
                Some(stream) => {
                    let item = rt.block_on(stream.next_batch());
                    if !matches!(item, Some(Ok(_))) {
                        *guard = None;
                    }
                    item
                }
            }
        });
        match next {
            None => Ok(None),
            Some(Ok(records)) => Ok(Some(records.into_iter().map(PyRecord::new).collect())),
            Some(Err(e)) => Err(to_py(e)),
        }
    }

    /// Stops the background prefetching.
    fn close(&self, py: Python<'_>) {
        let stream = py.detach(|| self.stream.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let (Some(stream), Ok(rt)) = (stream, self.rt.get()) {
            // Dropping aborts the background task; do it inside the runtime's context.
            let _guard = rt.enter();
            drop(stream);
        }
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeDataset>()?;
    m.add_class::<Reader>()?;
    m.add_class::<PyRecord>()?;
    m.add_class::<PyTurn>()?;
    m.add_class::<PyImage>()?;
    m.add_class::<ImageData>()?;
    m.add_class::<pipeline::PyPipeline>()?;
    m.add_class::<writer::NativeWriter>()?;
    m.add_function(wrap_pyfunction!(mix::mix, m)?)?;
    m.add_function(wrap_pyfunction!(decode::decode_image, m)?)?;
    m.add_function(wrap_pyfunction!(rows::record_rows, m)?)?;
    m.add("MAX_DECODE_BYTES", editshard::probe::MAX_DECODE_BYTES)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
