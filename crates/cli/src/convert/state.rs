//! The work directory: what lets a killed conversion continue where it stopped.
//!
//! ```text
//! WORK/state.json              {"fingerprint", "next_row", "manifest"}: shards already in DEST
//! WORK/failures.partial.jsonl  {"row": i, "failure": {...}} for rows failed while fetching
//! WORK/cache/                  downloaded images not yet in a published shard (see cache.rs)
//! WORK/staging/                the shard being written
//! WORK/release/                the JSONL files, when the release is a URL
//! ```
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
    pub fn open(dir: &Path) -> Result<Work> {
        fs::create_dir_all(dir)
            .map_err(|e| Error::from(e).in_shard(format!("work directory {}", dir.display())))?;
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
        let path = self.path("state.json");
        match fs::metadata(&path) {
            Err(_) => return Ok(None),
            Ok(m) if m.len() > MAX_STATE_BYTES => {
                return Err(Error::limit("state.json is implausibly large")
                    .in_shard(path.display().to_string()));
            }
            Ok(_) => {}
        }
        let bytes = fs::read(&path)?;
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::malformed(format!(
                "{} is unreadable ({e}); delete the work directory to start over",
                path.display()
            ))
        })
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

    /// Deletes the work directory (after a complete run).
    pub fn remove(self) -> Result<()> {
        drop(self.failures);
        fs::remove_dir_all(&self.dir)
            .map_err(|e| Error::from(e).in_shard(self.dir.display().to_string()))
    }
}
