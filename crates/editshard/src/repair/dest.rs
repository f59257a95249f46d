//! What a repair's destination may hold: nothing (a new or empty directory), or what an
//! interrupted repair left there. A repair marks the destination as its own
//! ([`MARKER_NAME`], created before anything else is written, removed once the manifest and
//! report are written), so that a repair killed at any point (even by `kill -9`) can be run
//! again: the new run, holding the destination's lock, removes what the marked destination
//! holds of a repair's own files (shards, manifest, report, their temporary files) and starts
//! over. Anything else there is someone else's, and is refused rather than touched.

use std::io::Write;
use std::path::Path;

use super::REPORT_NAME;
use crate::atomic::{create_new, sync_dir, temporary_of};
use crate::error::{Error, Result};
use crate::lock::LOCK_NAME;
use crate::manifest::MANIFEST_NAME;
use crate::ownership::{foreign_entries, list_names};

/// The marker of a repair in progress, at the destination's root.
pub const MARKER_NAME: &str = ".editshard-repair";

/// Names a repair writes at its destination's root.
fn ours(name: &str) -> bool {
    name == MARKER_NAME
        || name == MANIFEST_NAME
        || name == REPORT_NAME
        || (name.starts_with("shard-") && name.ends_with(".esd"))
}

/// Makes `dest` ready for a repair; called with its lock held. A destination holding anything
/// but what an interrupted repair left is refused; what an interrupted repair left is removed;
/// the destination is marked as this repair's.
pub fn prepare(dest: &Path) -> Result<()> {
    let marker = dest.join(MARKER_NAME);
    // A plain file: a link planted at the marker's name marks nothing.
    let interrupted = std::fs::symlink_metadata(&marker).is_ok_and(|m| m.file_type().is_file());
    let foreign = foreign_entries(dest, |n| interrupted && ours(n))?;
    if !foreign.is_empty() {
        return Err(Error::invalid(format!(
            "{} is not empty ({}): repair writes a new dataset into a new or empty directory \
             (or one an interrupted repair left, marked by its {MARKER_NAME}), so that nothing \
             there is overwritten; choose another --out",
            dest.display(),
            list_names(&foreign)
        )));
    }
    if interrupted {
        return remove_leftovers(dest);
    }
    let shown = || marker.display().to_string();
    // Created in place, not renamed: a kill right after creating it leaves the destination
    // marked as well (an empty marker marks it too).
    let mut file = create_new(&marker).map_err(|e| Error::from(e).in_shard(shown()))?;
    file.write_all(
        b"an editshard repair is writing this directory (or was, and was interrupted: run the \
          same repair again); removed when it completes\n",
    )
    .and_then(|()| file.sync_all())
    .map_err(|e| Error::from(e).in_shard(shown()))?;
    sync_dir(dest);
    Ok(())
}

/// Removes what an interrupted repair wrote in `dest` (its marker stays until this run
/// completes). Only plain files and links with a repair's names are removed; a directory
/// under such a name is refused.
fn remove_leftovers(dest: &Path) -> Result<()> {
    let io = |e: std::io::Error, at: &Path| Error::from(e).in_shard(at.display().to_string());
    for entry in std::fs::read_dir(dest).map_err(|e| io(e, dest))? {
        let entry = entry.map_err(|e| io(e, dest))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == LOCK_NAME || name == MARKER_NAME {
            continue;
        }
        let base = temporary_of(&name).map_or(name.as_str(), |(base, _)| base);
        let path = entry.path();
        if !ours(base) {
            // `prepare` refused those: a name that appeared since.
            return Err(Error::invalid(format!(
                "{} appeared while the repair was starting: refused",
                path.display()
            )));
        }
        if entry.file_type().map_err(|e| io(e, &path))?.is_dir() {
            return Err(Error::invalid(format!(
                "{} is a directory: an interrupted repair writes files only; move it away and \
                 run the repair again",
                path.display()
            )));
        }
        log::info!("removing {}, left by an interrupted repair", path.display());
        std::fs::remove_file(&path).map_err(|e| io(e, &path))?;
    }
    sync_dir(dest);
    Ok(())
}

/// Unmarks `dest` once the repair completed: it is a finished dataset now.
pub fn finish(dest: &Path) -> Result<()> {
    let marker = dest.join(MARKER_NAME);
    std::fs::remove_file(&marker)
        .map_err(|e| Error::from(e).in_shard(marker.display().to_string()))?;
    sync_dir(dest);
    Ok(())
}
