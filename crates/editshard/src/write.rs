//! [`DatasetWriter`]: a directory of shards and its manifest.
//!
//! Shards roll over at a target size (default 512 MiB). Every shard is written under a
//! temporary name, synced, then renamed, so a half-written shard never appears under its final
//! name; `manifest.json` is written the same way, last. [`DestinationWriter`] writes a whole
//! dataset to a local directory or an `s3://` prefix under the destination's lock, publishing
//! the manifest only when told the dataset is complete.
//!
//! ```
//! use editshard::write::DatasetWriter;
//! # use editshard::record::{Image, Kind, Record, Turn};
//! # let png = |w| { let mut v = Vec::new(); image::RgbImage::new(w, 1)
//! #     .write_to(&mut std::io::Cursor::new(&mut v), image::ImageFormat::Png).unwrap(); v };
//! # let img = Image::from_bytes(png(2).into()).unwrap();
//! # let record = Record::new("a", Kind::Sft, img.clone(), vec![Turn::new(img)]);
//! let dir = tempfile::tempdir().unwrap();
//! let mut writer = DatasetWriter::create(dir.path()).unwrap();
//! writer.append(&record).unwrap();
//! let manifest = writer.finish().unwrap();
//! assert_eq!(manifest.records, 1);
//! assert!(dir.path().join("manifest.json").exists());
//! ```

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::atomic::{create_partial, partial_path, sync_dir, write_atomically};
use crate::error::{Error, Result};
use crate::id_set::IdHashes;
use crate::manifest::{MANIFEST_NAME, Manifest};
use crate::record::Record;
use crate::shard::{RandomAccessShard, ReadOptions, ShardSummary, ShardWriter, WriterOptions};
use crate::writeback::WritebackFile;

mod dest;
pub use dest::{DestinationOptions, DestinationWriter};

pub const DEFAULT_SHARD_BYTES: u64 = 512 << 20;

struct OpenShard {
    writer: ShardWriter<BufWriter<WritebackFile>>,
    name: String,
}

pub struct DatasetWriter {
    dir: PathBuf,
    /// Prefix of shard file names, e.g. `shard-` or `part-0003-of-0010/shard-`.
    prefix: String,
    target_bytes: u64,
    options: WriterOptions,
    open: Option<OpenShard>,
    manifest: Manifest,
    /// Every id written, by hash, with the number of the shard it went to: ids are unique in
    /// a dataset, across shards too (each shard's writer checks its own exactly).
    ids: IdHashes<u32>,
    /// Set by [`Self::resume_after`]: the resumed shards' ids are loaded from their footers
    /// before the next append.
    ids_pending: bool,
}

impl DatasetWriter {
    /// Creates `dir` if needed. Fails if it already holds a manifest: a finished dataset is
    /// never overwritten.
    pub fn create(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| Error::from(e).in_shard(dir.display().to_string()))?;
        if dir.join(MANIFEST_NAME).exists() {
            return Err(Error::invalid(format!(
                "{} already holds a dataset ({MANIFEST_NAME} exists); choose another directory",
                dir.display()
            )));
        }
        Ok(DatasetWriter {
            dir: dir.to_path_buf(),
            prefix: "shard-".to_string(),
            target_bytes: DEFAULT_SHARD_BYTES,
            options: WriterOptions::default(),
            open: None,
            manifest: Manifest::new(None),
            ids: IdHashes::default(),
            ids_pending: false,
        })
    }

    pub fn target_shard_bytes(mut self, bytes: u64) -> Self {
        self.target_bytes = bytes.max(1);
        self
    }
    pub fn writer_options(mut self, options: WriterOptions) -> Self {
        if self.manifest.shards.is_empty() {
            self.manifest.note_minor_version(options.minor_version);
        }
        self.options = options;
        self
    }
    pub fn licence(mut self, licence: Option<String>) -> Self {
        self.manifest.licence = licence;
        self
    }
    /// Shard names are `{prefix}{n:05}.esd`; the prefix may contain `/` to use a
    /// subdirectory.
    pub fn shard_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Continues a dataset whose finished shards are listed in `manifest` (their files are not
    /// touched): the next shard gets the next number and the final manifest lists them all.
    /// Used by `convert` to resume after an interruption.
    pub fn resume_after(mut self, manifest: Manifest) -> Self {
        self.manifest = manifest;
        self.ids_pending = !self.manifest.shards.is_empty();
        self
    }

    /// Appends a record, finishing the current shard first if it reached the target size and
    /// the record would start a new group anyway. A record whose id an earlier shard of the
    /// dataset already holds is refused ([`ErrorKind::Rejected`](crate::ErrorKind)), like one
    /// the open shard holds.
    pub fn append(&mut self, record: &Record) -> Result<()> {
        self.load_resumed_ids()?;
        if let Some(s) = self.ids.get(&record.id) {
            let s = s as usize;
            if s < self.manifest.shards.len() && self.finished_shard_holds(s, &record.id)? {
                return Err(Error::rejected(format!(
                    "the dataset already holds a record with this id (in {}): ids are \
                     unique in a dataset",
                    self.manifest.shards[s].path
                ))
                .with_id(record.id.clone()));
            }
        }
        self.append_unchecked(record)?;
        self.ids
            .insert(&record.id, self.manifest.shards.len() as u32);
        Ok(())
    }

    /// Whether finished shard `s` holds `id`: the exact check behind a hash hit, through the
    /// shard's footer (one read, rare). A shard no longer in the directory (its owner moved
    /// it on, as `convert` publishes each finished shard) cannot be compared: the 128-bit
    /// hash match is taken as the duplicate it almost surely is.
    fn finished_shard_holds(&self, s: usize, id: &str) -> Result<bool> {
        match self.open_finished(s) {
            Some(shard) => Ok(shard?.index().position(id).is_some()),
            None => Ok(true),
        }
    }

    /// Finished shard `s` through its footer, or `None` when its file is not in the
    /// directory.
    fn open_finished(&self, s: usize) -> Option<Result<RandomAccessShard<File>>> {
        let entry = &self.manifest.shards[s];
        let file = File::open(self.dir.join(&entry.path)).ok()?;
        Some(RandomAccessShard::open_with_footer(
            file,
            entry.path.clone(),
            ReadOptions::default(),
            entry.footer_offset,
            entry.footer_length,
        ))
    }

    /// Loads the ids of the shards a resumed dataset already has, from the footers of those
    /// still in the directory (a caller that moved finished shards elsewhere, as `convert`
    /// does, keeps ids unique across a resume itself).
    fn load_resumed_ids(&mut self) -> Result<()> {
        if !self.ids_pending {
            return Ok(());
        }
        for s in 0..self.manifest.shards.len() {
            let Some(shard) = self.open_finished(s) else {
                continue;
            };
            for r in shard?.index().records() {
                self.ids.insert(r.id, s as u32);
            }
        }
        self.ids_pending = false;
        Ok(())
    }

    fn append_unchecked(&mut self, record: &Record) -> Result<()> {
        if let Some(open) = &self.open {
            if open.writer.bytes_written() >= self.target_bytes && !open.writer.joins_group(record)
            {
                self.finish_shard()?;
            }
        }
        if self.open.is_none() {
            self.start_shard()?;
        }
        let open = self.open.as_mut().expect("opened above");
        open.writer
            .append(record)
            .map_err(|e| e.in_shard(open.name.clone()))
    }

    fn start_shard(&mut self) -> Result<()> {
        let name = format!("{}{:05}.esd", self.prefix, self.manifest.shards.len());
        let path = self.dir.join(&name);
        // A prefix with directories (`part-0003-of-0010/shard-`): each made, or found as a
        // real directory, inside the dataset's directory; never a link to elsewhere.
        let (sub, _) = crate::safe_dir::split(&name);
        crate::safe_dir::SafeDir::create_inside(&self.dir, Path::new(sub))
            .map_err(|e| e.in_shard(name.clone()))?;
        let (file, _) = create_partial(&path).map_err(|e| Error::from(e).in_shard(name.clone()))?;
        // The buffer gathers the small parts (headers, tables, metadata); a write at least
        // its size (an image, most of a shard's bytes) bypasses it, saving a copy of every
        // image byte.
        let writer = ShardWriter::with_options(
            BufWriter::with_capacity(64 << 10, WritebackFile::new(file)),
            self.options.clone(),
        )?;
        self.open = Some(OpenShard { writer, name });
        Ok(())
    }

    /// Finishes the open shard (if any): footer, sync, rename. Returns its summary. A shard
    /// opened for a record that was then refused holds nothing: it is removed, not finished.
    pub fn finish_shard(&mut self) -> Result<Option<ShardSummary>> {
        let Some(open) = self.open.take() else {
            return Ok(None);
        };
        if open.writer.records() == 0 {
            self.remove_partial(&open.name)?;
            return Ok(None);
        }
        let name = open.name;
        let context = |e: Error| e.in_shard(name.clone());
        let (buf, summary) = open.writer.finish().map_err(context)?;
        let file = buf
            .into_inner()
            .map_err(|e| context(Error::from(e.into_error())))?
            .into_file();
        file.sync_all().map_err(|e| context(e.into()))?;
        drop(file);
        let path = self.dir.join(&name);
        fs::rename(partial_path(&path), &path).map_err(|e| context(e.into()))?;
        sync_dir(path.parent().unwrap_or(&self.dir));
        self.manifest.push_shard(name, &summary);
        Ok(Some(summary))
    }

    /// The manifest as it stands (finished shards only).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Records appended so far: those of the finished shards and of the open one.
    pub fn records(&self) -> u64 {
        self.manifest.records + self.open.as_ref().map_or(0, |o| o.writer.records())
    }

    /// Gives up the open shard (its temporary file is removed) and returns the manifest of
    /// the finished ones, whose files stay: the caller decides what becomes of them.
    pub fn discard(mut self) -> Result<Manifest> {
        if let Some(open) = self.open.take() {
            drop(open.writer);
            self.remove_partial(&open.name)?;
        }
        Ok(self.manifest)
    }

    fn remove_partial(&self, name: &str) -> Result<()> {
        match fs::remove_file(partial_path(&self.dir.join(name))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::from(e).in_shard(name.to_string()))
            }
            _ => Ok(()),
        }
    }

    /// Finishes the last shard and writes `manifest.json`.
    pub fn finish(mut self) -> Result<Manifest> {
        self.finish_shard()?;
        write_atomically(&self.dir.join(MANIFEST_NAME), &self.manifest.to_json()?)?;
        Ok(self.manifest)
    }
}
