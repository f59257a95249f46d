//! `mix`: several datasets as one, for a training job that reads one shuffled mixture.
//!
//! Each source's shards are placed under `DEST/NAME/` (their paths in the source kept below
//! that), copied and checked against the source manifest's length and SHA-256 as they
//! stream, or hard-linked when source and DEST are local directories on one file system
//! (and then hashed, so a link is as verified as a copy). `manifest.json` is written last:
//! its shard list covers every source in order and its `sources` field keeps each source's
//! name, location, records, kinds, licences and shard range ([`SourceEntry`]).
//!
//! Ids must stay unique in the mixture (a read by id finds one record): before anything is
//! written, every source's ids are read from its shard indexes (one footer read per shard,
//! no record) and a collision is refused, naming the id and both sources.
//!
//! Like `convert` and `mirror`: DEST is locked for the run; a local DEST must be new, empty,
//! or hold only what a mix of the same sources writes (else it is refused, naming the
//! files); a run that is interrupted (even `kill -9`) is resumed by the same command, which
//! keeps every shard already placed and verified and places the rest.

mod place;

use std::collections::{BTreeMap, HashMap};

use crate::error::{Error, Result};
use crate::lock::DestLock;
use crate::manifest::{MANIFEST_NAME, Manifest, ShardRange, SourceEntry};
use crate::ownership;
use crate::read::{Dataset, DatasetOptions, find_manifest, load_manifest};
use crate::storage::Location;

pub use place::Placed;

/// One dataset to mix in.
#[derive(Debug, Clone)]
pub struct MixSource {
    /// Its name in the mixture, a plain file name ([`check_name`]).
    pub name: String,
    /// Where it is, as given (recorded in the manifest).
    pub given: String,
    pub location: Location,
}

#[derive(Debug, Clone, Default)]
pub struct MixOptions {
    /// Always copy, even where a hard link could be made.
    pub copy_only: bool,
    /// Delete a lock left in S3 by a killed run first.
    pub break_lock: bool,
}

#[derive(Debug, Clone, Default)]
pub struct MixReport {
    pub records: u64,
    pub shards: usize,
    pub bytes: u64,
    /// Shards copied, linked, and found already in place (a resumed run).
    pub copied: usize,
    pub linked: usize,
    pub kept: usize,
    pub sources: Vec<SourceEntry>,
}

/// A source name: one path component of letters, digits, `-`, `_` and `.`, not starting with
/// a dot (so it cannot be `..`, a hidden file, or the manifest's or lock's name).
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name != MANIFEST_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "source name {name:?}: use letters, digits, '-', '_' and '.' (not first), at most \
             100 characters; name a source with NAME=LOCATION"
        )))
    }
}

/// The default name of a source at `given`: its last path segment.
pub fn default_name(given: &str) -> String {
    let trimmed = given.trim_end_matches('/');
    let last = trimmed.rsplit('/').next().unwrap_or(trimmed);
    last.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}

pub async fn mix(sources: &[MixSource], dest: &Location, opts: &MixOptions) -> Result<MixReport> {
    if sources.is_empty() {
        return Err(Error::invalid("mix needs at least one source dataset"));
    }
    let mut names = std::collections::HashSet::new();
    for s in sources {
        check_name(&s.name)?;
        if !names.insert(s.name.as_str()) {
            return Err(Error::invalid(format!(
                "two sources are named {:?}: name them apart with NAME=LOCATION",
                s.name
            )));
        }
    }
    let mut opened = Vec::with_capacity(sources.len());
    for s in sources {
        // Whole manifests: the mixture's copies each source's id filters.
        let (manifest, _) = load_manifest(&s.location).await?;
        opened.push(Dataset::from_manifest(
            s.location.clone(),
            manifest,
            DatasetOptions::default(),
        ));
    }
    check_unique_ids(sources, &opened).await?;
    let lock = DestLock::acquire(dest, &format!("mix {}", dest.display()), opts.break_lock).await?;
    let result = mix_locked(sources, &opened, dest, opts).await;
    lock.release_after(result).await
}

/// Refuses an id found in two sources (or twice in one), naming both. Reads each shard's
/// index only.
async fn check_unique_ids(sources: &[MixSource], opened: &[Dataset]) -> Result<()> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (k, ds) in opened.iter().enumerate() {
        for s in 0..ds.manifest().shards.len() {
            let shard = ds.shard(s).await?;
            for r in shard.index().records() {
                if let Some(&first) = seen.get(r.id) {
                    let (a, b) = (&sources[first], &sources[k]);
                    return Err(Error::invalid(format!(
                        "record id {:?} is in source {:?} ({}) and in source {:?} ({}, shard \
                         {}): ids must be unique in a mixture (a read by id finds one record); \
                         leave one of them out, or convert one again with other ids",
                        r.id,
                        a.name,
                        a.given,
                        b.name,
                        b.given,
                        shard.path()
                    ))
                    .with_id(r.id));
                }
                seen.insert(r.id.to_string(), k);
            }
        }
    }
    Ok(())
}

async fn mix_locked(
    sources: &[MixSource],
    opened: &[Dataset],
    dest: &Location,
    opts: &MixOptions,
) -> Result<MixReport> {
    let mut manifest = plan(sources, opened);
    check_dest(dest, &manifest).await?;
    let mut report = MixReport::default();
    let mut at = 0;
    for (src, ds) in sources.iter().zip(opened) {
        for entry in &ds.manifest().shards {
            let rel = format!("{}/{}", src.name, entry.path);
            let (placed, crc) =
                place::place_learning(&src.location, &entry.path, dest, &rel, entry, opts).await?;
            match placed {
                Placed::Copied => report.copied += 1,
                Placed::Linked => report.linked += 1,
                Placed::Kept => report.kept += 1,
            }
            // A source written before `crc64nvme`: the mixture records what was hashed.
            let out = &mut manifest.shards[at];
            if out.crc64nvme.is_none() {
                out.crc64nvme = crc.map(crate::crc64::encode);
            }
            at += 1;
        }
    }
    dest.put(MANIFEST_NAME, manifest.to_json()?.into()).await?;
    report.records = manifest.records;
    report.shards = manifest.shards.len();
    report.bytes = manifest.bytes;
    report.sources = manifest.sources;
    Ok(report)
}

/// The mixture's manifest: every source's shards in order, under `NAME/`.
fn plan(sources: &[MixSource], opened: &[Dataset]) -> Manifest {
    let mut entries = Vec::new();
    let mut all_licences: Vec<String> = Vec::new();
    let mut shards = 0u64;
    let mut parts = Vec::new();
    for (src, ds) in sources.iter().zip(opened) {
        let m = ds.manifest();
        let mut licences: Vec<String> = m.licence.iter().cloned().collect();
        for inner in &m.sources {
            licences.extend(inner.licences.iter().cloned());
        }
        licences.sort();
        licences.dedup();
        all_licences.extend(licences.iter().cloned());
        let mut part = m.clone();
        for s in &mut part.shards {
            s.path = format!("{}/{}", src.name, s.path);
        }
        entries.push(SourceEntry {
            name: src.name.clone(),
            location: src.given.clone(),
            records: m.records,
            kinds: m.kinds.clone(),
            licences,
            shards: ShardRange {
                start: shards,
                end: shards + m.shards.len() as u64,
            },
        });
        shards += m.shards.len() as u64;
        parts.push(part);
    }
    all_licences.sort();
    all_licences.dedup();
    let licence = (!all_licences.is_empty()).then(|| all_licences.join("; "));
    let mut out = Manifest::new(licence);
    for part in &parts {
        out.absorb(part);
    }
    // The mixture's shards are the sources' own: `absorb` makes its version the newest of
    // theirs.
    out.sources = entries;
    out
}

/// DEST may be new or empty, or hold a mix of the same sources (finished or interrupted):
/// nothing else is written over.
async fn check_dest(dest: &Location, planned: &Manifest) -> Result<()> {
    if let Some(existing) = find_manifest(dest).await? {
        let same = |m: &Manifest| -> BTreeMap<String, String> {
            m.sources
                .iter()
                .map(|s| (s.name.clone(), s.location.clone()))
                .collect()
        };
        if existing.sources.is_empty() || same(&existing) != same(planned) {
            return Err(Error::invalid(format!(
                "{} already holds a dataset that is not a mix of these sources; refusing to \
                 replace its {MANIFEST_NAME} (mix into a new or empty directory)",
                dest.display()
            )));
        }
    }
    if let Some(dir) = dest.is_local() {
        let names: Vec<&str> = planned.sources.iter().map(|s| s.name.as_str()).collect();
        let foreign =
            ownership::foreign_entries(dir, |n| n == MANIFEST_NAME || names.contains(&n))?;
        if !foreign.is_empty() {
            return Err(Error::invalid(format!(
                "{} holds files a mix of these sources does not write ({}): mix into a new or \
                 empty directory; nothing was written",
                dest.display(),
                ownership::list_names(&foreign)
            )));
        }
        for name in names {
            let p = dir.join(name);
            if std::fs::symlink_metadata(&p).is_ok_and(|m| !m.is_dir()) {
                return Err(Error::invalid(format!(
                    "{} is not a directory (a symbolic link or a file): refused, nothing is \
                     written through it",
                    p.display()
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_safe_path_component() {
        for ok in ["pico", "magic-brush_v1.2", "A1"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a\\b",
            "manifest.json",
            "é",
            "a b",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(default_name("/data/pico/"), "pico");
        assert_eq!(default_name("s3://bucket/x y"), "x_y");
        assert_eq!(default_name("https://h/..."), "");
        assert!(check_name(&default_name("https://h/...")).is_err());
    }
}
