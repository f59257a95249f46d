//! The work directory: what lets a killed conversion continue where it stopped.
//!
//! ```text
//! WORK/state.json              {"fingerprint", "next_row", "manifest"}: shards already in DEST
//! WORK/failures.partial.jsonl  {"row": i, "failure": {...}} for rows failed while fetching
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

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::failures::Failure;
use crate::atomic::write_atomically;
use crate::error::{Error, Result};
use crate::manifest::Manifest;

/// Largest state or failures file read back.
const MAX_STATE_BYTES: u64 = 1 << 30;

/// The file that marks a directory as an editshard work directory.
pub const MARKER: &str = "editshard-work";

/// What a conversion puts in its work directory, besides the marker: removed when it
/// completes (see the module docs). Each must be what editshard made, never a link.
const ENTRIES: [&str; 5] = [
    "state.json",
    "failures.partial.jsonl",
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
    let shown = || path.display().to_string();
    match fs::metadata(&path) {
        Err(_) => return Ok(None),
        Ok(m) if m.len() > MAX_STATE_BYTES => {
            return Err(Error::limit("state.json is implausibly large").in_shard(shown()));
        }
        Ok(_) => {}
    }
    let bytes = fs::read(&path).map_err(|e| Error::from(e).in_shard(shown()))?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        Error::invalid(format!(
            "{} is unreadable ({e}): delete the work directory {} to start over",
            path.display(),
            dir.display()
        ))
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub fingerprint: String,
    pub next_row: u64,
    pub manifest: Manifest,
}

#[derive(Serialize, Deserialize)]
struct PartialFailure {
    row: u64,
    failure: Failure,
}

pub struct Work {
    dir: PathBuf,
    failures: Option<File>,
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
            let mut marker = crate::atomic::create_new(&dir.join(MARKER))
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

    /// Syncs the failures recorded so far, then replaces `state.json`.
    pub fn save_state(&mut self, state: &State) -> Result<()> {
        if let Some(f) = &mut self.failures {
            f.flush()?;
            f.sync_data()?;
        }
        let bytes = serde_json::to_vec(state).expect("state serializes");
        write_atomically(&self.path("state.json"), &bytes)
    }

    /// Reads back the failures of rows before `next_row` (later ones will be redone), rewrites
    /// the file with just those, and opens it for appending.
    pub fn reopen_failures(&mut self, next_row: u64) -> Result<Vec<Failure>> {
        let path = self.path("failures.partial.jsonl");
        let mut kept = Vec::new();
        if let Ok(file) = File::open(&path) {
            for line in BufReader::new(file).lines() {
                // A line torn by a kill is the last one, and belongs to a row being redone.
                let Ok(line) = line else { break };
                let Ok(p) = serde_json::from_str::<PartialFailure>(&line) else {
                    break;
                };
                if p.row < next_row {
                    kept.push(p);
                }
            }
        }
        let mut out = Vec::new();
        for p in &kept {
            serde_json::to_writer(&mut out, p).expect("serializes");
            out.push(b'\n');
        }
        write_atomically(&path, &out)?;
        self.failures = Some(OpenOptions::new().append(true).open(&path)?);
        Ok(kept.into_iter().map(|p| p.failure).collect())
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
                let ours = crate::atomic::temporary_of(&name)
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
