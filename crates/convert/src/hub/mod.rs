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

use std::path::PathBuf;
use std::time::Instant;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::failures::{self, FAILURES_NAME, Failure};
use crate::kill::kill_point;
use crate::ownership;
use crate::session::{Publisher, dest_root, input_digest, work_dir};
use crate::state::Work;
use editshard::error::{Error, ErrorKind, Result};
use editshard::lock::DestLock;
use editshard::manifest::{MANIFEST_NAME, Manifest};
use editshard::read::find_manifest;
use editshard::shard::WriterOptions;
use editshard::storage::{Location, StorageOptions};
use editshard::write::DatasetWriter;
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
    pub batch_memory: u64,
    /// The largest cell (image) read (`--max-image-size`): a page or row over it is refused
    /// before it is decoded.
    pub max_image_bytes: u64,
    pub part: Option<(u32, u32)>,
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
    /// True when DEST already held this very conversion.
    pub already_complete: bool,
}

pub async fn convert(opts: &HubOptions) -> Result<HubSummary> {
    let started = Instant::now();
    let storage = StorageOptions {
        s3_endpoint: opts.s3_endpoint.clone(),
        ..StorageOptions::default()
    };
    let root = dest_root(&opts.out, &storage, opts.part)?;
    let lock = DestLock::acquire(
        &root,
        &format!("convert --out {}", opts.out),
        opts.break_lock,
    )
    .await?;
    let result = convert_locked(opts, &root, &storage, started).await;
    lock.release_after(result).await
}

async fn convert_locked(
    opts: &HubOptions,
    root: &Location,
    storage: &StorageOptions,
    started: Instant,
) -> Result<HubSummary> {
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
    let common = fingerprint(opts, &files);
    let run_fp = match opts.part {
        Some((i, n)) => format!("{common}/part-{i}-of-{n}"),
        None => common.clone(),
    };
    let existing = find_manifest(root).await?;
    let work_dir = work_dir(opts.work_dir.as_deref(), root);
    if let Some(m) = existing {
        let stored = m
            .extra
            .get("convert")
            .and_then(|c| c.get("fingerprint"))
            .and_then(|f| f.as_str());
        if stored != Some(common.as_str()) {
            return Err(Error::invalid(format!(
                "{} already holds a finished dataset from a different conversion (other \
                 files, mapping or options): choose another --out",
                root.display()
            )));
        }
        if work_dir.exists() && crate::state::is_work_dir(&work_dir) {
            Work::open(&work_dir)?.remove()?;
        }
        let failed = failures::count_in(root).await;
        return Ok(HubSummary {
            dest: root.display(),
            records: m.records,
            shards: m.shards.len() as u64,
            bytes: m.bytes,
            files: files.len(),
            rows: 0,
            failed,
            session_splits: 0,
            resumed_at_row: 0,
            wall_secs: started.elapsed().as_secs_f64(),
            already_complete: true,
        });
    }
    if let Some(dir) = root.is_local() {
        ownership::remove_leftovers(dir)?;
        ownership::check(dir, &work_dir)?;
    }
    // Footers are read only now: a finished DEST is recognised from the files' names and
    // sizes alone.
    let handle = tokio::runtime::Handle::current();
    let (mapping, src2, files2) = (opts.mapping.clone(), src.clone(), files.clone());
    let opened = tokio::task::spawn_blocking(move || -> Result<Vec<FileOutline>> {
        files2
            .iter()
            .enumerate()
            .map(|(i, (rel, len))| {
                // Checked now, then let go: a file's footer is read again when its rows are.
                ParquetFile::open(Object::open(&src2, rel, *len, &handle)?, i, rel, &mapping)
                    .map(ParquetFile::outline)
            })
            .collect()
    })
    .await
    .map_err(|e| Error::bug(format!("reading the footers failed: {e}")))??;
    let plan = walk::Plan::new(opened, opts.part)?;
    let mut work = Work::open(&work_dir)?;
    let state = work.load_state()?;
    if let Some(s) = &state
        && s.fingerprint != run_fp
    {
        return Err(Error::invalid(format!(
            "the work directory {} holds an unfinished conversion with other files, mapping \
             or options: re-run that command, or delete the directory to start over",
            work_dir.display()
        )));
    }
    let (next_row, base) = match state {
        Some(s) => (s.next_row, s.manifest),
        None => (
            plan.start_row(),
            Manifest::new(opts.mapping.licence.clone()),
        ),
    };
    let earlier = work.reopen_failures(next_row)?;
    let mut writer = DatasetWriter::create(&work.path("staging"))?
        .target_shard_bytes(opts.shard_size)
        .licence(opts.mapping.licence.clone())
        .writer_options(WriterOptions {
            // `Image::from_bytes` hashed every image a moment ago.
            verify_hashes: false,
            ..WriterOptions::default()
        })
        .resume_after(base);
    let mut publisher = Publisher {
        root: root.clone(),
        staging: work.path("staging"),
        rt: tokio::runtime::Handle::current(),
    };
    let limits = editshard_hub::reader::ReadLimits {
        batch_bytes: opts.batch_memory,
        max_cell: opts.max_image_bytes,
    };
    let mapping = opts.mapping.clone();
    let revision = opts.revision.clone();
    let fp = run_fp.clone();
    let done = tokio::task::spawn_blocking(
        move || -> Result<(Work, Manifest, Vec<Failure>, walk::Counts)> {
            let mut failures = earlier;
            // The ordinal of the record appended last: the records of a split session share
            // one, and resuming from it would write the earlier ones again.
            let mut last_ordinal = None;
            let mut sink = |event: walk::Event| -> Result<()> {
                match event {
                    walk::Event::Record(record, ordinal) => {
                        let before = writer.manifest().shards.len();
                        match writer.append(&record) {
                            Ok(()) => kill_point("appended"),
                            Err(e) if matches!(e.kind(), ErrorKind::Rejected(_)) => {
                                let f =
                                    walk::failure_of_record(&mapping.name, &record, ordinal, &e);
                                work.record_failure(ordinal, &f)?;
                                failures.push(f);
                            }
                            Err(e) => return Err(e),
                        }
                        let shares = last_ordinal == Some(ordinal);
                        last_ordinal = Some(ordinal);
                        if writer.manifest().shards.len() > before {
                            publisher.publish_new(writer.manifest(), before)?;
                            kill_point("published");
                            // With a shared ordinal the last saved state stays: a resume from
                            // it writes the same shard again (conversion is deterministic).
                            if !shares {
                                work.save_state(&fp, ordinal, writer.manifest())?;
                                kill_point("saved");
                            }
                        }
                    }
                    walk::Event::Failed(f, ordinal) => {
                        work.record_failure(ordinal, &f)?;
                        failures.push(f);
                    }
                }
                Ok(())
            };
            let counts = plan.run(&mapping, revision, next_row, limits, &mut sink)?;
            let before = writer.manifest().shards.len();
            writer.finish_shard()?;
            publisher.publish_new(writer.manifest(), before)?;
            let manifest = writer.manifest().clone();
            work.save_state(&fp, u64::MAX, &manifest)?;
            Ok((work, manifest, failures, counts))
        },
    )
    .await
    .map_err(|e| Error::bug(format!("the conversion task failed: {e}")))?;
    let (work, mut manifest, mut all_failures, counts) = done?;
    root.put(
        FAILURES_NAME,
        Bytes::from(failures::to_jsonl(&mut all_failures)),
    )
    .await?;
    let mut info = serde_json::Map::new();
    info.insert("fingerprint".into(), common.into());
    let mut inputs = serde_json::Map::new();
    inputs.insert("mapping".into(), input_digest(&opts.mapping_origin).into());
    inputs.insert("source".into(), input_digest(&opts.source).into());
    info.insert("inputs".into(), inputs.into());
    if let Some((i, n)) = opts.part {
        info.insert("part".into(), i.into());
        info.insert("parts".into(), n.into());
    }
    let mut hub = serde_json::Map::new();
    hub.insert("mapping".into(), opts.mapping.name.clone().into());
    if let Some(d) = &opts.mapping.dataset {
        hub.insert("dataset".into(), d.clone().into());
    }
    if let Some(r) = opts.revision.as_ref().or(opts.mapping.revision.as_ref()) {
        hub.insert("revision".into(), r.clone().into());
    }
    hub.insert("files".into(), files.len().into());
    hub.insert("session_splits".into(), counts.session_splits.into());
    info.insert("hub".into(), hub.into());
    manifest.extra.insert("convert".into(), info.into());
    root.put(MANIFEST_NAME, Bytes::from(manifest.to_json()))
        .await?;
    work.remove()?;
    Ok(HubSummary {
        dest: root.display(),
        records: manifest.records,
        shards: manifest.shards.len() as u64,
        bytes: manifest.bytes,
        files: files.len(),
        rows: counts.rows,
        failed: failures::rows_of(&all_failures),
        session_splits: counts.session_splits,
        resumed_at_row: next_row,
        wall_secs: started.elapsed().as_secs_f64(),
        already_complete: false,
    })
}

/// What every part of one conversion shares: the mapping, the revision, the files (names
/// and sizes) and the shard size. Parts add their number for their own resume state.
fn fingerprint(opts: &HubOptions, files: &[(String, u64)]) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&opts.mapping).expect("a mapping serializes"));
    h.update(format!(
        "\nrevision {:?}\nshard {}\n",
        opts.revision, opts.shard_size
    ));
    for (f, len) in files {
        h.update(format!("{f}\t{len}\n"));
    }
    format!("hub-{}", &editshard::hex::hex(&h.finalize())[..32])
}
