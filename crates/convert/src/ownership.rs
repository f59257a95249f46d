//! Whether a local DEST without a manifest is this conversion's to write: empty, or holding
//! only what an interrupted run of it left (its work directory, shards, and `failures.jsonl`
//! when killed while finishing). Anything else is someone else's, and is refused rather than
//! overwritten. (Whether the interrupted run was this same conversion is the resume state's
//! fingerprint check, in `run::prepare`.)

use std::collections::HashSet;
use std::path::Path;

use super::failures::FAILURES_NAME;
use super::state::{is_work_dir, read_state};
use editshard::error::{Error, Result};
use editshard::manifest::MANIFEST_NAME;
use editshard::ownership::{foreign_entries, list_names, top_level};

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

/// Removes the temporary files a killed run of convert left in `root` (and its `retry-N/`
/// directories): `manifest.json`, `failures.jsonl` or a shard, written under
/// `NAME.partial` or `NAME.<pid>-<n>.partial`. Called with the destination's lock held, so
/// no other run can be writing them. Anything else is left for [`check`] to judge.
pub fn remove_leftovers(root: &Path) -> Result<()> {
    let mut dirs = vec![root.to_path_buf()];
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::from(e).in_shard(root.display().to_string())),
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("retry-") && e.file_type().is_ok_and(|t| t.is_dir()) {
            dirs.push(e.path());
        }
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let is_file = e.file_type().is_ok_and(|t| t.is_file());
            if is_file && leftover_of_ours(&name) {
                log::info!("removing {}, left by a killed run", e.path().display());
                std::fs::remove_file(e.path())
                    .map_err(|err| Error::from(err).in_shard(e.path().display().to_string()))?;
            }
        }
    }
    Ok(())
}

/// `NAME.partial` or `NAME.<pid>-<n>.partial` where NAME is a file convert writes.
fn leftover_of_ours(name: &str) -> bool {
    editshard::atomic::temporary_of(name).is_some_and(|(base, _)| {
        base == MANIFEST_NAME
            || base == FAILURES_NAME
            || (base.starts_with("shard-") && base.ends_with(".esd"))
    })
}

#[cfg(test)]
mod tests {
    use super::leftover_of_ours;

    #[test]
    fn leftovers_are_our_names_only() {
        for yes in [
            "manifest.json.9767-1.partial",
            "failures.jsonl.12-0.partial",
            "shard-00003.esd.partial",
            "shard-00003.esd.4-2.partial",
        ] {
            assert!(leftover_of_ours(yes), "{yes}");
        }
        for no in [
            "manifest.json",
            "photo.jpg.partial",
            "manifest.json.x-1.partial",
            "manifest.json.1-.partial",
            "notes.partial",
            "shard-00003.esd.partial.txt",
        ] {
            assert!(!leftover_of_ours(no), "{no}");
        }
    }
}
