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
//! Every file is written under a temporary name and renamed when complete, and every path
//! goes through [`OutDir`], which refuses anything that would land outside the output
//! directory, whatever the record ids and image paths contain.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use editshard::error::{Error, Result};
use editshard::path::check_relative_path;
use futures_util::StreamExt;

use editshard::read::{Dataset, RecordStream, StreamOptions};
use editshard::record::{Image, Record};

pub mod hf_parquet;
pub mod release;
pub mod webdataset;

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
    /// Write into a non-empty directory, replacing files of the same names.
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
        let mut report = exported.inspect_err(|_| out.discard_partials())?;
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

/// The output directory. Every path is relative and checked; every directory created is
/// checked to resolve inside the root, so neither a hostile id or path (`..`, absolute,
/// backslashes) nor a symbolic link met on the way can send a write elsewhere.
pub struct OutDir {
    root: PathBuf,
    checked: HashSet<PathBuf>,
    /// Temporary files not yet renamed or removed: a failed export removes them.
    partials: HashSet<PathBuf>,
    pub files: u64,
    pub bytes: u64,
}

impl OutDir {
    pub fn create(root: &Path, force: bool) -> Result<OutDir> {
        let shown = root.display().to_string();
        fs::create_dir_all(root).map_err(|e| Error::from(e).in_shard(shown.clone()))?;
        let root = root
            .canonicalize()
            .map_err(|e| Error::from(e).in_shard(shown.clone()))?;
        let non_empty = fs::read_dir(&root)
            .map_err(|e| Error::from(e).in_shard(shown.clone()))?
            .next()
            .is_some();
        if non_empty && !force {
            return Err(Error::invalid(format!(
                "{shown} is not empty: export into an empty or new directory, or pass --force \
                 to write into it (files of the same names are replaced)"
            )));
        }
        Ok(OutDir {
            root,
            checked: HashSet::new(),
            partials: HashSet::new(),
            files: 0,
            bytes: 0,
        })
    }

    /// The absolute path of `rel`, its parent directory created and checked.
    pub fn prepare(&mut self, rel: &str) -> Result<PathBuf> {
        check_relative_path(rel).map_err(|e| e.in_shard(self.root.display().to_string()))?;
        let path = self.root.join(rel);
        let parent = path.parent().unwrap_or(&self.root).to_path_buf();
        if !self.checked.contains(&parent) {
            let shown = parent.display().to_string();
            // Directory by directory, refusing a symbolic link before anything is created
            // through it (create_dir_all would make directories wherever a link points).
            let mut dir = self.root.clone();
            for part in rel.split('/').take(rel.split('/').count() - 1) {
                dir.push(part);
                match fs::symlink_metadata(&dir) {
                    Ok(m) if m.file_type().is_symlink() => {
                        return Err(Error::invalid(format!(
                            "{} is a symbolic link inside the output directory: refused \
                             (nothing is written through a link)",
                            dir.display()
                        )));
                    }
                    Ok(_) => {}
                    Err(_) => {
                        fs::create_dir(&dir).map_err(|e| Error::from(e).in_shard(shown.clone()))?
                    }
                }
            }
            let real = parent
                .canonicalize()
                .map_err(|e| Error::from(e).in_shard(shown.clone()))?;
            if !real.starts_with(&self.root) {
                return Err(Error::invalid(format!(
                    "{shown} resolves to {} (a symbolic link?), outside the output directory: \
                     refused",
                    real.display()
                )));
            }
            self.checked.insert(parent);
        }
        Ok(path)
    }

    /// Writes `rel` atomically.
    pub fn write(&mut self, rel: &str, bytes: &[u8]) -> Result<()> {
        let path = self.prepare(rel)?;
        let partial = editshard::atomic::partial_path(&path);
        let shown = path.display().to_string();
        let result = (|| {
            let mut f = editshard::atomic::create_new(&partial)?;
            f.write_all(bytes)?;
            f.flush()?;
            drop(f);
            fs::rename(&partial, &path)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&partial);
            return Err(Error::from(e).in_shard(shown));
        }
        self.files += 1;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// The temporary name `path` (from [`Self::prepare`]) is written under, remembered until
    /// [`Self::commit`] so that a failed export leaves none behind.
    pub fn partial_of(&mut self, path: &Path) -> PathBuf {
        let partial = editshard::atomic::partial_path(path);
        self.partials.insert(partial.clone());
        partial
    }

    /// Remembers a temporary file of the exporter's own (removed on failure, or by
    /// [`Self::forget`] once the exporter removed it).
    pub fn track(&mut self, temporary: &Path) {
        self.partials.insert(temporary.to_path_buf());
    }

    pub fn forget(&mut self, temporary: &Path) {
        self.partials.remove(temporary);
    }

    /// Removes every temporary file still there (the export failed).
    pub fn discard_partials(&mut self) {
        for p in self.partials.drain() {
            let _ = fs::remove_file(p);
        }
    }

    /// Renames a finished `partial` (from [`Self::partial_of`]) to `path`.
    pub fn commit(&mut self, partial: &Path, path: &Path) -> Result<()> {
        let len = fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
        fs::rename(partial, path)
            .map_err(|e| Error::from(e).in_shard(path.display().to_string()))?;
        self.partials.remove(partial);
        self.files += 1;
        self.bytes += len;
        Ok(())
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
