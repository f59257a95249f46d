//! The conversion driver: plan, fetch in parallel, write in plan order, publish, resume.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::batch::{Context, LICENCE, RowOutcome, Validate};
use super::cache::Cache;
use super::fetch::{FetchOptions, Fetcher};
use super::openimages::OpenImages;
use super::plan::{self, CollisionPolicy, PlanOptions};
use super::resolve::{Release, Resolver};
use super::scores::Scores;
use crate::failures::{self, FAILURES_NAME, Failure};
use crate::kill::kill_point;
use crate::ownership;
use crate::progress::{Progress, Summary};
use crate::session::{Publisher, dest_root, input_digest, work_dir};
use crate::state::Work;
use editshard::error::{Error, ErrorKind, Result};
use editshard::lock::DestLock;
use editshard::manifest::{MANIFEST_NAME, Manifest};
use editshard::read::find_manifest;
use editshard::record::Record;
use editshard::shard::WriterOptions;
use editshard::storage::{Location, StorageOptions};
use editshard::write::DatasetWriter;
use editshard_pico::edit_types;
use editshard_pico::layout::CDN_BASE;
use editshard_pico::rows::Subset;

/// Largest JSONL file downloaded when the release is a URL.
const MAX_JSONL_BYTES: u64 = 4 << 30;

#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Directory or URL; default the public CDN.
    pub release: Option<String>,
    pub out: String,
    pub subsets: Vec<Subset>,
    pub limit: Option<u64>,
    pub map_url: Vec<String>,
    pub local_images_roots: Vec<PathBuf>,
    pub openimages_csv: Option<PathBuf>,
    pub openimages_dir: Option<PathBuf>,
    pub scores: Option<PathBuf>,
    pub collisions: CollisionPolicy,
    pub validate: Validate,
    pub fetch: FetchOptions,
    pub shard_size: u64,
    /// The minor format version to write (`--format-version 1.N`).
    pub format_minor: u16,
    pub part: Option<(u32, u32)>,
    pub retry_failed: bool,
    pub s3_endpoint: Option<String>,
    pub work_dir: Option<PathBuf>,
    /// Delete a lock left at a remote DEST by a run that is gone ([`DestLock::acquire`]).
    pub break_lock: bool,
    pub log_interval: Duration,
}

pub enum Outcome {
    /// The conversion ran (from the start, or resuming) and finished.
    Converted(Summary),
    /// DEST already held this very conversion, finished: nothing was written.
    AlreadyComplete(Complete),
}

/// A finished dataset found at DEST with the fingerprint the options give.
pub struct Complete {
    pub dest: String,
    pub records: u64,
    pub shards: u64,
    /// Lines of its `failures.jsonl`.
    pub failed: u64,
    /// A work directory left behind (a run killed after writing the manifest), now removed.
    pub removed_work_dir: Option<PathBuf>,
}

/// Converts a release; see the module docs of [`crate::convert`].
///
/// Runs on the caller's multi-threaded tokio runtime, holding the destination's lock
/// ([`DestLock`]: one writer per destination, released at the end whatever the outcome), in
/// four stages: [`Target::open`] (where the dataset goes and what is there), [`prepare`] (work directory, plan, resume state),
/// [`write_shards`] (downloads in parallel, records written in plan order and published shard
/// by shard) and [`finish`] (failures, manifest, summary). The blocking parts (planning over
/// the JSONL files, writing shards) run on the runtime's blocking threads.
pub async fn convert(opts: &ConvertOptions) -> Result<Outcome> {
    let started = Instant::now();
    let root = Target::root(opts)?;
    let command = format!("convert --out {}", opts.out);
    let lock = DestLock::acquire(&root, &command, opts.break_lock).await?;
    let result = convert_locked(opts, root, started).await;
    lock.release_after(result).await
}

async fn convert_locked(
    opts: &ConvertOptions,
    root: Location,
    started: Instant,
) -> Result<Outcome> {
    let target = Target::open(opts, root).await?;
    let work_dir = work_dir(opts.work_dir.as_deref(), &target.root);
    let work_dir_existed = work_dir.exists();
    let prepared = prepare(opts, &target, &work_dir).await;
    if prepared.is_err() && !work_dir_existed {
        // Nothing was converted: a wrong argument or input must not leave a work directory
        // behind (DEST itself, if this run created it and left it empty, goes with the
        // lock). Best effort: the error is what matters.
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    let job = match prepared? {
        Prepared::Job(job) => *job,
        Prepared::Complete(c) => return Ok(Outcome::AlreadyComplete(c)),
    };
    let written = write_shards(opts, &target, job).await?;
    finish(opts, &target, written, started).await
}

/// Where the dataset goes (DEST, or its part directory) and the dataset already there, if any.
struct Target {
    root: Location,
    existing: Option<Manifest>,
}

impl Target {
    /// Where this run writes: DEST, or its part directory with `--part`.
    fn root(opts: &ConvertOptions) -> Result<Location> {
        let storage_opts = StorageOptions {
            s3_endpoint: opts.s3_endpoint.clone(),
            ..StorageOptions::default()
        };
        dest_root(&opts.out, &storage_opts, opts.part)
    }

    /// What `root` (locked by this run) already holds.
    async fn open(opts: &ConvertOptions, root: Location) -> Result<Target> {
        // A finished dataset without --retry-failed is checked against the options once they
        // are planned ([`prepare`]): the same conversion is complete, another one is refused.
        if let Some(dir) = root.is_local() {
            // This run holds the lock: a temporary file of ours left here is a killed run's.
            ownership::remove_leftovers(dir)?;
        }
        let existing = find_manifest(&root).await?;
        if existing.is_none()
            && let Some(dir) = root.is_local()
        {
            ownership::check(dir, &work_dir(opts.work_dir.as_deref(), &root))?;
        }
        if existing.is_none() && opts.retry_failed {
            return Err(Error::invalid(format!(
                "--retry-failed: {} holds no finished dataset to complete (no {MANIFEST_NAME})",
                root.display()
            )));
        }
        Ok(Target { root, existing })
    }
}

/// Everything decided before the first download.
struct Job {
    work: Work,
    ctx: Arc<Context>,
    plan: plan::Plan,
    /// Fingerprint of what every part shares (checked by `merge`) and of this run (checked
    /// on resume).
    common: String,
    fingerprint: String,
    /// The first plan row not yet in a published shard, and the manifest of those shards.
    next_row: u64,
    base: Manifest,
    /// The named inputs of `common`, recorded in the manifest (see [`fingerprint_inputs`]).
    inputs: Vec<(&'static str, String)>,
}

/// What [`prepare`] found: work to do, or DEST already holding this conversion, finished.
enum Prepared {
    Job(Box<Job>),
    Complete(Complete),
}

/// Opens the work directory, fetches the release's JSONL files if it is remote, plans the
/// rows and checks the resume state against the options. A finished dataset at DEST (without
/// `--retry-failed`) is compared with the options instead: the same fingerprint is
/// [`Prepared::Complete`] (a work directory left behind is removed), another is refused with
/// what differs.
async fn prepare(opts: &ConvertOptions, target: &Target, work_dir: &Path) -> Result<Prepared> {
    let work_dir_existed = work_dir.exists();
    let work = Work::open(work_dir)?;
    let fetcher = Fetcher::new(opts.fetch.clone(), Cache::new(work.path("cache")))?;

    // The release and its JSONL files (downloaded once into the work directory if remote).
    let release_str = opts.release.clone().unwrap_or_else(|| CDN_BASE.to_string());
    let release = Release::parse(&release_str);
    let resolver = Resolver::new(release.clone(), &opts.map_url)
        .and_then(|r| r.local_images_roots(&opts.local_images_roots))
        .map_err(Error::invalid)?;
    let mut inputs = Vec::new();
    for &subset in &opts.subsets {
        let path = match &release {
            Release::Dir(d) => d.join(subset.file()),
            Release::Url(_) => download_jsonl(&fetcher, &resolver, &work, subset).await?,
        };
        if !path.is_file() {
            return Err(Error::invalid(format!(
                "{} not found: RELEASE must be laid out like the release (jsonl/sft.jsonl, \
                 jsonl/preference.jsonl, jsonl/multi-turn.jsonl); use --subsets to convert fewer",
                path.display()
            )));
        }
        inputs.push((subset, path));
    }
    let only = if opts.retry_failed {
        let bytes = target
            .root
            .get_max(FAILURES_NAME, failures::MAX_FAILURES_BYTES as u64)
            .await?;
        Some(failures::parse_rows(&bytes)?)
    } else {
        None
    };

    // Planning reads every JSONL line (and the Open Images CSV): blocking work. A finished
    // dataset at DEST needs only the fingerprint, so the CSV and scores are not loaded then.
    let finished = target.existing.is_some() && !opts.retry_failed;
    let planned = {
        let opts = opts.clone();
        let inputs = inputs.clone();
        tokio::task::spawn_blocking(move || -> Result<_> {
            let plan = plan::build(
                &PlanOptions {
                    inputs,
                    limit: opts.limit,
                    collisions: opts.collisions,
                    part: opts.part,
                    only: only.clone(),
                    want_sources: opts.openimages_csv.is_some(),
                },
                &resolver,
            )?;
            let openimages = match &opts.openimages_csv {
                Some(csv) if !finished => Some(OpenImages::load(
                    csv,
                    opts.openimages_dir.as_deref(),
                    &plan.source_urls,
                )?),
                _ => None,
            };
            let scores = match &opts.scores {
                Some(path) if !finished => Some(Scores::load(path)?),
                _ => None,
            };
            let inputs = fingerprint_inputs(&opts, &release_str, &plan.input_sha256)?;
            let fingerprints = fingerprints(&inputs, opts.part, only.as_ref());
            Ok((plan, openimages, scores, fingerprints, inputs, resolver))
        })
        .await
        .map_err(|e| Error::bug(format!("the planning task failed: {e}")))??
    };
    let (plan, openimages, scores, (common, fingerprint), fp_inputs, resolver) = planned;

    let state = work.load_state()?;
    if let Some(existing) = target.existing.as_ref().filter(|_| finished) {
        let ours = state.as_ref().is_none_or(|s| s.fingerprint == fingerprint);
        return already_finished(
            target,
            existing,
            &common,
            &fp_inputs,
            work,
            ours,
            work_dir_existed,
        )
        .await
        .map(Prepared::Complete);
    }
    if let Some(s) = &state
        && s.fingerprint != fingerprint
    {
        return Err(Error::invalid(format!(
            "the work directory {} belongs to a different conversion (the options or the input \
             changed since it was interrupted): re-run the original command to finish it, or \
             delete the directory to start over",
            work.dir().display()
        )));
    }
    let next_row = state.as_ref().map_or(0, |s| s.next_row);
    let base = state.map_or_else(|| Manifest::new(Some(LICENCE.to_string())), |s| s.manifest);
    let ctx = Arc::new(Context {
        fetcher,
        resolver,
        openimages,
        scores,
        validate: opts.validate,
        inputs: inputs.into_iter().collect(),
        decodes: tokio::sync::Semaphore::new(2),
        pending_urls: Default::default(),
    });
    Ok(Prepared::Job(Box::new(Job {
        work,
        ctx,
        plan,
        common,
        fingerprint,
        next_row,
        base,
        inputs: fp_inputs,
    })))
}

/// DEST holds a finished dataset and no `--retry-failed` was given: if it is this conversion
/// (same `convert.fingerprint`), it is complete; the work directory goes (it was created just
/// now, or left behind by a run killed between writing the manifest and removing it) unless it
/// belongs to another conversion. Otherwise the run is refused, naming what differs.
async fn already_finished(
    target: &Target,
    existing: &Manifest,
    common: &str,
    inputs: &[(&'static str, String)],
    work: Work,
    work_is_ours: bool,
    work_dir_existed: bool,
) -> Result<Complete> {
    let info = existing.extra.get("convert");
    let stored = info
        .and_then(|c| c.get("fingerprint"))
        .and_then(|f| f.as_str());
    if stored != Some(common) {
        if !work_dir_existed {
            // Created a moment ago by this run: leave DEST as it was.
            work.remove()?;
        }
        let differs = match info
            .and_then(|c| c.get("inputs"))
            .and_then(|i| i.as_object())
        {
            None if stored.is_none() => {
                "its manifest records no conversion fingerprint (not written by `convert`)"
                    .to_string()
            }
            None => "its inputs or options differ from these (it predates the record of which)"
                .to_string(),
            Some(old) => {
                let names: Vec<String> = inputs
                    .iter()
                    .filter(|(name, value)| {
                        old.get(*name).and_then(|v| v.as_str()) != Some(&input_digest(value))
                    })
                    .map(|(name, value)| format!("{name} (now {})", shorten(value)))
                    .collect();
                if names.is_empty() {
                    "its fingerprint differs from these options'".to_string()
                } else {
                    format!("these differ: {}", names.join(", "))
                }
            }
        };
        return Err(Error::invalid(format!(
            "{} already holds a finished dataset from a different conversion: {differs}. \
             Choose another --out, re-run the command that made it, or pass --retry-failed \
             to convert only the rows listed in its {FAILURES_NAME}",
            target.root.display()
        )));
    }
    let removed_work_dir = if work_is_ours {
        let dir = work.dir().to_path_buf();
        work.remove()?;
        work_dir_existed.then_some(dir)
    } else {
        log::warn!(
            "{} belongs to another conversion: left as it is",
            work.dir().display()
        );
        None
    };
    let failures = failures::count_in(&target.root).await;
    Ok(Complete {
        dest: target.root.display(),
        records: existing.records,
        shards: existing.shards.len() as u64,
        failed: failures,
        removed_work_dir,
    })
}

/// At most 120 characters of an input's value, for messages.
fn shorten(value: &str) -> String {
    if value.chars().count() <= 120 {
        value.to_string()
    } else {
        format!("{}...", value.chars().take(117).collect::<String>())
    }
}

/// What the writing stage leaves for [`finish`].
struct Written {
    work: Work,
    ctx: Arc<Context>,
    plan: plan::Plan,
    common: String,
    inputs: Vec<(&'static str, String)>,
    /// Where this run started in the plan (0 unless it resumed).
    resumed_at_row: u64,
    /// The manifest of every shard this conversion wrote (resumed runs included).
    new_part: Manifest,
    /// Rows that failed while fetching or writing.
    run_failures: Vec<Failure>,
}

/// Downloads the rows' images concurrently (a task on the runtime) while a blocking thread
/// writes the records strictly in plan order, publishes each finished shard and saves the
/// resume state after it.
async fn write_shards(opts: &ConvertOptions, target: &Target, job: Job) -> Result<Written> {
    let Job {
        mut work,
        ctx,
        plan,
        common,
        fingerprint,
        next_row,
        base,
        inputs,
    } = job;
    let prefix = match &target.existing {
        Some(m) => format!("retry-{}/shard-", retry_number(m)),
        None => "shard-".to_string(),
    };
    let mut writer = DatasetWriter::create(&work.path("staging"))?
        .target_shard_bytes(opts.shard_size)
        .licence(Some(LICENCE.to_string()))
        // Every image was hashed by `Image::from_bytes` a moment ago; hashing it again in the
        // writer would be a third SHA-256 pass over every byte (the shard hash is the second).
        .writer_options(WriterOptions {
            verify_hashes: false,
            minor_version: opts.format_minor,
            ..WriterOptions::default()
        })
        .shard_prefix(prefix)
        .resume_after(base);
    let mut run_failures = work.reopen_failures(next_row)?;

    let total_rows = plan.rows.len() as u64;
    let mut progress = Progress::new(total_rows, next_row.min(total_rows), opts.log_interval);
    let batches: Vec<Vec<(u64, plan::PlanRow)>> = plan
        .batches
        .iter()
        .filter(|b| b.end as u64 > next_row)
        .map(|b| {
            (b.start.max(next_row as usize)..b.end)
                .map(|i| (i as u64, plan.rows[i]))
                .collect()
        })
        .collect();
    let window = (opts.fetch.jobs * 2).max(4);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<RowOutcome>>(2);
    let producer_ctx = ctx.clone();
    let producer = tokio::spawn(async move {
        let mut stream = futures_util::stream::iter(batches)
            .map(|b| producer_ctx.clone().batch(b))
            .buffered(window);
        while let Some(done) = stream.next().await {
            if tx.send(done).await.is_err() {
                break;
            }
        }
    });

    let mut publisher = Publisher {
        root: target.root.clone(),
        staging: work.path("staging"),
        rt: tokio::runtime::Handle::current(),
    };
    let consumer_ctx = ctx.clone();
    let consumer =
        tokio::task::spawn_blocking(move || -> Result<(Work, Manifest, Vec<Failure>)> {
            let mut pending: VecDeque<(u64, u32, Vec<String>)> = VecDeque::new();
            while let Some(batch) = rx.blocking_recv() {
                for outcome in batch {
                    let shards_before = writer.manifest().shards.len();
                    // The only place image bytes are in memory: one record at a time.
                    let loaded = match outcome.result {
                        Ok(pending) => pending.load(),
                        Err(f) => Err(f),
                    };
                    consumer_ctx.done_with(&outcome.http_urls);
                    pending.push_back((outcome.index, outcome.group, outcome.http_urls));
                    let failure = match loaded {
                        Ok(record) => {
                            let bytes: u64 = record.images().map(|i| i.len).sum();
                            match writer.append(&record) {
                                Ok(()) => {
                                    progress.row(bytes, false);
                                    kill_point("appended");
                                    None
                                }
                                Err(e) if matches!(e.kind(), ErrorKind::Rejected(_)) => {
                                    Some(rejected(&record, &e))
                                }
                                Err(e) => return Err(e),
                            }
                        }
                        Err(f) => Some(f),
                    };
                    if let Some(f) = failure {
                        progress.row(0, true);
                        work.record_failure(outcome.index, &f)?;
                        run_failures.push(f);
                    }
                    if writer.manifest().shards.len() > shards_before {
                        // The record just appended opened a new shard: everything before it is
                        // final.
                        publisher.publish_new(writer.manifest(), shards_before)?;
                        kill_point("published");
                        work.save_state(&fingerprint, outcome.index, writer.manifest())?;
                        kill_point("saved");
                        evict(&consumer_ctx, &mut pending, outcome.index);
                    }
                }
            }
            let shards_before = writer.manifest().shards.len();
            writer.finish_shard()?;
            publisher.publish_new(writer.manifest(), shards_before)?;
            progress.finish();
            let new_part = writer.manifest().clone();
            work.save_state(&fingerprint, total_rows, &new_part)?;
            Ok((work, new_part, run_failures))
        });
    let written = consumer
        .await
        .map_err(|e| Error::bug(format!("the writing task failed: {e}")))?;
    // If writing failed, the channel is closed and the producer stops at its next batch.
    producer
        .await
        .map_err(|e| Error::bug(format!("the download task failed: {e}")))?;
    let (work, new_part, run_failures) = written?;
    Ok(Written {
        work,
        ctx,
        plan,
        common,
        inputs,
        resumed_at_row: next_row,
        new_part,
        run_failures,
    })
}

/// The failure for a record the writer refused (an id too long, metadata over the limit).
fn rejected(record: &Record, e: &Error) -> Failure {
    Failure::new(
        Subset::from_name(record.provenance.subset.as_deref().unwrap_or("")).unwrap_or(Subset::Sft),
        record.provenance.line.unwrap_or(0),
        "invalid-record",
        e.to_string(),
    )
    .id(Some(record.id.clone()))
}

/// Writes `failures.jsonl` and the manifest (last: DEST is a dataset only from then on),
/// removes the work directory and sums up.
async fn finish(
    opts: &ConvertOptions,
    target: &Target,
    written: Written,
    started: Instant,
) -> Result<Outcome> {
    let Written {
        work,
        ctx,
        plan,
        common,
        inputs,
        resumed_at_row,
        new_part,
        run_failures,
    } = written;
    let root = &target.root;
    let total_rows = plan.rows.len() as u64;
    let mut all_failures: Vec<Failure> = plan.failures.clone();
    all_failures.extend(run_failures);
    let failures_bytes = failures::to_jsonl(&mut all_failures);
    root.put(FAILURES_NAME, Bytes::from(failures_bytes)).await?;
    kill_point("finishing");
    let mut manifest = match target.existing.clone() {
        Some(mut m) => {
            m.absorb(&new_part);
            m
        }
        None => new_part,
    };
    let mut info = serde_json::Map::new();
    info.insert("fingerprint".into(), common.into());
    let digests: serde_json::Map<String, serde_json::Value> = inputs
        .iter()
        .map(|(name, value)| (name.to_string(), input_digest(value).into()))
        .collect();
    info.insert("inputs".into(), digests.into());
    if let Some((i, n)) = opts.part {
        info.insert("part".into(), i.into());
        info.insert("parts".into(), n.into());
    }
    manifest.extra.insert("convert".into(), info.into());
    root.put(MANIFEST_NAME, Bytes::from(manifest.to_json()))
        .await?;

    let stats = &ctx.fetcher.stats;
    let mut by_reason = BTreeMap::new();
    for f in &all_failures {
        *by_reason.entry(f.reason.clone()).or_insert(0u64) += 1;
    }
    let summary = Summary {
        dest: root.display(),
        rows_read: plan.rows_read.clone(),
        rows_in_part: total_rows + plan.failures.len() as u64,
        records: manifest.records,
        shards: manifest.shards.len() as u64,
        shard_bytes: manifest.bytes,
        failures: by_reason,
        unknown_edit_types: manifest
            .edit_types
            .iter()
            .filter(|(t, _)| edit_types::category(t).is_none())
            .map(|(t, n)| (t.clone(), *n))
            .collect(),
        images_referenced: manifest.images.referenced,
        images_stored: manifest.images.stored,
        image_bytes_referenced: manifest.images.bytes_referenced,
        image_bytes_stored: manifest.images.bytes_stored,
        requests: stats.requests.load(Ordering::Relaxed),
        retries: stats.retries.load(Ordering::Relaxed),
        bytes_downloaded: stats.bytes_downloaded.load(Ordering::Relaxed),
        bytes_local: stats.bytes_local.load(Ordering::Relaxed),
        cache_hits: stats.cache_hits.load(Ordering::Relaxed),
        local_ignored: ctx.resolver.local_refused(),
        resumed_at_row,
        wall_secs: started.elapsed().as_secs_f64(),
    };
    drop(ctx);
    kill_point("manifest");
    work.remove()?;
    Ok(Outcome::Converted(summary))
}

/// Drops cache entries of rows now in a published shard, except those of the source still
/// being written (its next batch reads the shared source from the cache) and those a row in
/// flight, not yet written, holds ([`Context::in_use`]).
fn evict(ctx: &Context, pending: &mut VecDeque<(u64, u32, Vec<String>)>, next_row: u64) {
    let cache = ctx.fetcher.cache();
    let current_group = pending.iter().find(|p| p.0 == next_row).map(|p| p.1);
    let mut keep = VecDeque::new();
    let mut live: HashSet<String> = HashSet::new();
    for p in pending
        .iter()
        .filter(|p| p.0 >= next_row || Some(p.1) == current_group)
    {
        live.extend(p.2.iter().cloned());
    }
    for p in pending.drain(..) {
        if p.0 >= next_row || Some(p.1) == current_group {
            keep.push_back(p);
        } else {
            for url in &p.2 {
                if !live.contains(url) && !ctx.in_use(url) {
                    cache.remove(url);
                }
            }
        }
    }
    *pending = keep;
}

/// The next free `retry-N` directory name number.
fn retry_number(m: &Manifest) -> usize {
    (1..)
        .find(|n| {
            let p = format!("retry-{n}/");
            !m.shards.iter().any(|s| s.path.starts_with(&p))
        })
        .expect("some number is free")
}

async fn download_jsonl(
    fetcher: &Fetcher,
    resolver: &Resolver,
    work: &Work,
    subset: Subset,
) -> Result<PathBuf> {
    let path = work.path("release").join(subset.file());
    if path.is_file() {
        return Ok(path);
    }
    let loc = resolver
        .release_ref(subset.file())
        .map_err(Error::invalid)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match &loc {
        super::resolve::Location::Local(p) => {
            let context = |e: std::io::Error| Error::from(e).in_shard(p.display().to_string());
            let (mut file, partial) = editshard::atomic::create_partial(&path).map_err(context)?;
            std::io::copy(&mut std::fs::File::open(p).map_err(context)?, &mut file)
                .map_err(context)?;
            drop(file);
            std::fs::rename(&partial, &path).map_err(context)?;
        }
        super::resolve::Location::Http(url) => {
            fetcher
                .download(url, MAX_JSONL_BYTES, &path)
                .await
                .map_err(|e| {
                    Error::invalid(format!(
                        "cannot download {url}: {} ({})",
                        e.reason(),
                        e.detail(MAX_JSONL_BYTES)
                    ))
                })?;
        }
    }
    Ok(path)
}

/// The named inputs of a conversion's fingerprint, in its order: what every part of one
/// conversion shares. Options that do not change the output (jobs, limits on the network,
/// timeouts) are left out on purpose. The names are what a refusal says differs.
fn fingerprint_inputs(
    opts: &ConvertOptions,
    release: &str,
    input: &[u8; 32],
) -> Result<Vec<(&'static str, String)>> {
    let file_digest = |p: &Path| -> Result<String> {
        let data =
            std::fs::read(p).map_err(|e| Error::from(e).in_shard(p.display().to_string()))?;
        Ok(editshard::hex::hex(&Sha256::digest(&data)))
    };
    let csv_len = match &opts.openimages_csv {
        Some(p) => std::fs::metadata(p)?.len(),
        None => 0,
    };
    let scores = opts.scores.as_deref().map(file_digest).transpose()?;
    let mut fields = vec![
        ("release", release.to_string()),
        ("--subsets", format!("{:?}", opts.subsets)),
        ("--limit", format!("{:?}", opts.limit)),
        ("--on-collision", format!("{:?}", opts.collisions)),
        ("--validate", format!("{:?}", opts.validate)),
        ("--shard-size", opts.shard_size.to_string()),
        ("--map-url", format!("{:?}", opts.map_url)),
        ("--openimages-dir", format!("{:?}", opts.openimages_dir)),
        (
            "--local-images-root",
            format!("{:?}", opts.local_images_roots),
        ),
        ("--openimages-csv (length)", csv_len.to_string()),
        ("--scores (SHA-256)", format!("{scores:?}")),
        ("the JSONL rows (SHA-256)", editshard::hex::hex(input)),
    ];
    // Only when not the default, so that work directories of earlier versions still resume.
    if opts.format_minor != editshard::format::VERSION_MINOR {
        fields.push(("--format-version", format!("1.{}", opts.format_minor)));
    }
    Ok(fields)
}

/// `(common, run)`: `common` covers what every part of one conversion shares (checked by
/// `merge`, and against a finished dataset), the [`fingerprint_inputs`]; `run` adds the part
/// and the retried rows (checked on resume).
fn fingerprints(
    inputs: &[(&'static str, String)],
    part: Option<(u32, u32)>,
    only: Option<&HashSet<(Subset, u64)>>,
) -> (String, String) {
    let mut h = Sha256::new();
    let mut text = String::from("editshard-convert-v1\n");
    for (_, value) in inputs {
        text.push_str(value);
        text.push('\n');
    }
    h.update(text.as_bytes());
    let common = editshard::hex::hex(&h.clone().finalize());
    h.update(format!("{part:?}\n").as_bytes());
    if let Some(only) = only {
        let mut rows: Vec<(u8, u64)> = only.iter().map(|(s, l)| (s.index(), *l)).collect();
        rows.sort();
        h.update(format!("{rows:?}").as_bytes());
    }
    (common, editshard::hex::hex(&h.finalize()))
}
