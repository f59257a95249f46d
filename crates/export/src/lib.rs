//! `editshard export`: a dataset back out as files other tools read.
//!
//! - [`Format::Release`]: the raw Pico-Banana release layout ([`release`]): the three JSONL
//!   files with every converted row as it was (rebuilt by
//!   [`editshard_pico::rows::rebuild_row`], the inverse of convert's mapping), edited images
//!   at their relative paths, source images under `sources/` with each row's
//!   `local_input_image` naming its file.
//! - [`Format::WebDataset`]: tar shards in the WebDataset convention ([`webdataset`]).
//! - [`Format::HfParquet`]: Parquet files that Hugging Face `datasets` loads with typed
//!   `Image` features ([`hf_parquet`]).
//!
//! Every file is written under a temporary name, and all are renamed to their final names only
//! when the whole dataset was read and verified ([`OutDir::publish`]): a failed export
//! publishes nothing. Every path goes through [`OutDir`], which refuses anything that would
//! land outside the output directory, whatever the record ids and image paths contain.

use std::path::Path;

use editshard::error::{Error, Result};
use futures_util::StreamExt;

use editshard::read::{Dataset, RecordStream, StreamOptions};
use editshard::record::{Image, Record};

pub mod hf_parquet;
mod out_dir;
pub mod release;
pub mod webdataset;

pub use out_dir::OutDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Release,
    WebDataset,
    HfParquet,
}

#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    pub format: Format,
    /// Write into a non-empty directory: files of the same names are replaced, and an earlier
    /// export's files of the same format that this one does not write again are removed
    /// ([`OutDir::replaces`]; WebDataset: `shard-NNNNN.tar`, HF Parquet:
    /// `data/train-NNNNN-of-MMMMM.parquet`, and their temporary names). Nothing else is
    /// removed.
    pub force: bool,
    /// Row group and file sizes of [`Format::HfParquet`].
    pub hf: hf_parquet::HfOptions,
}

#[derive(Debug, Clone, Default)]
pub struct ExportReport {
    pub records: u64,
    /// Release: rows written per JSONL file. WebDataset: samples per tar file. HF Parquet:
    /// rows per Parquet file.
    pub written: Vec<(String, u64)>,
    pub files: u64,
    pub bytes: u64,
    /// Records that could not be exported, with the reason (each names the record).
    pub problems: Vec<String>,
    /// Files of an earlier export of the same format that this one removed (`--force`), as
    /// [`OutDir::replaces`] says.
    pub removed: Vec<String>,
    pub secs: f64,
}

/// Exports `ds` to the local directory `to`. The records stream in on the runtime; the files
/// are written on one of its blocking threads.
pub async fn export(ds: &Dataset, to: &Path, opts: &ExportOptions) -> Result<ExportReport> {
    let start = std::time::Instant::now();
    let records = BlockingRecords {
        rt: tokio::runtime::Handle::current(),
        // 64 MiB ahead keeps the disk or the network busy; more would only be memory
        // (README, Guarantees: export holds this plus the record being written).
        stream: ds.stream(StreamOptions {
            prefetch_bytes: 64 << 20,
            ..StreamOptions::default()
        }),
    };
    let manifest = ds.manifest().clone();
    let (to, opts) = (to.to_path_buf(), opts.clone());
    let mut report = tokio::task::spawn_blocking(move || -> Result<ExportReport> {
        let mut out = OutDir::create(&to, opts.force)?;
        let exported = match opts.format {
            Format::Release => release::export(records, &mut out),
            Format::WebDataset => webdataset::export(records, &manifest, &mut out),
            Format::HfParquet => hf_parquet::export(records, &mut out, opts.hf),
        };
        let published = exported.and_then(|report| out.publish().map(|()| report));
        let mut report = published.inspect_err(|_| out.discard_partials())?;
        report.removed = std::mem::take(&mut out.removed);
        report.files = out.files;
        report.bytes = out.bytes;
        Ok(report)
    })
    .await
    .map_err(|e| Error::bug(format!("the export task failed: {e}")))??;
    report.secs = start.elapsed().as_secs_f64();
    Ok(report)
}

/// The record stream as an iterator, for the writers on a blocking thread.
struct BlockingRecords {
    rt: tokio::runtime::Handle,
    stream: RecordStream,
}

impl Iterator for BlockingRecords {
    type Item = Result<Record>;
    fn next(&mut self) -> Option<Result<Record>> {
        self.rt.block_on(self.stream.next())
    }
}

/// The usual file extension of an image's media type.
pub fn extension(image: &Image) -> &'static str {
    editshard::image_info::extension(&image.media_type)
}

/// The bytes of an image read with its record (the export stream reads every image).
pub fn image_bytes<'a>(image: &'a Image, id: &str) -> std::result::Result<&'a [u8], String> {
    image
        .data
        .as_deref()
        .ok_or_else(|| format!("{id}: an image's bytes were not read"))
}
