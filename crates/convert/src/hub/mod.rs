//! `editshard convert --preset NAME SOURCE` / `--mapping FILE.toml SOURCE`: an editing
//! dataset published on the Hugging Face Hub as Parquet (the dataset knowledge is in the
//! `editshard-hub` crate; this is the pipeline around it).
//!
//! The files under SOURCE are read in natural order, one row group at a time (in batches of
//! about `--batch-memory` bytes), and every row is given a number: its position across all
//! the files (`line - 1` in `failures.jsonl`). Resume, `--part` and `merge` work as for
//! Pico-Banana: shards are published as they fill, `WORK/state.json` keeps the number of the
//! first row of the unfinished shard, and a killed run redoes the rows from there. `--part I/N`
//! takes the I-th of N contiguous runs of row groups; a multi-turn session that crosses the
//! boundary belongs to the part where it starts (the next part skips its first rows).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::failures;
use crate::session::{self, Fingerprint, Outcome, Session, ShardSettings, Target};
use editshard::error::{Error, Result};
use editshard::storage::{Location, StorageOptions};
use editshard_hub::Mapping;
use editshard_hub::reader::{FileOutline, ParquetFile};
use editshard_hub::source::{self, Object};

mod walk;

#[derive(Debug, Clone)]
pub struct HubOptions {
    pub mapping: Mapping,
    /// `preset NAME` or the mapping file's path, for the manifest.
    pub mapping_origin: String,
    pub source: String,
    pub out: String,
    pub files_from: Option<PathBuf>,
    pub revision: Option<String>,
    pub shard_size: u64,
    /// The minor format version to write (`--format-version 1.N`).
    pub format_minor: u16,
    pub batch_memory: u64,
    /// The largest cell (image) read (`--max-image-size`): a page or row over it is refused
    /// before it is decoded.
    pub max_image_bytes: u64,
    pub part: Option<(u32, u32)>,
    /// Convert only the rows listed in the finished dataset's `failures.jsonl` (rows that
    /// failed on a network error, say), into `retry-N/` shards.
    pub retry_failed: bool,
    pub s3_endpoint: Option<String>,
    pub work_dir: Option<PathBuf>,
    pub break_lock: bool,
}

pub struct HubSummary {
    pub dest: String,
    pub records: u64,
    pub shards: u64,
    pub bytes: u64,
    pub files: usize,
    pub rows: u64,
    pub failed: u64,
    pub session_splits: u64,
    pub resumed_at_row: u64,
    pub wall_secs: f64,
}

pub async fn convert(opts: &HubOptions) -> Result<Outcome<HubSummary>> {
    let started = Instant::now();
    if opts.retry_failed && opts.mapping.session.is_some() {
        return Err(Error::invalid(format!(
            "--retry-failed: the mapping {} rebuilds multi-turn sessions across rows, and a \
             retried row cannot be rejoined to its session's converted turns; convert anew \
             into another --out",
            opts.mapping.name
        )));
    }
    let storage = StorageOptions {
        s3_endpoint: opts.s3_endpoint.clone(),
        ..StorageOptions::default()
    };
    let (root, lock) = session::lock(&opts.out, &storage, opts.part, opts.break_lock).await?;
    let result = convert_locked(opts, root, &storage, started).await;
    lock.release_after(result).await
}

async fn convert_locked(
    opts: &HubOptions,
    root: Location,
    storage: &StorageOptions,
    started: Instant,
) -> Result<Outcome<HubSummary>> {
    let target = Target::open(root, opts.work_dir.as_deref(), opts.retry_failed).await?;
    let prepared = prepare(opts, &target, storage).await;
    if prepared.is_err() {
        target.discard_new_work_dir();
    }
    let (session, plan, files, fingerprint, only) = match prepared? {
        Prepared::Job(job) => *job,
        Prepared::Complete(c) => return Ok(Outcome::AlreadyComplete(c)),
    };
    let mut session = session;
    let next_row = session.next_row();
    let limits = editshard_hub::reader::ReadLimits {
        batch_bytes: opts.batch_memory,
        max_cell: opts.max_image_bytes,
    };
    let mapping = opts.mapping.clone();
    let revision = opts.revision.clone();
    let format_minor = opts.format_minor;
    let done = tokio::task::spawn_blocking(move || -> Result<(session::Ended, walk::Counts)> {
        // Rows are read, decoded and made into records (each image's SHA-256 taken) on a
        // thread of their own while this one writes them (CRCs, the file, publishing; the
        // shard's SHA-256 on the writer's own thread): the stages overlap instead of taking
        // turns. A few records wait between them at most.
        let (tx, rx) = std::sync::mpsc::sync_channel::<walk::Event>(PIPELINE_RECORDS);
        let read_mapping = mapping.clone();
        std::thread::scope(|scope| {
            let reader = std::thread::Builder::new()
                .name("editshard-hub-read".into())
                .spawn_scoped(scope, move || {
                    let mut sink = |event: walk::Event| -> Result<()> {
                        tx.send(event)
                            .map_err(|_| Error::bug("the writing stage stopped"))
                    };
                    plan.run(
                        &read_mapping,
                        revision,
                        next_row,
                        limits,
                        only.as_ref(),
                        &mut sink,
                    )
                })
                .map_err(|e| Error::from(e).in_shard("the reading thread".to_string()))?;
            let mut write = |event: walk::Event| -> Result<()> {
                match event {
                    walk::Event::Record(mut record, ordinal) => {
                        if format_minor == 0 {
                            format_1_0_provenance(&mut record, ordinal);
                        }
                        session.append(ordinal, &record, |e| {
                            walk::failure_of_record(&mapping.name, &record, ordinal, e)
                        })?;
                    }
                    walk::Event::Failed(f, ordinal) => session.fail(ordinal, f)?,
                }
                Ok(())
            };
            let written = rx.iter().try_for_each(&mut write);
            // A failed write stops the reader at its next record.
            drop(rx);
            let counts = reader
                .join()
                .map_err(|_| Error::bug("the reading thread panicked"))?;
            written?;
            let counts = counts?;
            Ok((session.end()?, counts))
        })
    })
    .await
    .map_err(|e| Error::bug(format!("the conversion task failed: {e}")))?;
    let (ended, counts) = done?;
    let mut hub = serde_json::Map::new();
    hub.insert("mapping".into(), opts.mapping.name.clone().into());
    if let Some(d) = &opts.mapping.dataset {
        hub.insert("dataset".into(), d.clone().into());
    }
    if let Some(r) = opts.revision.as_ref().or(opts.mapping.revision.as_ref()) {
        hub.insert("revision".into(), r.clone().into());
    }
    hub.insert("files".into(), files.into());
    hub.insert("session_splits".into(), counts.session_splits.into());
    let mut details = serde_json::Map::new();
    details.insert("hub".into(), hub.into());
    let published = session::publish(&target, ended, &[], &fingerprint, opts.part, details).await?;
    let manifest = &published.manifest;
    Ok(Outcome::Converted(HubSummary {
        dest: target.root.display(),
        records: manifest.records,
        shards: manifest.shards.len() as u64,
        bytes: manifest.bytes,
        files,
        rows: counts.rows,
        failed: published.failures.rows,
        session_splits: counts.session_splits,
        resumed_at_row: published.resumed_at,
        wall_secs: started.elapsed().as_secs_f64(),
    }))
}

/// Records (or failures) read ahead of the writer at most: enough for the two stages to
/// overlap; each holds its images (views of the pages they were read from).
const PIPELINE_RECORDS: usize = 4;

/// `--format-version 1.0` has no place for a row's dataset, revision, row group and row in
/// the file: the provenance keeps the file and the row's 1-based number across all files
/// (`line`, as in `failures.jsonl`) instead. Masks, captions and instruction variants have no
/// place either: such records are refused by the writer and listed as failures.
fn format_1_0_provenance(record: &mut editshard::record::Record, ordinal: u64) {
    let p = &mut record.provenance;
    p.dataset = None;
    p.revision = None;
    p.row_group = None;
    p.row = None;
    p.line = Some(ordinal + 1);
}

/// Everything decided before the first row: the session, the row plan, the number of files,
/// the fingerprint and, with `--retry-failed`, the ordinals to convert.
type Job = (
    Session,
    walk::Plan,
    usize,
    Fingerprint,
    Option<HashSet<u64>>,
);

enum Prepared {
    Job(Box<Job>),
    Complete(session::Complete),
}

/// Lists the files, recognises a finished DEST from their names and sizes alone, then reads
/// the footers, plans the rows and starts the session.
async fn prepare(opts: &HubOptions, target: &Target, storage: &StorageOptions) -> Result<Prepared> {
    let src = Location::parse(&opts.source, storage)?;
    let listed = match &opts.files_from {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| Error::from(e).in_shard(p.display().to_string()))?
                .lines()
                .map(str::to_string)
                .collect(),
        ),
        None => None,
    };
    let files = source::list_files(&src, &opts.mapping, listed).await?;
    let only = if opts.retry_failed {
        Some(failures::parse_ordinals(&target.failures_file().await?)?)
    } else {
        None
    };
    let fingerprint = fingerprint(opts, &files, only.as_ref());
    let work = target.work()?;
    if let Some(existing) = target.existing.as_ref().filter(|_| !opts.retry_failed) {
        return target
            .complete(existing, &fingerprint, work)
            .await
            .map(Prepared::Complete);
    }
    // Footers are read only now: a finished DEST is recognised from the files' names and
    // sizes alone.
    let handle = tokio::runtime::Handle::current();
    let (mapping, files2) = (opts.mapping.clone(), files.clone());
    let opened = tokio::task::spawn_blocking(move || -> Result<Vec<FileOutline>> {
        files2
            .iter()
            .enumerate()
            .map(|(i, (rel, len))| {
                // Checked now, then let go: a file's footer is read again when its rows are.
                ParquetFile::open(Object::open(&src, rel, *len, &handle)?, i, rel, &mapping)
                    .map(ParquetFile::outline)
            })
            .collect()
    })
    .await
    .map_err(|e| Error::bug(format!("reading the footers failed: {e}")))??;
    let plan = walk::Plan::new(opened, opts.part)?;
    let settings = ShardSettings {
        shard_size: opts.shard_size,
        format_minor: opts.format_minor,
        licence: opts.mapping.licence.clone(),
    };
    let session = Session::start(target, work, &fingerprint, &settings, plan.start_row())?;
    Ok(Prepared::Job(Box::new((
        session,
        plan,
        files.len(),
        fingerprint,
        only,
    ))))
}

/// What every part of one conversion shares: the mapping, the revision, the files (names
/// and sizes), the shard size and the format version. Parts add their number, and a retry
/// the rows it converts, for their own resume state.
fn fingerprint(
    opts: &HubOptions,
    files: &[(String, u64)],
    only: Option<&HashSet<u64>>,
) -> Fingerprint {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&opts.mapping).expect("a mapping serializes"));
    h.update(format!(
        "\nrevision {:?}\nshard {}\n",
        opts.revision, opts.shard_size
    ));
    // Only when not the default, so that work directories of earlier versions still resume.
    if opts.format_minor != editshard::format::VERSION_MINOR {
        h.update(format!("format 1.{}\n", opts.format_minor));
    }
    for (f, len) in files {
        h.update(format!("{f}\t{len}\n"));
    }
    let common = format!("hub-{}", &editshard::hex::hex(&h.finalize())[..32]);
    let mut run = common.clone();
    if let Some((i, n)) = opts.part {
        run.push_str(&format!("/part-{i}-of-{n}"));
    }
    if let Some(only) = only {
        let mut rows: Vec<u64> = only.iter().copied().collect();
        rows.sort_unstable();
        let digest = editshard::hex::hex(&Sha256::digest(format!("{rows:?}").as_bytes()));
        run.push_str(&format!("/retry-{}", &digest[..16]));
    }
    Fingerprint {
        common,
        run,
        inputs: vec![
            ("mapping", opts.mapping_origin.clone()),
            ("source", opts.source.clone()),
        ],
    }
}
