//! [`DestinationWriter`]: a whole dataset written to a local directory or an `s3://` prefix
//! with the guarantees `convert` gives: one writer per destination (the [`DestLock`]), ids
//! unique across the dataset, shards published whole, and `manifest.json` written last, only
//! by [`finish`](DestinationWriter::finish). [`abort`](DestinationWriter::abort) (what a
//! failed run calls) removes every shard it wrote and publishes nothing.
//!
//! A local destination gets its shards directly (each under a temporary name until it is
//! complete). A remote one gets them from a staging directory on the local disk: each finished
//! shard is uploaded in the background while the next is written (at most one upload in
//! flight, so the staging directory holds at most two shards), then deleted locally.
//!
//! The methods block: call them from a plain thread (or `spawn_blocking`), not from async
//! code. The network work runs on the runtime whose handle [`create`](DestinationWriter::create)
//! is given.
//!
//! ```
//! use editshard::storage::Location;
//! use editshard::write::{DestinationOptions, DestinationWriter};
//! # use editshard::record::{Image, Kind, Record, Turn};
//! # let png = |w| { let mut v = Vec::new(); image::RgbImage::new(w, 1)
//! #     .write_to(&mut std::io::Cursor::new(&mut v), image::ImageFormat::Png).unwrap(); v };
//! # let img = Image::from_bytes(png(2).into()).unwrap();
//! # let record = Record::new("a", Kind::Sft, img.clone(), vec![Turn::new(img)]);
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! let dir = tempfile::tempdir().unwrap();
//! let dest = Location::local(dir.path().join("out"));
//! let mut writer =
//!     DestinationWriter::create(dest, DestinationOptions::default(), rt.handle().clone()).unwrap();
//! writer.append(&record).unwrap();
//! let manifest = writer.finish().unwrap();
//! assert_eq!(manifest.records, 1);
//! assert!(dir.path().join("out/manifest.json").exists());
//! ```

use std::path::{Path, PathBuf};

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::{DEFAULT_SHARD_BYTES, DatasetWriter};
use crate::atomic::temporary_of;
use crate::error::{Error, Result};
use crate::lock::DestLock;
use crate::manifest::{MANIFEST_NAME, Manifest};
use crate::ownership::{foreign_entries, list_names};
use crate::read::find_manifest;
use crate::record::Record;
use crate::shard::WriterOptions;
use crate::storage::Location;

/// How a [`DestinationWriter`] writes.
#[derive(Debug, Clone)]
pub struct DestinationOptions {
    /// Shards roll over at this size.
    pub shard_bytes: u64,
    pub writer: WriterOptions,
    /// The manifest's `licence`.
    pub licence: Option<String>,
    /// What the destination's lock records as its holder's command (shown to a writer that
    /// is refused).
    pub command: String,
    /// Delete a lock left at a remote destination by a writer that is gone, first.
    pub break_lock: bool,
    /// Where shards for a remote destination are written before their upload; default a new
    /// directory under the system's temporary directory (`TMPDIR`).
    pub staging_parent: Option<PathBuf>,
}

impl Default for DestinationOptions {
    fn default() -> Self {
        DestinationOptions {
            shard_bytes: DEFAULT_SHARD_BYTES,
            writer: WriterOptions::default(),
            licence: None,
            command: "a dataset writer".to_string(),
            break_lock: false,
            staging_parent: None,
        }
    }
}

/// A dataset being written to a destination it holds the lock of. See the module docs.
pub struct DestinationWriter {
    dest: Location,
    lock: DestLock,
    writer: DatasetWriter,
    /// The local directory shards of a remote destination are written in; `None` for a local
    /// destination (written in place).
    staging: Option<PathBuf>,
    /// Shards of the manifest already handed to the destination (written in place, or given
    /// to an upload).
    published: usize,
    upload: Option<JoinHandle<Result<()>>>,
    rt: Handle,
}

impl DestinationWriter {
    /// Takes the destination's lock and checks that it can hold a new dataset: it must not
    /// hold one already (a `manifest.json`), and a local directory must be new or empty
    /// (temporary files left by a killed writer are removed; anything else is refused, named).
    pub fn create(dest: Location, opts: DestinationOptions, rt: Handle) -> Result<Self> {
        let lock = rt.block_on(DestLock::acquire(&dest, &opts.command, opts.break_lock))?;
        match prepare(&dest, &opts, &lock, &rt) {
            Ok((writer, staging)) => Ok(DestinationWriter {
                dest,
                lock,
                writer,
                staging,
                published: 0,
                upload: None,
                rt,
            }),
            Err(e) => rt.block_on(lock.release_after(Err(e))),
        }
    }

    /// Where the dataset goes, as shown in messages.
    pub fn display(&self) -> String {
        self.dest.display()
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.writer.records()
    }

    /// The manifest of the shards finished so far.
    pub fn manifest(&self) -> &Manifest {
        self.writer.manifest()
    }

    /// Appends a record (see [`DatasetWriter::append`]): a record whose id the dataset already
    /// holds, or that breaks the format's limits, is refused ([`ErrorKind::Rejected`]) and the
    /// writer stays usable; any other error leaves it to be [aborted](Self::abort).
    ///
    /// [`ErrorKind::Rejected`]: crate::ErrorKind::Rejected
    pub fn append(&mut self, record: &Record) -> Result<()> {
        let appended = self.writer.append(record);
        // A shard may have been finished before the record was refused: publish it anyway.
        self.publish_finished()?;
        appended
    }

    /// Finishes the last shard, waits for every upload, writes `manifest.json` (atomically)
    /// and releases the lock. On an error nothing is published: what was written is removed
    /// (as by [`abort`](Self::abort)) and the error returned.
    pub fn finish(mut self) -> Result<Manifest> {
        let manifest = self.complete_shards().and_then(|()| {
            let manifest = self.writer.manifest().clone();
            let json = manifest.to_json()?.into();
            self.rt.block_on(self.dest.put(MANIFEST_NAME, json))?;
            Ok(manifest)
        });
        match manifest {
            Ok(manifest) => {
                remove_staging(self.staging.as_deref());
                let DestinationWriter { lock, rt, .. } = self;
                rt.block_on(lock.release_after(Ok(manifest)))
            }
            Err(e) => {
                let (cleaned, lock, rt) = self.clean_up();
                if let Err(c) = cleaned {
                    log::warn!("{c}");
                }
                rt.block_on(lock.release_after(Err(e)))
            }
        }
    }

    /// Gives up: removes every shard written (finished, uploaded or still open) and the
    /// staging directory, publishes nothing, and releases the lock. The destination is left
    /// as it was found (a directory the writer created is removed).
    pub fn abort(self) -> Result<()> {
        let (cleaned, lock, rt) = self.clean_up();
        rt.block_on(lock.release_after(cleaned))
    }

    /// Finishes the open shard and publishes every finished one, waiting for the uploads.
    fn complete_shards(&mut self) -> Result<()> {
        self.writer.finish_shard()?;
        self.publish_finished()?;
        self.wait_for_upload()
    }

    /// Hands shards finished since the last call to the destination: for a remote one, an
    /// upload in the background once the previous upload is done.
    fn publish_finished(&mut self) -> Result<()> {
        let finished = self.writer.manifest().shards.len();
        let Some(staging) = self.staging.clone() else {
            self.published = finished;
            return Ok(());
        };
        while self.published < finished {
            let rel = self.writer.manifest().shards[self.published].path.clone();
            let local = staging.join(&rel);
            self.wait_for_upload()?;
            let dest = self.dest.clone();
            self.upload = Some(self.rt.spawn(async move {
                dest.put_file(&rel, &local).await?;
                tokio::fs::remove_file(&local)
                    .await
                    .map_err(|e| Error::from(e).in_shard(local.display().to_string()))
            }));
            self.published += 1;
        }
        Ok(())
    }

    fn wait_for_upload(&mut self) -> Result<()> {
        match self.upload.take() {
            Some(task) => self
                .rt
                .block_on(task)
                .map_err(|e| Error::bug(format!("a shard upload task failed: {e}")))?,
            None => Ok(()),
        }
    }

    /// Removes everything this writer wrote: the open shard, the finished ones (at the
    /// destination and in staging) and the staging directory. Returns the lock (still held)
    /// and the runtime.
    fn clean_up(mut self) -> (Result<()>, DestLock, Handle) {
        // An upload still running would publish its shard after the deletes below.
        let _ = self.wait_for_upload();
        let DestinationWriter {
            dest,
            lock,
            writer,
            staging,
            published,
            rt,
            ..
        } = self;
        let removed = writer.discard().and_then(|manifest| {
            let mut first_error = None;
            for shard in manifest.shards.iter().take(published) {
                if let Err(e) = rt.block_on(dest.delete(&shard.path)) {
                    first_error.get_or_insert(e);
                }
            }
            first_error.map_or(Ok(()), Err)
        });
        remove_staging(staging.as_deref());
        (removed, lock, rt)
    }
}

fn remove_staging(dir: Option<&Path>) {
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The checks of [`DestinationWriter::create`] (the lock held) and the dataset writer, with
/// its staging directory for a remote destination.
fn prepare(
    dest: &Location,
    opts: &DestinationOptions,
    lock: &DestLock,
    rt: &Handle,
) -> Result<(DatasetWriter, Option<PathBuf>)> {
    if rt.block_on(find_manifest(dest))?.is_some() {
        return Err(Error::invalid(format!(
            "{} already holds a dataset ({MANIFEST_NAME} exists): a finished dataset is never \
             written over; choose another location",
            dest.display()
        )));
    }
    let (dir, staging) = match dest.is_local() {
        Some(dir) => {
            check_local(dir)?;
            (dir.to_path_buf(), None)
        }
        None => {
            let parent = opts
                .staging_parent
                .clone()
                .unwrap_or_else(std::env::temp_dir);
            let staging = parent.join(format!("editshard-write-{}", lock.holder().token));
            (staging.clone(), Some(staging))
        }
    };
    let writer = DatasetWriter::create(&dir)
        .map_err(|e| e.in_shard(dir.display().to_string()))?
        .target_shard_bytes(opts.shard_bytes)
        .writer_options(opts.writer.clone())
        .licence(opts.licence.clone());
    Ok((writer, staging))
}

/// A local destination must be new or empty, but for the lock and temporary files of shards
/// and manifests a killed writer left (removed here: the lock is held, so no writer is
/// writing them).
fn check_local(dir: &Path) -> Result<()> {
    let ours = |name: &str| {
        name == MANIFEST_NAME || (name.starts_with("shard-") && name.ends_with(".esd"))
    };
    let leftover = |name: &str| temporary_of(name).is_some_and(|(base, _)| ours(base));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if leftover(&name) && e.file_type().is_ok_and(|t| t.is_file()) {
                log::info!("removing {}, left by a killed writer", e.path().display());
                std::fs::remove_file(e.path())
                    .map_err(|err| Error::from(err).in_shard(e.path().display().to_string()))?;
            }
        }
    }
    let foreign = foreign_entries(dir, |_| false)?;
    if foreign.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{} is not empty: it holds {}. A new dataset is written only into a new or empty \
         directory (shards without a manifest.json are what a writer that did not finish \
         leaves: delete them, or choose another location)",
        dir.display(),
        list_names(&foreign)
    ))
    .in_shard(dir.display().to_string()))
}
