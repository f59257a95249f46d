//! The conversion driver: plan, fetch in parallel, write in plan order, publish, resume.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::batch::{Context, LICENCE, RowOutcome, Validate};
use super::cache::Cache;
use super::fetch::{FetchOptions, Fetcher};
use super::openimages::OpenImages;
use super::plan::{self, CollisionPolicy, PlanOptions};
use super::resolve::{Release, Resolver};
use super::scores::Scores;
use crate::failures::{self, Failure};
use crate::progress::{ConvertObserver, Summary};
use crate::session::{self, Complete, Ended, Fingerprint, Outcome, Session, ShardSettings, Target};
use crate::state::Work;
use editshard::error::{Error, Result};
use editshard::record::Record;
use editshard::storage::{Location, StorageOptions};
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
    /// Told of every row as it is handled ([`crate::progress::Quiet`]: nothing is shown).
    pub observer: Arc<dyn ConvertObserver>,
}

/// Converts a release; see the module docs of [`crate::pico`].
///
/// Runs on the caller's multi-threaded tokio runtime, holding the destination's lock (one
/// writer per destination, released at the end whatever the outcome), as one conversion
/// [`session`](crate::session): [`prepare`] (work directory, plan, resume state, or DEST
/// already holding this conversion), [`write_shards`] (downloads in parallel, records written
/// in plan order and published shard by shard) and [`finish`] (failures, manifest, summary).
/// The blocking parts (planning over the JSONL files, writing shards) run on the runtime's
/// blocking threads.
pub async fn convert(opts: &ConvertOptions) -> Result<Outcome<Summary>> {
    let started = Instant::now();
    let storage = StorageOptions {
        s3_endpoint: opts.s3_endpoint.clone(),
        ..StorageOptions::default()
    };
    let (root, lock) = session::lock(&opts.out, &storage, opts.part, opts.break_lock).await?;
    let result = convert_locked(opts, root, started).await;
    lock.release_after(result).await
}

async fn convert_locked(
    opts: &ConvertOptions,
    root: Location,
    started: Instant,
) -> Result<Outcome<Summary>> {
    let target = Target::open(root, opts.work_dir.as_deref(), opts.retry_failed).await?;
    let prepared = prepare(opts, &target).await;
    if prepared.is_err() {
        target.discard_new_work_dir();
    }
    let job = match prepared? {
        Prepared::Job(job) => *job,
        Prepared::Complete(c) => return Ok(Outcome::AlreadyComplete(c)),
    };
    let written = write_shards(opts, job).await?;
    finish(&target, written, started).await
}

/// Everything decided before the first download.
struct Job {
    session: Session,
    ctx: Arc<Context>,
    plan: plan::Plan,
    fingerprint: Fingerprint,
}

/// What [`prepare`] found: work to do, or DEST already holding this conversion, finished.
enum Prepared {
    Job(Box<Job>),
    Complete(Complete),
}

/// Opens the work directory, fetches the release's JSONL files if it is remote, plans the
/// rows and starts the session (which checks the resume state against the options). A
/// finished dataset at DEST (without `--retry-failed`) is compared with the options instead:
/// the same fingerprint is [`Prepared::Complete`], another is refused with what differs.
async fn prepare(opts: &ConvertOptions, target: &Target) -> Result<Prepared> {
    let work = target.work()?;
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
        Some(failures::parse_rows(&target.failures_file().await?)?)
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
    let (plan, openimages, scores, (common, run), fp_inputs, resolver) = planned;
    let fingerprint = Fingerprint {
        common,
        run,
        inputs: fp_inputs,
    };

    if let Some(existing) = target.existing.as_ref().filter(|_| finished) {
        return target
            .complete(existing, &fingerprint, work)
            .await
            .map(Prepared::Complete);
    }
    let settings = ShardSettings {
        shard_size: opts.shard_size,
        format_minor: opts.format_minor,
        licence: Some(LICENCE.to_string()),
    };
    let session = Session::start(target, work, &fingerprint, &settings, 0)?;
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
        session,
        ctx,
        plan,
        fingerprint,
    })))
}

/// What the writing stage leaves for [`finish`].
struct Written {
    ended: Ended,
    ctx: Arc<Context>,
    plan: plan::Plan,
    fingerprint: Fingerprint,
    part: Option<(u32, u32)>,
}

/// Downloads the rows' images concurrently (a task on the runtime) while a blocking thread
/// hands the records to the session strictly in plan order (it publishes each finished shard
/// and saves the resume state after it).
async fn write_shards(opts: &ConvertOptions, job: Job) -> Result<Written> {
    let Job {
        mut session,
        ctx,
        plan,
        fingerprint,
    } = job;
    let next_row = session.next_row();
    let total_rows = plan.rows.len() as u64;
    let progress = opts.observer.clone();
    progress.start(total_rows, next_row.min(total_rows));
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

    let consumer_ctx = ctx.clone();
    let consumer = tokio::task::spawn_blocking(move || -> Result<Ended> {
        let mut pending: VecDeque<(u64, u32, Vec<String>)> = VecDeque::new();
        while let Some(batch) = rx.blocking_recv() {
            for outcome in batch {
                // The only place image bytes are in memory: one record at a time.
                let loaded = match outcome.result {
                    Ok(pending) => pending.load(),
                    Err(f) => Err(f),
                };
                consumer_ctx.done_with(&outcome.http_urls);
                pending.push_back((outcome.index, outcome.group, outcome.http_urls));
                let published = match loaded {
                    Ok(record) => {
                        let bytes: u64 = record.images().map(|i| i.len).sum();
                        let appended =
                            session.append(outcome.index, &record, |e| rejected(&record, e))?;
                        progress.row(if appended.written { bytes } else { 0 }, !appended.written);
                        appended.published
                    }
                    Err(f) => {
                        progress.row(0, true);
                        session.fail(outcome.index, f)?;
                        false
                    }
                };
                if published {
                    evict(&consumer_ctx, &mut pending, outcome.index);
                }
            }
        }
        progress.finish();
        session.end()
    });
    let written = consumer
        .await
        .map_err(|e| Error::bug(format!("the writing task failed: {e}")))?;
    // If writing failed, the channel is closed and the producer stops at its next batch.
    producer
        .await
        .map_err(|e| Error::bug(format!("the download task failed: {e}")))?;
    Ok(Written {
        ended: written?,
        ctx,
        plan,
        fingerprint,
        part: opts.part,
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

/// Publishes the dataset (failures, then the manifest) and sums up.
async fn finish(target: &Target, written: Written, started: Instant) -> Result<Outcome<Summary>> {
    let Written {
        ended,
        ctx,
        plan,
        fingerprint,
        part,
    } = written;
    let stats = &ctx.fetcher.stats;
    let fetched = (
        stats.requests.load(Ordering::Relaxed),
        stats.retries.load(Ordering::Relaxed),
        stats.bytes_downloaded.load(Ordering::Relaxed),
        stats.bytes_local.load(Ordering::Relaxed),
        stats.cache_hits.load(Ordering::Relaxed),
    );
    let local_ignored = ctx.resolver.local_refused();
    // The fetcher's cache lives in the work directory, which publishing removes.
    drop(ctx);
    let published = session::publish(
        target,
        ended,
        &plan.failures,
        &fingerprint,
        part,
        serde_json::Map::new(),
    )
    .await?;
    let manifest = &published.manifest;
    let total_rows = plan.rows.len() as u64;
    let by_reason = published.failures.by_reason.clone();
    let (requests, retries, bytes_downloaded, bytes_local, cache_hits) = fetched;
    Ok(Outcome::Converted(Summary {
        dest: target.root.display(),
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
        requests,
        retries,
        bytes_downloaded,
        bytes_local,
        cache_hits,
        local_ignored,
        resumed_at_row: published.resumed_at,
        wall_secs: started.elapsed().as_secs_f64(),
    }))
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
