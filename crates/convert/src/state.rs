//! The work directory: what lets a killed conversion continue where it stopped.
//!
//! ```text
//! WORK/state.json              {"fingerprint", "next_row", "shards", "manifest"}: how far the
//!                              plan got, and the counts of the shards already in DEST
//! WORK/shards.jsonl            the entries of those shards, one a line, in order
//! WORK/failures.partial.jsonl  {"row": i, "failure": {...}} for rows failed while fetching
//! WORK/failures.sorted.jsonl   failures.jsonl before it is published (failures-sort/: its
//!                              sorted runs while it is written)
//! WORK/cache/                  downloaded images not yet in a published shard (see cache.rs)
//! WORK/staging/                the shard being written
//! WORK/release/                the JSONL files, when the release is a URL
//! WORK/editshard-work          the marker: this directory is a work directory, editshard's
//! ```
//!
//! The work directory is deleted whole when the conversion completes, so editshard uses only
//! a directory it made: new, empty, or holding its marker. A directory holding anything else
//! (`--work-dir ~/scratch`, or files someone put in `.editshard-work`) is refused, never
//! emptied; so is a symbolic link.
//!
//! The plan is deterministic, so "where it stopped" is one number: the index in the plan of
//! the first row of the unfinished shard. `state.json` is replaced atomically after each
//! shard is published, and only after the failures of the rows before that index are synced,
//! so the three always agree. Rows at or after `next_row` are simply done again: their
//! images come from the cache, and the shard they form is byte-identical.
//!
//! The shards' entries (each with its id filter) go to `shards.jsonl`, appended and synced
//! before `state.json` is replaced, and `state.json` says how many of its lines count: so
//! saving the state after each shard costs that shard's entry, not the whole manifest again
//! (which made a conversion quadratic in its shards). Lines past that count (a kill between
//! the two writes) are ignored, and the first save of a run rewrites the file with exactly
//! the entries of its state.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::failures::Failure;
use editshard::atomic::write_atomically;
use editshard::error::{Error, Result};
use editshard::manifest::Manifest;

/// Largest state or failures file read back.
const MAX_STATE_BYTES: u64 = 1 << 30;

/// The file that marks a directory as an editshard work directory.
pub const MARKER: &str = "editshard-work";

/// The published shards' manifest entries, one a line (see the module docs).
const SHARDS_LOG: &str = "shards.jsonl";

/// The failures recorded so far, one `{"row", "failure"}` a line.
const FAILURES_PARTIAL: &str = "failures.partial.jsonl";
/// `failures.partial.jsonl` being rewritten by a resumed run.
const FAILURES_REWRITE: &str = "failures.rewrite.partial";
/// `failures.jsonl` sorted, before it is published, and the runs sorting it spills.
pub const FAILURES_SORTED: &str = "failures.sorted.jsonl";
pub const FAILURES_SPILL: &str = "failures-sort";

/// What a conversion puts in its work directory, besides the marker: removed when it
/// completes (see the module docs). Each must be what editshard made, never a link.
const ENTRIES: [&str; 9] = [
    "state.json",
    SHARDS_LOG,
    FAILURES_PARTIAL,
    FAILURES_REWRITE,
    FAILURES_SORTED,
    FAILURES_SPILL,
    "cache",
    "staging",
    "release",
];

/// Whether `dir` is a work directory editshard made (it holds the marker).
pub fn is_work_dir(dir: &Path) -> bool {
    fs::symlink_metadata(dir.join(MARKER)).is_ok_and(|m| m.is_file())
}

/// The resume state saved in the work directory `dir`, if any.
pub fn read_state(dir: &Path) -> Result<Option<State>> {
    let path = dir.join("state.json");
    let Some(bytes) = read_bounded(&path)? else {
        return Ok(None);
    };
    let unreadable = |path: &Path, what: String| {
        Error::invalid(format!(
            "{} is unreadable ({what}): delete the work directory {} to start over",
            path.display(),
            dir.display()
        ))
    };
    let saved: SavedState =
        serde_json::from_slice(&bytes).map_err(|e| unreadable(&path, e.to_string()))?;
    let mut manifest = saved.manifest;
    // A state saved before the shards had a file of their own lists them in its manifest.
    if let Some(n) = saved.shards {
        let log = dir.join(SHARDS_LOG);
        let text = read_bounded(&log)?.unwrap_or_default();
        let mut lines = text.split(|&b| b == b'\n');
        manifest.shards = (0..n)
            .map(|i| {
                let line = lines.next().filter(|l| !l.is_empty()).ok_or_else(|| {
                    unreadable(&log, format!("it lists {i} shards, the state says {n}"))
                })?;
                serde_json::from_slice(line)
                    .map_err(|e| unreadable(&log, format!("line {}: {e}", i + 1)))
            })
            .collect::<Result<_>>()?;
    }
    Ok(Some(State {
        fingerprint: saved.fingerprint,
        next_row: saved.next_row,
        manifest,
    }))
}

/// A work file's bytes, `None` when it does not exist; refused over [`MAX_STATE_BYTES`].
fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>> {
    let shown = || path.display().to_string();
    match fs::metadata(path) {
        Err(_) => return Ok(None),
        Ok(m) if m.len() > MAX_STATE_BYTES => {
            return Err(Error::limit("the file is implausibly large").in_shard(shown()));
        }
        Ok(_) => {}
    }
    fs::read(path)
        .map(Some)
        .map_err(|e| Error::from(e).in_shard(shown()))
}

#[derive(Debug, Clone)]
pub struct State {
    pub fingerprint: String,
    pub next_row: u64,
    pub manifest: Manifest,
}

/// `state.json` as stored: the manifest without its shards, and how many lines of
/// `shards.jsonl` hold them.
#[derive(Serialize, Deserialize)]
struct SavedState {
    fingerprint: String,
    next_row: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shards: Option<usize>,
    manifest: Manifest,
}

/// The manifest's counts without its shard list, which `shards.jsonl` holds. (Every field is
/// named, rather than cloning the whole manifest and dropping its shards, because that clone
/// after every shard was itself quadratic.)
fn without_shards(m: &Manifest) -> Manifest {
    Manifest {
        format: m.format.clone(),
        format_version: m.format_version.clone(),
        records: m.records,
        bytes: m.bytes,
        licence: m.licence.clone(),
        kinds: m.kinds.clone(),
        edit_types: m.edit_types.clone(),
        categories: m.categories.clone(),
        images: m.images.clone(),
        shards: Vec::new(),
        sources: m.sources.clone(),
        extra: m.extra.clone(),
        filters_in: m.filters_in,
    }
}

#[derive(Serialize, Deserialize)]
struct PartialFailure {
    row: u64,
    failure: Failure,
}

pub struct Work {
    dir: PathBuf,
    failures: Option<File>,
    /// `shards.jsonl`, open for appending, and how many entries it holds; `None` until the
    /// first save of this run has rewritten it.
    shards_log: Option<(File, usize)>,
}

impl Work {
    /// Opens `dir` as the work directory: creates it (with its marker), or takes it if it is
    /// empty or already marked; refuses anything else (see the module docs).
    pub fn open(dir: &Path) -> Result<Work> {
        let shown = || format!("work directory {}", dir.display());
        match fs::symlink_metadata(dir) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::invalid(format!(
                    "the work directory {} is a symbolic link: refused (editshard writes its \
                     work only into a directory it made; name a real directory with \
                     --work-dir)",
                    dir.display()
                )));
            }
            Ok(m) if !m.is_dir() => {
                return Err(Error::invalid(format!(
                    "the work directory {} is not a directory",
                    dir.display()
                )));
            }
            Ok(_) if !is_work_dir(dir) => {
                let mut entries =
                    fs::read_dir(dir).map_err(|e| Error::from(e).in_shard(shown()))?;
                if entries.next().is_some() {
                    return Err(Error::invalid(format!(
                        "{} is not empty and is not an editshard work directory (it has no \
                         `{MARKER}` file): it is deleted when the conversion completes, so \
                         editshard uses only a new or empty directory; name another with \
                         --work-dir",
                        dir.display()
                    )));
                }
            }
            _ => {}
        }
        fs::create_dir_all(dir).map_err(|e| Error::from(e).in_shard(shown()))?;
        if !is_work_dir(dir) {
            // Created in place, not renamed: a kill right after creating it still leaves a
            // directory marked as ours (an empty marker marks it as well).
            let mut marker = editshard::atomic::create_new(&dir.join(MARKER))
                .map_err(|e| Error::from(e).in_shard(shown()))?;
            marker
                .write_all(
                    b"an editshard convert work directory: resume state and download cache, \
                      deleted when the conversion completes\n",
                )
                .map_err(|e| Error::from(e).in_shard(shown()))?;
        }
        for name in ENTRIES {
            let path = dir.join(name);
            if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::invalid(format!(
                    "{} is a symbolic link: refused (editshard writes its work only into \
                     what it made); remove it",
                    path.display()
                )));
            }
        }
        Ok(Work {
            dir: dir.to_path_buf(),
            failures: None,
            shards_log: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn load_state(&self) -> Result<Option<State>> {
        read_state(&self.dir)
    }

    /// Syncs the failures recorded so far and the shards' entries, then replaces
    /// `state.json`: the plan is done up to row `next_row`, and `manifest` lists what is
    /// published. Its shards extend those of the previous save (only the new ones are
    /// written).
    pub fn save_state(
        &mut self,
        fingerprint: &str,
        next_row: u64,
        manifest: &Manifest,
    ) -> Result<()> {
        if let Some(f) = &mut self.failures {
            f.flush()?;
            f.sync_data()?;
        }
        let shards = &manifest.shards;
        let entry_line = |e: &editshard::manifest::ShardEntry| {
            let mut line = serde_json::to_vec(e).expect("a shard entry serializes");
            line.push(b'\n');
            line
        };
        let log_path = self.path(SHARDS_LOG);
        let context = |e: std::io::Error| Error::from(e).in_shard(log_path.display().to_string());
        match &mut self.shards_log {
            Some((file, logged)) if *logged <= shards.len() => {
                let mut new = Vec::new();
                for e in &shards[*logged..] {
                    new.extend(entry_line(e));
                }
                if !new.is_empty() {
                    file.write_all(&new).map_err(context)?;
                    file.sync_data().map_err(context)?;
                }
                *logged = shards.len();
            }
            _ => {
                // This run's first save (or a state that is not a continuation): the file
                // holds exactly these entries, whatever a killed run appended after them.
                let all: Vec<u8> = shards.iter().flat_map(entry_line).collect();
                write_atomically(&log_path, &all)?;
                let file = OpenOptions::new()
                    .append(true)
                    .open(&log_path)
                    .map_err(context)?;
                self.shards_log = Some((file, shards.len()));
            }
        }
        let saved = SavedState {
            fingerprint: fingerprint.to_string(),
            next_row,
            shards: Some(shards.len()),
            manifest: without_shards(manifest),
        };
        let bytes = serde_json::to_vec(&saved).expect("state serializes");
        write_atomically(&self.path("state.json"), &bytes)
    }

    /// Keeps the failures of rows before `next_row` (later ones will be redone), rewriting
    /// the file line by line with just those, and opens it for appending.
    pub fn reopen_failures(&mut self, next_row: u64) -> Result<()> {
        let path = self.path(FAILURES_PARTIAL);
        let rewritten = self.path(FAILURES_REWRITE);
        let context =
            |p: &Path, e: std::io::Error| Error::from(e).in_shard(p.display().to_string());
        let mut out =
            std::io::BufWriter::new(File::create(&rewritten).map_err(|e| context(&rewritten, e))?);
        if let Ok(file) = File::open(&path) {
            for line in BufReader::new(file).lines() {
                // A line torn by a kill is the last one, and belongs to a row being redone.
                let Ok(line) = line else { break };
                let Ok(p) = serde_json::from_str::<PartialFailure>(&line) else {
                    break;
                };
                if p.row < next_row {
                    out.write_all(line.as_bytes())
                        .and_then(|()| out.write_all(b"\n"))
                        .map_err(|e| context(&rewritten, e))?;
                }
            }
        }
        let file = out
            .into_inner()
            .map_err(|e| context(&rewritten, e.into_error()))?;
        file.sync_all().map_err(|e| context(&rewritten, e))?;
        fs::rename(&rewritten, &path).map_err(|e| context(&path, e))?;
        self.failures = Some(OpenOptions::new().append(true).open(&path)?);
        Ok(())
    }

    /// The failures recorded so far, read back one at a time in the order they were
    /// recorded.
    pub fn recorded_failures(&mut self) -> Result<impl Iterator<Item = Result<Failure>> + use<>> {
        if let Some(f) = &mut self.failures {
            f.flush()?;
        }
        let path = self.path(FAILURES_PARTIAL);
        let lines = match File::open(&path) {
            Ok(f) => Some(BufReader::new(f).lines()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::from(e).in_shard(path.display().to_string())),
        };
        Ok(lines.into_iter().flatten().map(move |line| {
            let bad = |e: String| {
                Error::malformed(format!("{}: {e}", path.display()))
                    .in_shard(path.display().to_string())
            };
            let line = line.map_err(|e| bad(e.to_string()))?;
            serde_json::from_str::<PartialFailure>(&line)
                .map(|p| p.failure)
                .map_err(|e| bad(e.to_string()))
        }))
    }

    pub fn record_failure(&mut self, row: u64, failure: &Failure) -> Result<()> {
        let f = self
            .failures
            .as_mut()
            .ok_or_else(|| Error::bug("failures file not open"))?;
        let mut line = serde_json::to_vec(&PartialFailure {
            row,
            failure: failure.clone(),
        })
        .expect("serializes");
        line.push(b'\n');
        f.write_all(&line)?;
        Ok(())
    }

    /// Deletes what editshard put in the work directory (after a complete run), then the
    /// directory if nothing else is left in it. Anything else found there is not ours: it
    /// is left, with a warning, never deleted.
    pub fn remove(self) -> Result<()> {
        drop(self.failures);
        drop(self.shards_log);
        let context =
            |p: &Path, e: std::io::Error| Error::from(e).in_shard(p.display().to_string());
        for name in ENTRIES {
            let path = self.dir.join(name);
            let removed = match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => fs::remove_dir_all(&path),
                Ok(_) => fs::remove_file(&path),
                Err(_) => continue,
            };
            removed.map_err(|e| context(&path, e))?;
        }
        // Temporary files of ours (`state.json.partial`, ...).
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let ours = editshard::atomic::temporary_of(&name)
                    .is_some_and(|(base, _)| ENTRIES.contains(&base));
                if ours {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        fs::remove_file(self.dir.join(MARKER)).map_err(|e| context(&self.dir, e))?;
        if fs::remove_dir(&self.dir).is_err() {
            log::warn!(
                "{} holds files editshard did not put there: left as it is",
                self.dir.display()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use editshard::manifest::{IdFilter, ShardEntry};

    fn entry(i: usize) -> ShardEntry {
        let ids: Vec<String> = (0..200)
            .map(|r| format!("sft/images/{i}-{r}.png"))
            .collect();
        ShardEntry {
            path: format!("shard-{i:05}.esd"),
            bytes: 1000 + i as u64,
            records: 200,
            footer_offset: 900,
            footer_length: 100,
            sha256: "ab".repeat(32),
            crc64nvme: None,
            id_filter: IdFilter::build(ids.iter().map(String::as_str)),
        }
    }

    fn manifest(shards: usize) -> Manifest {
        let mut m = Manifest::new(Some("licence".into()));
        m.records = 200 * shards as u64;
        m.kinds.insert("sft".into(), m.records);
        m.shards = (0..shards).map(entry).collect();
        m
    }

    #[test]
    fn the_state_file_stays_the_same_size_however_many_shards_are_published() {
        let dir = tempfile::tempdir().unwrap();
        let mut work = Work::open(&dir.path().join("w")).unwrap();
        let mut sizes = Vec::new();
        for n in 1..=60 {
            let m = manifest(n);
            work.save_state("fp", n as u64 * 200, &m).unwrap();
            sizes.push(fs::metadata(work.path("state.json")).unwrap().len());
            let back = read_state(work.dir()).unwrap().unwrap();
            assert_eq!(back.manifest, m, "after {n} shards");
            assert_eq!(
                (back.fingerprint.as_str(), back.next_row),
                ("fp", n as u64 * 200)
            );
        }
        // Only the counts' digits change: the shard entries (id filters) are not in it.
        assert!(
            sizes[59] < sizes[0] + 16,
            "state.json grew from {} to {} bytes",
            sizes[0],
            sizes[59]
        );
        let log = fs::read_to_string(work.path(SHARDS_LOG)).unwrap();
        assert_eq!(log.lines().count(), 60);
    }

    #[test]
    fn entries_appended_by_a_killed_run_after_its_last_state_are_ignored_and_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let wdir = dir.path().join("w");
        let mut work = Work::open(&wdir).unwrap();
        work.save_state("fp", 400, &manifest(2)).unwrap();
        // Killed after appending shard 3's entry (torn), before state.json said so.
        let mut f = OpenOptions::new()
            .append(true)
            .open(work.path(SHARDS_LOG))
            .unwrap();
        let torn = serde_json::to_string(&entry(2)).unwrap();
        f.write_all(&torn.as_bytes()[..torn.len() / 2]).unwrap();
        drop((f, work));
        let state = read_state(&wdir).unwrap().unwrap();
        assert_eq!(state.manifest, manifest(2));
        // The next run continues from that state: its first save rewrites the file.
        let mut work = Work::open(&wdir).unwrap();
        work.save_state("fp", 600, &manifest(3)).unwrap();
        assert_eq!(read_state(&wdir).unwrap().unwrap().manifest, manifest(3));
        let log = fs::read_to_string(wdir.join(SHARDS_LOG)).unwrap();
        assert_eq!(log.lines().count(), 3, "{log}");
    }

    #[test]
    fn a_state_missing_its_shard_entries_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let wdir = dir.path().join("w");
        let mut work = Work::open(&wdir).unwrap();
        work.save_state("fp", 400, &manifest(2)).unwrap();
        fs::write(wdir.join(SHARDS_LOG), b"").unwrap();
        let e = read_state(&wdir).unwrap_err().to_string();
        assert!(
            e.contains("shards.jsonl") && e.contains("delete the work directory"),
            "{e}"
        );
    }

    #[test]
    fn a_state_saved_with_its_shards_inside_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let wdir = dir.path().join("w");
        Work::open(&wdir).unwrap();
        let old =
            serde_json::json!({"fingerprint": "fp", "next_row": 400, "manifest": manifest(2)});
        fs::write(wdir.join("state.json"), serde_json::to_vec(&old).unwrap()).unwrap();
        assert_eq!(read_state(&wdir).unwrap().unwrap().manifest, manifest(2));
    }
}
