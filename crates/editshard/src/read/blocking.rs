//! The reading API for code without an async runtime: a [`BlockingDataset`] owns a small
//! tokio runtime whose threads do the prefetching while the caller processes records.
//!
//! ```
//! # fn main() -> editshard::Result<()> {
//! # use editshard::record::{Image, Kind, Record, Turn};
//! # let dir = tempfile::tempdir().unwrap();
//! # let img = Image::with_info(vec![1u8, 2, 3].into(), "image/png".into(), 1, 1);
//! # let mut w = editshard::write::DatasetWriter::create(dir.path())?;
//! # w.append(&Record::new("a/1", Kind::Sft, img.clone(), vec![Turn::new(img)]))?;
//! # w.finish()?;
//! use editshard::read::blocking::BlockingDataset;
//! use editshard::read::StreamOptions;
//! use editshard::storage::StorageOptions;
//! let ds = BlockingDataset::open(dir.path().to_str().unwrap(), &StorageOptions::default())?;
//! for record in ds.stream(StreamOptions::default()) {
//!     println!("{}", record?.id);
//! }
//! # Ok(()) }
//! ```

use std::sync::Arc;

use futures_util::StreamExt;

use super::{Dataset, DatasetOptions, Images, PlanStream, ReadPlan, RecordStream, StreamOptions};
use crate::error::{Error, Result};
use crate::record::Record;
use crate::storage::{Location, StorageOptions};

/// Shuts the runtime down without blocking when the last user is dropped (dropping a
/// runtime the ordinary way panics inside another runtime).
struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl Runtime {
    fn block_on<F: std::future::Future>(&self, f: F) -> Result<F::Output> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::invalid(
                "blocking reads cannot run inside an async runtime: use read::Dataset there",
            ));
        }
        let rt = self.0.as_ref().expect("present until dropped");
        Ok(rt.block_on(f))
    }
}

/// A [`Dataset`] with blocking methods.
#[derive(Clone)]
pub struct BlockingDataset {
    rt: Arc<Runtime>,
    ds: Dataset,
}

impl BlockingDataset {
    /// Opens the dataset at `url` (any form [`Location::parse`] accepts).
    pub fn open(url: &str, storage: &StorageOptions) -> Result<BlockingDataset> {
        let location = Location::parse(url, storage)?;
        Self::open_with(location, DatasetOptions::default())
    }

    pub fn open_with(location: Location, options: DatasetOptions) -> Result<BlockingDataset> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("editshard-read")
            .enable_all()
            .build()
            .map_err(Error::from)?;
        let rt = Arc::new(Runtime(Some(rt)));
        let ds = rt.block_on(Dataset::open_with(location, options))??;
        Ok(BlockingDataset { rt, ds })
    }

    /// The async dataset (shares the footer cache).
    pub fn dataset(&self) -> &Dataset {
        &self.ds
    }

    pub fn get(&self, index: u64) -> Result<Record> {
        self.rt.block_on(self.ds.get(index))?
    }
    pub fn get_with(&self, index: u64, images: Images) -> Result<Record> {
        self.rt.block_on(self.ds.get_with(index, images))?
    }
    pub fn get_by_id(&self, id: &str) -> Result<Option<Record>> {
        self.rt.block_on(self.ds.get_by_id(id))?
    }
    pub fn get_many(&self, indices: &[u64], images: Images) -> Result<Vec<Record>> {
        self.rt.block_on(self.ds.get_many(indices, images))?
    }

    /// [`Dataset::stream`] as an iterator.
    pub fn stream(&self, options: StreamOptions) -> Records {
        let _guard = self.rt.0.as_ref().map(|rt| rt.enter());
        Records {
            rt: self.rt.clone(),
            stream: self.ds.stream(options),
        }
    }

    /// [`Dataset::reader`] as an iterator (with [`PlanRecords::next_batch`]).
    pub fn reader(&self, plan: ReadPlan) -> PlanRecords {
        let _guard = self.rt.0.as_ref().map(|rt| rt.enter());
        PlanRecords {
            rt: self.rt.clone(),
            stream: self.ds.reader(plan),
        }
    }
}

/// Records of [`BlockingDataset::stream`].
pub struct Records {
    rt: Arc<Runtime>,
    stream: RecordStream,
}

impl Iterator for Records {
    type Item = Result<Record>;
    fn next(&mut self) -> Option<Result<Record>> {
        match self.rt.block_on(self.stream.next()) {
            Ok(item) => item,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Records of [`BlockingDataset::reader`].
pub struct PlanRecords {
    rt: Arc<Runtime>,
    stream: PlanStream,
}

impl PlanRecords {
    pub fn next_batch(&mut self) -> Option<Result<Vec<Record>>> {
        match self.rt.block_on(self.stream.next_batch()) {
            Ok(item) => item,
            Err(e) => Some(Err(e)),
        }
    }
    pub fn batches_read(&self) -> u64 {
        self.stream.batches_read()
    }
}

impl Iterator for PlanRecords {
    type Item = Result<Record>;
    fn next(&mut self) -> Option<Result<Record>> {
        match self.rt.block_on(self.stream.next()) {
            Ok(item) => item,
            Err(e) => Some(Err(e)),
        }
    }
}
