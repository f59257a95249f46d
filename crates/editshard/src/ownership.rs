//! Whether a local destination holds only what a run may write over: `convert` and `mirror`
//! refuse a non-empty directory holding files that are not theirs, rather than overwrite or
//! mix in someone else's.

use std::path::Path;

use crate::atomic::temporary_of;
use crate::error::{Error, Result};
use crate::lock::LOCK_NAME;

/// Most names quoted in a refusal.
const NAMES_SHOWN: usize = 8;

/// The top-level entries of `dir` that `ours` does not accept, sorted. The lock
/// ([`LOCK_NAME`]) and temporary files of accepted names (`NAME.partial`,
/// `NAME.<pid>-<n>.partial`: left by a killed write) are always accepted. A directory that
/// does not exist holds nothing.
pub fn foreign_entries(dir: &Path, ours: impl Fn(&str) -> bool) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::from(e).in_shard(dir.display().to_string())),
    };
    let accepted = |name: &str| {
        if name == LOCK_NAME || ours(name) {
            return true;
        }
        temporary_of(name).is_some_and(|(base, _)| ours(base))
    };
    let mut foreign = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::from(e).in_shard(dir.display().to_string()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !accepted(&name) {
            foreign.push(name);
        }
    }
    foreign.sort();
    Ok(foreign)
}

/// The first top-level component of a relative path (`retry-1/shard-00000.esd` -> `retry-1`).
pub fn top_level(rel: &str) -> &str {
    rel.split('/').next().unwrap_or(rel)
}

/// `a, b, c and 4 more`.
pub fn list_names(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(NAMES_SHOWN).map(String::as_str).collect();
    match names.len().saturating_sub(NAMES_SHOWN) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_and_partials_of_accepted_names_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            LOCK_NAME,
            "shard-00000.esd",
            "shard-00001.esd.123-0.partial",
            "manifest.json.partial",
            "other.esd.1-2.partial",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let ours = |n: &str| n.starts_with("shard-") || n == "manifest.json";
        assert_eq!(
            foreign_entries(dir.path(), ours).unwrap(),
            ["notes.txt", "other.esd.1-2.partial"]
        );
        assert!(
            foreign_entries(&dir.path().join("absent"), ours)
                .unwrap()
                .is_empty()
        );
    }
}
