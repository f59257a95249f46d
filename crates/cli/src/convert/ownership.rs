//! Whether a local DEST without a manifest is this conversion's to write: empty, or holding
//! only what an interrupted run of it left (its work directory, shards, and `failures.jsonl`
//! when killed while finishing). Anything else is someone else's, and is refused rather than
//! overwritten. (Whether the interrupted run was this same conversion is the resume state's
//! fingerprint check, in `run::prepare`.)

use std::collections::HashSet;
use std::path::Path;

use super::failures::FAILURES_NAME;
use super::state::{is_work_dir, read_state};
use crate::error::{Error, Result};
use crate::ownership::{foreign_entries, list_names, top_level};

/// Refuses `root` if it holds files this conversion did not write. `work_dir` is the
/// conversion's work directory (inside `root` by default): the resume state there says which
/// shards (and, after a run killed while finishing, `failures.jsonl`) are ours.
pub fn check(root: &Path, work_dir: &Path) -> Result<()> {
    let mut ours: HashSet<String> = HashSet::new();
    if let Ok(inside) = work_dir.strip_prefix(root)
        && let Some(first) = inside.components().next()
    {
        ours.insert(first.as_os_str().to_string_lossy().into_owned());
    }
    // An interrupted run: its work directory (marked as editshard's) exists. Killed just
    // after publishing a shard, before its resume state said so, it left a shard the state
    // does not list yet (the re-run writes the same bytes there again), so shard names count
    // as ours then.
    let interrupted = is_work_dir(work_dir);
    if interrupted {
        ours.insert(FAILURES_NAME.to_string());
    }
    if let Some(state) = read_state(work_dir)? {
        ours.extend(
            state
                .manifest
                .shards
                .iter()
                .map(|s| top_level(&s.path).to_string()),
        );
    }
    let shard_name = |n: &str| n.starts_with("shard-") && n.ends_with(".esd");
    let foreign = foreign_entries(root, |n| ours.contains(n) || (interrupted && shard_name(n)))?;
    if foreign.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{} is not empty and holds files this conversion did not write: {}. convert writes \
         only into an empty or new directory, a dataset it made (with its manifest.json), or \
         one it was interrupted in (with its work directory): choose another --out, or move \
         those files away",
        root.display(),
        list_names(&foreign)
    ))
    .in_shard(root.display().to_string()))
}
