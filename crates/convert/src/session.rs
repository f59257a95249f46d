//! One conversion session: what every conversion does around its driver, whichever dataset
//! the rows come from.
//!
//! ```text
//!  lock(DEST)  ->  Target::open  ->  Target::complete?  ->  Session::start
//!                  (what DEST holds;   (DEST holds this      (work directory state,
//!                   leftovers, owner)   conversion, finished) resume point, writer)
//!
//!  driver: rows -> records  --append(ordinal, record)-->  Session  --publishes shards-->  DEST
//!                           --fail(ordinal, failure)--->           (state saved after each)
//!
//!  Session::end  ->  publish(failures.jsonl, then manifest.json: DEST is a dataset from then on)
//! ```
//!
//! A driver ([`crate::pico`], [`crate::hub`]) only plans its rows, turns them into records and
//! numbers them (its *ordinals*: the order it hands them over in, the same in every run). The
//! session keeps the destination's lock, recognises a finished dataset of the same conversion
//! (its [`Fingerprint`]) or refuses another one, resumes a killed run from its work directory,
//! writes records in order into staged shards, publishes each finished shard to DEST and saves
//! the resume state after it, lists every row that did not become a record in
//! `failures.jsonl`, and writes the manifest last. `--retry-failed` converts only the failed
//! rows of a finished dataset into `retry-N/` shards and absorbs them into its manifest.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::failures::{self, FAILURES_NAME, Failure, Tally};
use crate::failures_file;
use crate::kill::kill_point;
use crate::ownership;
use crate::part_dir;
use crate::state::{FAILURES_SORTED, FAILURES_SPILL, Work};
use editshard::error::{Error, ErrorKind, Result};
use editshard::lock::DestLock;
use editshard::manifest::{MANIFEST_NAME, Manifest};
use editshard::read::find_manifest;
use editshard::record::Record;
use editshard::safe_dir::SafeDir;
use editshard::shard::WriterOptions;
use editshard::storage::{Location, StorageOptions};
use editshard::write::DatasetWriter;

/// How a conversion ended.
pub enum Outcome<S> {
    /// The conversion ran (from the start, or resuming) and finished: the driver's summary.
    Converted(S),
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

/// What a conversion is: `common` covers what every part of one conversion shares (checked
/// by `merge`, and against a finished dataset at DEST), `run` adds the part and the retried
/// rows (checked when resuming from the work directory). `inputs` names what `common` was
/// made of, in order: the manifest keeps a digest of each, so a refusal can say what differs.
#[derive(Debug, Clone)]
pub struct Fingerprint {
    pub common: String,
    pub run: String,
    pub inputs: Vec<(&'static str, String)>,
}

/// How the session writes shards.
#[derive(Debug, Clone)]
pub struct ShardSettings {
    pub shard_size: u64,
    /// The minor format version to write (`--format-version 1.N`).
    pub format_minor: u16,
    pub licence: Option<String>,
}

/// Locks the root a conversion writes to (DEST, or its part directory): one writer per
/// destination. Release it with [`DestLock::release_after`] whatever the outcome.
pub async fn lock(
    out: &str,
    storage: &StorageOptions,
    part: Option<(u32, u32)>,
    break_lock: bool,
) -> Result<(Location, DestLock)> {
    let root = dest_root(out, storage, part)?;
    let lock = DestLock::acquire(&root, &format!("convert --out {out}"), break_lock).await?;
    Ok((root, lock))
}

/// Where the dataset goes (DEST, or its part directory) and the dataset already there, if any.
pub struct Target {
    pub root: Location,
    pub existing: Option<Manifest>,
    pub work_dir: PathBuf,
    /// The work directory was there before this run (a killed run's, or `--work-dir`).
    work_dir_existed: bool,
}

impl Target {
    /// What `root` (locked by this run) already holds. A local root without a manifest must
    /// be empty or hold only what a killed run of a conversion left ([`ownership`]).
    /// `--retry-failed` needs a finished dataset.
    pub async fn open(
        root: Location,
        work_dir_option: Option<&Path>,
        retry_failed: bool,
    ) -> Result<Target> {
        let work_dir = work_dir(work_dir_option, &root);
        let work_dir_existed = work_dir.exists();
        if let Some(dir) = root.is_local() {
            // This run holds the lock: a temporary file of ours left here is a killed run's.
            ownership::remove_leftovers(dir)?;
        }
        let existing = find_manifest(&root).await?;
        if existing.is_none()
            && let Some(dir) = root.is_local()
        {
            ownership::check(dir, &work_dir)?;
        }
        if existing.is_none() && retry_failed {
            return Err(Error::invalid(format!(
                "--retry-failed: {} holds no finished dataset to complete (no {MANIFEST_NAME})",
                root.display()
            )));
        }
        Ok(Target {
            root,
            existing,
            work_dir,
            work_dir_existed,
        })
    }

    /// Opens (or creates) the work directory.
    pub fn work(&self) -> Result<Work> {
        Work::open(&self.work_dir)
    }

    /// After a run that failed before converting anything: a wrong argument or input must
    /// not leave a work directory behind that this run created (DEST itself, if this run
    /// created it and left it empty, goes with the lock). Best effort: the error is what
    /// matters.
    pub fn discard_new_work_dir(&self) {
        if !self.work_dir_existed {
            let _ = std::fs::remove_dir_all(&self.work_dir);
        }
    }

    /// The rows of the finished dataset's `failures.jsonl`, for `--retry-failed`.
    pub async fn failures_file(&self) -> Result<Bytes> {
        self.root
            .get_max(FAILURES_NAME, failures::MAX_FAILURES_BYTES as u64)
            .await
    }

    /// DEST holds a finished dataset and no `--retry-failed` was given: if it is this
    /// conversion (same `common` fingerprint), it is complete; the work directory goes (it
    /// was created just now, or left behind by a run killed between writing the manifest and
    /// removing it) unless it belongs to another conversion. Otherwise the run is refused,
    /// naming what differs.
    pub async fn complete(
        &self,
        existing: &Manifest,
        fp: &Fingerprint,
        work: Work,
    ) -> Result<Complete> {
        let info = existing.extra.get("convert");
        let stored = info
            .and_then(|c| c.get("fingerprint"))
            .and_then(|f| f.as_str());
        if stored != Some(fp.common.as_str()) {
            if !self.work_dir_existed {
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
                    let names: Vec<String> = fp
                        .inputs
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
                self.root.display()
            )));
        }
        let ours = work.load_state()?.is_none_or(|s| s.fingerprint == fp.run);
        let removed_work_dir = if ours {
            let dir = work.dir().to_path_buf();
            work.remove()?;
            self.work_dir_existed.then_some(dir)
        } else {
            log::warn!(
                "{} belongs to another conversion: left as it is",
                work.dir().display()
            );
            None
        };
        Ok(Complete {
            dest: self.root.display(),
            records: existing.records,
            shards: existing.shards.len() as u64,
            failed: failures::count_in(&self.root).await,
            removed_work_dir,
        })
    }
}

/// Records in, shards out: the writing stage of a conversion, on a blocking thread.
pub struct Session {
    work: Work,
    writer: DatasetWriter,
    publisher: Publisher,
    run: String,
    /// The ordinal of the record appended last: the records of a split session share one,
    /// and resuming from it would write the earlier ones again.
    last_ordinal: Option<u64>,
    resumed_at: u64,
}

/// What [`Session::append`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The writer took it (false: it refused it, and it is listed as a failure).
    pub written: bool,
    /// A shard was published and the resume state saved: every ordinal before this one is
    /// final.
    pub published: bool,
}

impl Session {
    /// Checks the work directory's resume state against `fp.run` (another conversion's is
    /// refused), and opens the writer after the shards already published. Without a state the
    /// conversion starts at `first_row`. A retry writes under `retry-N/`.
    pub fn start(
        target: &Target,
        mut work: Work,
        fp: &Fingerprint,
        settings: &ShardSettings,
        first_row: u64,
    ) -> Result<Session> {
        let state = work.load_state()?;
        if let Some(s) = &state
            && s.fingerprint != fp.run
        {
            return Err(Error::invalid(format!(
                "the work directory {} belongs to a different conversion (the options or the \
                 input changed since it was interrupted): re-run the original command to \
                 finish it, or delete the directory to start over",
                work.dir().display()
            )));
        }
        let (next_row, base) = match state {
            Some(s) => (s.next_row, s.manifest),
            None => (first_row, Manifest::new(settings.licence.clone())),
        };
        let prefix = match &target.existing {
            Some(m) => format!("retry-{}/shard-", retry_number(m)),
            None => "shard-".to_string(),
        };
        let writer = DatasetWriter::create(&work.path("staging"))?
            .target_shard_bytes(settings.shard_size)
            .licence(settings.licence.clone())
            // Drivers build images with `Image::from_bytes`, which hashed them a moment ago;
            // hashing again in the writer would be a third SHA-256 pass over every byte (the
            // shard hash is the second).
            .writer_options(WriterOptions {
                verify_hashes: false,
                minor_version: settings.format_minor,
                ..WriterOptions::default()
            })
            .shard_prefix(prefix)
            .resume_after(base);
        work.reopen_failures(next_row)?;
        let publisher = Publisher {
            root: target.root.clone(),
            staging: work.path("staging"),
            rt: tokio::runtime::Handle::current(),
        };
        Ok(Session {
            work,
            writer,
            publisher,
            run: fp.run.clone(),
            last_ordinal: None,
            resumed_at: next_row,
        })
    }

    /// The first ordinal not yet in a published shard: the driver starts from it.
    pub fn next_row(&self) -> u64 {
        self.resumed_at
    }

    /// Writes `record` (its driver's ordinal `ordinal`). A record the writer refuses (an id
    /// too long or already written, metadata over the limit) becomes the failure `rejected`
    /// makes of the error; any other error ends the conversion. When the record opened a new
    /// shard, the finished one is published and the resume state saved.
    pub fn append(
        &mut self,
        ordinal: u64,
        record: &Record,
        rejected: impl FnOnce(&Error) -> Failure,
    ) -> Result<Appended> {
        let before = self.writer.manifest().shards.len();
        let written = match self.writer.append(record) {
            Ok(()) => {
                kill_point("appended");
                true
            }
            Err(e) if matches!(e.kind(), ErrorKind::Rejected(_)) => {
                self.fail(ordinal, rejected(&e))?;
                false
            }
            Err(e) => return Err(e),
        };
        let shares = self.last_ordinal == Some(ordinal);
        self.last_ordinal = Some(ordinal);
        let published = self.writer.manifest().shards.len() > before;
        if published {
            // The record just appended opened a new shard: everything before it is final.
            self.publisher.publish_new(self.writer.manifest(), before)?;
            kill_point("published");
            // With a shared ordinal the last saved state stays: a resume from it writes the
            // same shard again (conversion is deterministic).
            if !shares {
                self.work
                    .save_state(&self.run, ordinal, self.writer.manifest())?;
                kill_point("saved");
            }
        }
        Ok(Appended { written, published })
    }

    /// Lists a row (ordinal `ordinal`) that did not become a record: recorded in the work
    /// directory at once, never held in memory.
    pub fn fail(&mut self, ordinal: u64, failure: Failure) -> Result<()> {
        self.work.record_failure(ordinal, &failure)
    }

    /// Finishes the last shard, publishes it and saves the state as done.
    pub fn end(mut self) -> Result<Ended> {
        let before = self.writer.manifest().shards.len();
        self.writer.finish_shard()?;
        self.publisher.publish_new(self.writer.manifest(), before)?;
        let manifest = self.writer.manifest().clone();
        self.work.save_state(&self.run, u64::MAX, &manifest)?;
        Ok(Ended {
            work: self.work,
            manifest,
            resumed_at: self.resumed_at,
        })
    }
}

/// A session whose shards are all published: what [`publish`] makes a dataset of.
pub struct Ended {
    work: Work,
    /// The shards this conversion wrote (resumed runs included).
    pub manifest: Manifest,
    /// Where this run started (0 unless it resumed).
    pub resumed_at: u64,
}

/// What [`publish`] wrote.
pub struct Published {
    pub manifest: Manifest,
    /// What `failures.jsonl` lists.
    pub failures: Tally,
    pub resumed_at: u64,
}

/// Writes `failures.jsonl` (the session's failures, read back from the work directory and
/// sorted in bounded memory, and `planned`, the rows the driver refused before converting,
/// sorted) and then the manifest, with the conversion's record under `convert`
/// (fingerprint, input digests, part, and the driver's `details`): DEST is a dataset only from
/// then on. A retry's shards are absorbed into the dataset's manifest. Removes the work
/// directory last.
pub async fn publish(
    target: &Target,
    ended: Ended,
    planned: &[Failure],
    fp: &Fingerprint,
    part: Option<(u32, u32)>,
    details: serde_json::Map<String, serde_json::Value>,
) -> Result<Published> {
    let Ended {
        mut work,
        manifest: written,
        resumed_at,
    } = ended;
    let recorded = work.recorded_failures()?;
    let (sorted, spill) = (work.path(FAILURES_SORTED), work.path(FAILURES_SPILL));
    let planned = planned.to_vec();
    let (tally, sorted) = tokio::task::spawn_blocking(move || {
        failures_file::write_sorted(&planned, recorded, &spill, &sorted).map(|t| (t, sorted))
    })
    .await
    .map_err(|e| Error::bug(format!("writing {FAILURES_NAME} failed: {e}")))??;
    let root = &target.root;
    root.put_file(FAILURES_NAME, &sorted).await?;
    kill_point("finishing");
    let mut manifest = match target.existing.clone() {
        Some(mut m) => {
            m.absorb(&written);
            m
        }
        None => written,
    };
    let mut info = serde_json::Map::new();
    info.insert("fingerprint".into(), fp.common.clone().into());
    let digests: serde_json::Map<String, serde_json::Value> = fp
        .inputs
        .iter()
        .map(|(name, value)| (name.to_string(), input_digest(value).into()))
        .collect();
    info.insert("inputs".into(), digests.into());
    if let Some((i, n)) = part {
        info.insert("part".into(), i.into());
        info.insert("parts".into(), n.into());
    }
    info.extend(details);
    manifest.extra.insert("convert".into(), info.into());
    root.put(MANIFEST_NAME, Bytes::from(manifest.to_json()?))
        .await?;
    kill_point("manifest");
    work.remove()?;
    Ok(Published {
        manifest,
        failures: tally,
        resumed_at,
    })
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

/// At most 120 characters of an input's value, for messages.
fn shorten(value: &str) -> String {
    if value.chars().count() <= 120 {
        value.to_string()
    } else {
        format!("{}...", value.chars().take(117).collect::<String>())
    }
}

/// Where a conversion writes: DEST (`out`), or its part directory with `--part I/N`.
pub fn dest_root(
    out: &str,
    storage: &StorageOptions,
    part: Option<(u32, u32)>,
) -> Result<Location> {
    let dest = Location::parse(out, storage)?;
    match part {
        Some((i, n)) => {
            if let Some(root) = dest.is_local() {
                // The part directory is made (or entered) here without following a link:
                // a link planted at its name would otherwise take the whole part elsewhere.
                std::fs::create_dir_all(root).map_err(|e| Error::from(e).in_shard(out))?;
                editshard::safe_dir::SafeDir::create_inside(root, Path::new(&part_dir(i, n)))?;
            }
            dest.child(&part_dir(i, n))
        }
        None => Ok(dest),
    }
}

/// The work directory of a conversion into `root`: `--work-dir`, else `root/.editshard-work`
/// for a local `root`, else a directory under the system temp dir named after `root`.
pub fn work_dir(work_dir: Option<&Path>, root: &Location) -> PathBuf {
    match (work_dir, root.is_local()) {
        (Some(w), _) => w.to_path_buf(),
        (None, Some(dir)) => dir.join(".editshard-work"),
        (None, None) => {
            let h = editshard::hex::hex(&Sha256::digest(root.display().as_bytes()));
            std::env::temp_dir().join(format!("editshard-work-{}", &h[..16]))
        }
    }
}

/// What the manifest keeps of each input: a digest, so that it names what changed without
/// publishing local paths.
pub fn input_digest(value: &str) -> String {
    editshard::hex::hex(&Sha256::digest(value.as_bytes()))[..16].to_string()
}

/// Moves finished shards from the staging directory to the destination.
pub(crate) struct Publisher {
    root: Location,
    staging: PathBuf,
    /// The runtime the conversion runs on; the publisher runs on one of its blocking threads.
    rt: tokio::runtime::Handle,
}

impl Publisher {
    fn publish_new(&mut self, manifest: &Manifest, from: usize) -> Result<()> {
        for shard in &manifest.shards[from..] {
            let local = self.staging.join(&shard.path);
            match self.root.is_local() {
                Some(dir) => {
                    // Its directory (`retry-N/`, or DEST itself) entered without following a
                    // link planted in DEST: nothing is moved outside it.
                    let (sub, name) = editshard::safe_dir::split(&shard.path);
                    let parent = SafeDir::create_inside(dir, Path::new(sub))?;
                    // Same file system (the work directory is inside DEST): a rename.
                    if parent.rename_into(&local, name.as_ref()).is_err() {
                        self.rt.block_on(self.root.put_file(&shard.path, &local))?;
                        std::fs::remove_file(&local)?;
                    }
                }
                None => {
                    self.rt.block_on(self.root.put_file(&shard.path, &local))?;
                    std::fs::remove_file(&local)?;
                }
            }
        }
        Ok(())
    }
}
