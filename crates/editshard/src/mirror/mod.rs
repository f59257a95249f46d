//! `editshard mirror SRC DST`: copy a dataset between any two locations, verified and
//! resumable.
//!
//! - Shards first, several at a time, streamed (never a whole shard in memory; multipart
//!   uploads to S3); `manifest.json` last, so DST is a dataset only once every shard is there.
//! - Every copied shard is checked against the source manifest (length, SHA-256 and
//!   CRC-64/NVME) while it streams, and published under its name only if it matches
//!   ([`shard::checked`]). S3 uploads carry each part's CRC-64/NVME, so the store refuses
//!   damaged bytes, and the whole object's CRC the store then reports is compared with the
//!   manifest's. Between two S3 locations on one endpoint the store copies each shard itself
//!   (`CopyObject`, see [`shard::copy`]): nothing is uploaded from here, and the copy's CRC as
//!   the store reports it is compared with the manifest's (the copy is read back and hashed
//!   where the store reports none), unless `trust_store_copy` takes it on its length.
//! - A large shard from a remote SRC to a local DST comes in ranged GETs at once, written in
//!   place and hashed as they arrive ([`ranged`]).
//! - A shard already at DST that is intact is skipped: an interrupted mirror resumes. Intact
//!   is decided by the CRC the store reports where it reports one (a HEAD), else by reading
//!   and hashing the shard (the report says so once: [`MirrorReport::read_back_note`]). One that differs is reported and left
//!   alone unless `force` is set: it may be the better copy.
//! - `verify_only` compares DST with SRC's manifest without writing anything.
//! - `subset` writes a smaller dataset with its own manifest ([`subset`]).
//! - One mirror at a time writes a DST: it holds DST's [lock](crate::lock) from start to end,
//!   and another run is refused, naming the holder (`verify_only` writes nothing and takes
//!   no lock).
//! - A local DST must be empty or hold only names SRC's manifest lists (an earlier copy):
//!   anything else is refused unless `force` is set.

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt;

use crate::error::{Error, Result};
use crate::lock::DestLock;
use crate::manifest::{MANIFEST_NAME, Manifest, ShardEntry};
use crate::ownership;
use crate::read::{Dataset, DatasetOptions, load_manifest};
use crate::storage::Location;

mod progress;
pub mod ranged;
pub mod shard;
pub mod subset;

pub(crate) use progress::Progress;
pub use progress::{MirrorObserver, Quiet, ShardEvent};
pub use ranged::RangedDownload;
pub use shard::{AtDest, Expected};
pub use subset::Subset;

#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// Shards handled at once.
    pub jobs: usize,
    /// Compare DST with SRC's manifest; write nothing.
    pub verify_only: bool,
    /// Replace DST shards that differ from SRC, and write into a local DST that holds other
    /// files than SRC's (they are left as they are).
    pub force: bool,
    /// Read every copied shard back from DST and hash it again (the copy is already checked
    /// as it streams; this also catches a store that corrupts what it was sent).
    pub verify_after_copy: bool,
    /// Take a copy made inside the store (S3 to S3 on one endpoint) on its length alone.
    /// By default such a copy is checked against the manifest, since the source object was
    /// not read here: by the CRC-64/NVME the store reports for it, else read back and
    /// hashed. A copy that differs fails its shard and is removed, never published.
    pub trust_store_copy: bool,
    /// Write only these records, as a new dataset.
    pub subset: Option<Subset>,
    /// Where `subset` stages rewritten shards (default: the system temp directory).
    pub work_dir: Option<PathBuf>,
    /// Delete a lock left at a remote DST by a mirror that is gone, then take it
    /// ([`DestLock::acquire`]).
    pub break_lock: bool,
    /// Which shards a remote SRC sends to a local DST in ranged GETs at once, and how.
    pub ranged: RangedDownload,
}

impl Default for MirrorOptions {
    fn default() -> Self {
        MirrorOptions {
            jobs: 4,
            verify_only: false,
            force: false,
            verify_after_copy: false,
            trust_store_copy: false,
            subset: None,
            work_dir: None,
            break_lock: false,
            ranged: RangedDownload::default(),
        }
    }
}

/// What happened to one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Copied,
    /// DST had a different object, replaced because of `force`.
    Replaced,
    /// Already at DST and verified.
    Skipped,
    /// `verify_only`: not at DST.
    Missing,
    /// DST holds something else under this name; left alone. The text says what differs.
    Differs(String),
    /// `subset`: no record of this shard passes the filter.
    Empty,
    Failed(String),
}

impl Outcome {
    pub fn is_problem(&self) -> bool {
        matches!(
            self,
            Outcome::Missing | Outcome::Differs(_) | Outcome::Failed(_)
        )
    }
}

#[derive(Debug, Clone)]
pub struct ShardReport {
    pub path: String,
    pub bytes: u64,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Default)]
pub struct MirrorReport {
    pub src: String,
    pub dst: String,
    pub shards: Vec<ShardReport>,
    /// `verify_only`: what is wrong with DST's manifest, if anything.
    pub manifest_problem: Option<String>,
    pub manifest_written: bool,
    /// Records in what DST now holds (the subset's count for a subset).
    pub records: u64,
    /// Bytes that passed through (copied, or read at DST to verify).
    pub bytes_moved: u64,
    pub secs: f64,
    /// Set when shards at a remote DST had to be read back and hashed because no checksum
    /// reported by the store could settle them: why, and how many (to be said once).
    pub read_back_note: Option<String>,
}

impl MirrorReport {
    pub fn problems(&self) -> usize {
        self.shards
            .iter()
            .filter(|s| s.outcome.is_problem())
            .count()
            + usize::from(self.manifest_problem.is_some())
    }
    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.shards.iter().filter(|s| f(&s.outcome)).count()
    }
}

/// Mirrors `src` to `dst`. Problems with single shards are in the report; an `Err` means the
/// mirror could not start (unreadable source manifest, bad options).
pub async fn mirror(
    src: &Location,
    dst: &Location,
    opts: &MirrorOptions,
    observer: Arc<dyn MirrorObserver>,
) -> Result<MirrorReport> {
    let progress = Arc::new(Progress::new(observer));
    if opts.verify_only && opts.subset.is_some() {
        return Err(Error::invalid(
            "--verify-only compares DST with SRC's manifest, which a subset does not have: \
             check a subset with `editshard verify DST`",
        ));
    }
    let (manifest, manifest_bytes) = load_manifest(src).await?;
    if opts.verify_only {
        return run_locked(src, dst, opts, manifest, manifest_bytes, progress).await;
    }
    let command = format!("mirror {} -> {}", src.display(), dst.display());
    let lock = DestLock::acquire(dst, &command, opts.break_lock).await?;
    // A killed run's temporary manifest (its shards' go as each is copied).
    shard::remove_stale_partials(dst, MANIFEST_NAME);
    let result = async {
        if !opts.force {
            check_dst_holds_only_this_dataset(dst, &manifest)?;
        }
        run_locked(src, dst, opts, manifest, manifest_bytes, progress).await
    }
    .await;
    lock.release_after(result).await
}

/// A local DST must be empty or hold only names from SRC's manifest (an earlier or
/// interrupted copy of this dataset, or a subset of it): files of another dataset or anything
/// else are not mixed with this one. (An S3 DST is not listed: nothing lists a bucket.)
fn check_dst_holds_only_this_dataset(dst: &Location, manifest: &Manifest) -> Result<()> {
    let Some(dir) = dst.is_local() else {
        return Ok(());
    };
    let names: std::collections::HashSet<&str> = manifest
        .shards
        .iter()
        .map(|s| ownership::top_level(&s.path))
        .chain([MANIFEST_NAME])
        .collect();
    let foreign = ownership::foreign_entries(dir, |n| names.contains(n))?;
    if foreign.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{} is not empty and holds files that are not part of the source dataset: {}. Mirror \
         into an empty or new directory (or an earlier copy of this dataset), or pass --force \
         to mirror into it anyway (files the source does not name are left as they are)",
        dst.display(),
        ownership::list_names(&foreign)
    ))
    .in_shard(dst.display()))
}

/// [`mirror`] once DST is locked (or needs no lock).
async fn run_locked(
    src: &Location,
    dst: &Location,
    opts: &MirrorOptions,
    manifest: Manifest,
    manifest_bytes: bytes::Bytes,
    progress: Arc<Progress>,
) -> Result<MirrorReport> {
    progress.set_total(manifest.bytes);
    let mut report = MirrorReport {
        src: src.display(),
        dst: dst.display(),
        ..MirrorReport::default()
    };
    if let Some(subset) = &opts.subset {
        run_subset(src, dst, opts, subset, manifest, &progress, &mut report).await?;
    } else {
        run_full(
            dst,
            src,
            opts,
            &manifest,
            &manifest_bytes,
            &progress,
            &mut report,
        )
        .await?;
    }
    report.bytes_moved = progress.total();
    report.secs = progress.elapsed_secs();
    report.read_back_note = progress.read_back_note();
    Ok(report)
}

async fn run_full(
    dst: &Location,
    src: &Location,
    opts: &MirrorOptions,
    manifest: &Manifest,
    manifest_bytes: &bytes::Bytes,
    progress: &Arc<Progress>,
    report: &mut MirrorReport,
) -> Result<()> {
    let mut results: Vec<(usize, ShardReport)> =
        futures_util::stream::iter(manifest.shards.iter().enumerate())
            .map(|(i, entry)| async move {
                let outcome = one_shard(src, dst, entry, opts, progress).await;
                log_outcome(progress, dst, &entry.path, entry.bytes, &outcome);
                let r = ShardReport {
                    path: entry.path.clone(),
                    bytes: entry.bytes,
                    outcome,
                };
                (i, r)
            })
            .buffer_unordered(opts.jobs.max(1))
            .collect()
            .await;
    results.sort_by_key(|(i, _)| *i);
    report.shards = results.into_iter().map(|(_, r)| r).collect();
    report.records = manifest.records;
    if opts.verify_only {
        report.manifest_problem = check_dst_manifest(dst, manifest).await;
    } else if report.problems() == 0 {
        // Last, and the source's exact bytes (fields this version does not know survive),
        // with the CRCs of shards whose entries lack one and whose bytes passed here.
        let bytes = with_learned_crcs(manifest, manifest_bytes, &progress.learned());
        dst.put(MANIFEST_NAME, bytes).await?;
        report.manifest_written = true;
    }
    Ok(())
}

/// `bytes` (the manifest `manifest` was parsed from) with `crc64nvme` added to each shard
/// entry that has none and whose CRC is in `learned` (by path); `bytes` as they are when
/// there is nothing to add. Only that field is added: every other byte of meaning, unknown
/// fields included, is kept.
fn with_learned_crcs(
    manifest: &Manifest,
    bytes: &bytes::Bytes,
    learned: &std::collections::HashMap<String, u64>,
) -> bytes::Bytes {
    let lacking = |s: &ShardEntry| s.crc64nvme.is_none() && learned.contains_key(&s.path);
    if !manifest.shards.iter().any(lacking) {
        return bytes.clone();
    }
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return bytes.clone();
    };
    let Some(shards) = doc.get_mut("shards").and_then(|s| s.as_array_mut()) else {
        return bytes.clone();
    };
    for entry in shards.iter_mut().filter_map(|e| e.as_object_mut()) {
        let path = entry
            .get("path")
            .and_then(|p| p.as_str())
            .map(str::to_string);
        if let Some(crc) = path.and_then(|p| learned.get(&p))
            && !entry.contains_key("crc64nvme")
        {
            entry.insert("crc64nvme".into(), crate::crc64::encode(*crc).into());
        }
    }
    match serde_json::to_vec_pretty(&doc) {
        Ok(mut out) => {
            out.push(b'\n');
            out.into()
        }
        Err(_) => bytes.clone(),
    }
}

/// The fate of one shard of a full mirror.
async fn one_shard(
    src: &Location,
    dst: &Location,
    entry: &ShardEntry,
    opts: &MirrorOptions,
    progress: &Arc<Progress>,
) -> Outcome {
    let want = Expected::from(entry);
    let rel = entry.path.as_str();
    let at = match shard::inspect(dst, rel, &want, progress).await {
        Ok(at) => at,
        Err(e) => return Outcome::Failed(format!("cannot check DST: {e}")),
    };
    let replacing = match &at {
        AtDest::Intact => return Outcome::Skipped,
        AtDest::Missing if opts.verify_only => return Outcome::Missing,
        AtDest::Missing => false,
        AtDest::Differs { .. } if opts.verify_only || !opts.force => {
            return Outcome::Differs(at.describe(&want));
        }
        AtDest::Differs { .. } => true,
    };
    let by_store = match shard::copy(src, dst, rel, &want, &opts.ranged, progress).await {
        Ok(by_store) => by_store,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    // A streamed copy was hashed as it passed; one the store made was not, and is checked by
    // the CRC the store reports (read back where it reports none).
    let after = if opts.verify_after_copy {
        AfterCopy::Read
    } else if by_store && !opts.trust_store_copy {
        AfterCopy::StoreChecksum
    } else {
        AfterCopy::Head
    };
    if let Some(problem) = check_copy(dst, rel, &want, after, progress).await {
        // A store's copy became visible whole: it goes again, so that no other bytes stay
        // under the shard's name (a streamed copy was checked before it was published).
        if by_store && dst.delete(rel).await.is_ok() {
            return Outcome::Failed(format!("{problem}; the copy was removed"));
        }
        return Outcome::Failed(problem);
    }
    if replacing {
        Outcome::Replaced
    } else {
        Outcome::Copied
    }
}

/// How a copy is checked once it is at DST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterCopy {
    /// One HEAD: the length, and the CRC-64/NVME where the store reports one.
    Head,
    /// The CRC-64/NVME the store reports, else read back and hashed.
    StoreChecksum,
    /// Read back and hashed, whatever the store reports (`verify_after_copy`).
    Read,
}

async fn check_copy(
    dst: &Location,
    rel: &str,
    want: &Expected,
    after: AfterCopy,
    progress: &Progress,
) -> Option<String> {
    let at = match after {
        AfterCopy::Read => shard::inspect_read(dst, rel, want, progress).await,
        AfterCopy::StoreChecksum => shard::inspect(dst, rel, want, progress).await,
        AfterCopy::Head => match dst.head_stored(rel).await {
            Ok(Some(stored)) if stored.bytes != want.bytes => Ok(AtDest::Differs {
                bytes: stored.bytes,
                sha256: None,
                crc64nvme: None,
            }),
            Ok(Some(stored)) => match (stored.crc64nvme, want.crc64nvme) {
                (Some(have), Some(crc)) if have != crc => Ok(AtDest::Differs {
                    bytes: stored.bytes,
                    sha256: None,
                    crc64nvme: Some(have),
                }),
                _ => Ok(AtDest::Intact),
            },
            Ok(None) => Ok(AtDest::Missing),
            Err(e) => Err(e),
        },
    };
    match at {
        Ok(AtDest::Intact) => None,
        Ok(other) => Some(format!(
            "after copying, the copy at DST is {}: the store holds other bytes than the \
             manifest's shard (a source damaged at rest, or a store that altered the copy); \
             check the source with `editshard verify SRC`",
            other.describe(want)
        )),
        Err(e) => Some(format!("cannot check the copy at DST: {e}")),
    }
}

/// `verify_only`: DST's manifest must list the same shards as SRC's.
async fn check_dst_manifest(dst: &Location, src: &Manifest) -> Option<String> {
    let theirs = match load_manifest(dst).await {
        Ok((m, _)) => m,
        Err(e) if crate::storage::is_not_found(&e) => {
            return Some(format!(
                "{} is missing: the mirror is unfinished; run the mirror again to complete it",
                dst.display_of(MANIFEST_NAME)
            ));
        }
        Err(e) => return Some(e.to_string()),
    };
    let key = |m: &Manifest| -> Vec<(String, u64, String)> {
        m.shards
            .iter()
            .map(|s| (s.path.clone(), s.bytes, s.sha256.to_ascii_lowercase()))
            .collect()
    };
    (key(&theirs) != key(src) || theirs.records != src.records).then(|| {
        format!(
            "{} lists other shards than the source's manifest: DST holds another version of \
             the dataset; run the mirror to update it",
            dst.display_of(MANIFEST_NAME)
        )
    })
}

fn log_outcome(progress: &Progress, dst: &Location, path: &str, bytes: u64, outcome: &Outcome) {
    progress.shard(dst.display_of(path), path, bytes, outcome);
}

async fn run_subset(
    src: &Location,
    dst: &Location,
    opts: &MirrorOptions,
    subset: &Subset,
    manifest: Manifest,
    progress: &Arc<Progress>,
    report: &mut MirrorReport,
) -> Result<()> {
    let range = subset.select(manifest.shards.len())?;
    let staging = opts.work_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("editshard-mirror-{}", std::process::id()))
    });
    std::fs::create_dir_all(&staging)
        .map_err(|e| Error::from(e).in_shard(staging.display().to_string()))?;
    let licence = manifest.licence.clone();
    let ds = Dataset::from_manifest(src.clone(), manifest, DatasetOptions::default());
    let ds = &ds;
    let staging_ref = &staging;
    let mut results: Vec<_> = futures_util::stream::iter(range)
        .map(|s| async move {
            let entry = &ds.manifest().shards[s];
            let (outcome, summary) =
                subset_shard(ds, dst, s, subset, opts, staging_ref, progress).await;
            log_outcome(progress, dst, &entry.path, entry.bytes, &outcome);
            (s, outcome, summary)
        })
        .buffer_unordered(opts.jobs.max(1))
        .collect()
        .await;
    results.sort_by_key(|(s, _, _)| *s);
    let _ = std::fs::remove_dir(&staging);
    let mut out = Manifest::new(licence);
    for (s, outcome, summary) in results {
        let path = ds.manifest().shards[s].path.clone();
        if let Some(summary) = &summary {
            out.push_shard(path.clone(), summary);
        }
        report.shards.push(ShardReport {
            path,
            bytes: summary.as_ref().map_or(0, |x| x.bytes),
            outcome,
        });
    }
    out.extra.insert(
        "subset".into(),
        serde_json::json!({ "of": src.display(), "filter": subset.describe() }),
    );
    report.records = out.records;
    if report.problems() == 0 {
        dst.put(MANIFEST_NAME, out.to_json()?.into()).await?;
        report.manifest_written = true;
    }
    Ok(())
}

/// Rewrites shard `s` into staging and publishes it unless DST already has those bytes.
async fn subset_shard(
    ds: &Dataset,
    dst: &Location,
    s: usize,
    subset: &Subset,
    opts: &MirrorOptions,
    staging: &std::path::Path,
    progress: &Arc<Progress>,
) -> (Outcome, Option<crate::shard::ShardSummary>) {
    let entry = &ds.manifest().shards[s];
    let file = subset::staging_path(staging, s);
    let result = async {
        let Some(summary) = subset::rewrite(ds, s, &subset.filter, &file).await? else {
            return Ok((Outcome::Empty, None));
        };
        progress.bytes(entry.bytes);
        let want = Expected {
            bytes: summary.bytes,
            sha256: crate::hex::hex(&summary.sha256),
            crc64nvme: Some(summary.crc64nvme),
        };
        let at = shard::inspect(dst, &entry.path, &want, progress).await?;
        let outcome = match at {
            AtDest::Intact => Outcome::Skipped,
            AtDest::Differs { .. } if !opts.force => Outcome::Differs(at.describe(&want)),
            _ => {
                dst.put_file(&entry.path, &file).await?;
                let after = if opts.verify_after_copy {
                    AfterCopy::Read
                } else {
                    AfterCopy::Head
                };
                match check_copy(dst, &entry.path, &want, after, progress).await {
                    Some(problem) => Outcome::Failed(problem),
                    None if matches!(at, AtDest::Differs { .. }) => Outcome::Replaced,
                    None => Outcome::Copied,
                }
            }
        };
        Ok::<_, Error>((outcome, Some(summary)))
    }
    .await;
    let _ = std::fs::remove_file(&file);
    match result {
        Ok(r) => r,
        Err(e) => (Outcome::Failed(e.to_string()), None),
    }
}
