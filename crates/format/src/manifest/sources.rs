//! The manifest's `sources` (spec/FORMAT.md section 12): what a mixture (`editshard mix`)
//! was made of. One entry per source dataset, in shard order, each naming the range of the
//! manifest's `shards` that came from it, so a reader can tell (and count, filter or weight)
//! where every record came from without reading a shard. Older readers ignore the field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceEntry {
    /// The source's name in the mixture: its shards are under `NAME/`.
    pub name: String,
    /// Where the source was read from when the mixture was made (as given).
    pub location: String,
    pub records: u64,
    /// Records per kind, as in the source's manifest.
    pub kinds: BTreeMap<String, u64>,
    /// The source's licence(s): its manifest's `licence`, and those of its own `sources`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licences: Vec<String>,
    /// The source's shards: `shards[start..end]` of this manifest.
    pub shards: ShardRange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRange {
    pub start: u64,
    pub end: u64,
}

/// Checks that the entries' shard ranges follow each other within `shards` (whose record
/// counts are `shard_records`) and that each entry's records are its shards' records.
pub fn validate(sources: &[SourceEntry], shard_records: &[u64]) -> Result<()> {
    let mut next = 0u64;
    for s in sources {
        let ShardRange { start, end } = s.shards;
        if start < next || start > end || end > shard_records.len() as u64 {
            return Err(Error::malformed(format!(
                "the manifest's source {:?} names shards {start}..{end}, which overlap another \
                 source's or go past the {} shards it lists",
                s.name,
                shard_records.len()
            )));
        }
        let records = shard_records[start as usize..end as usize]
            .iter()
            .try_fold(0u64, |a, &n| a.checked_add(n));
        if records != Some(s.records) {
            return Err(Error::malformed(format!(
                "the manifest's source {:?} says {} records, but its shards {start}..{end} hold \
                 {records:?}",
                s.name, s.records
            )));
        }
        next = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, records: u64, start: u64, end: u64) -> SourceEntry {
        SourceEntry {
            name: name.into(),
            location: format!("/data/{name}"),
            records,
            kinds: BTreeMap::new(),
            licences: vec![],
            shards: ShardRange { start, end },
        }
    }

    #[test]
    fn ranges_must_follow_each_other_and_add_up() {
        let shards = [3, 4, 5];
        assert!(validate(&[entry("a", 7, 0, 2), entry("b", 5, 2, 3)], &shards).is_ok());
        assert!(validate(&[], &shards).is_ok());
        let bad = [
            (vec![entry("a", 7, 0, 2), entry("b", 9, 1, 3)], "overlap"),
            (vec![entry("a", 12, 0, 4)], "go past"),
            (vec![entry("a", 7, 2, 1)], "overlap"),
            (vec![entry("a", 8, 0, 2)], "hold"),
        ];
        for (sources, want) in bad {
            let e = validate(&sources, &shards).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn a_manifest_with_sources_round_trips_and_one_without_omits_the_field() {
        let m = crate::manifest::Manifest::new(None);
        let json = String::from_utf8(m.to_json().unwrap()).unwrap();
        assert!(!json.contains("sources"), "{json}");
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["sources"] = serde_json::json!([]);
        let back = crate::manifest::Manifest::parse(v.to_string().as_bytes()).unwrap();
        assert!(back.sources.is_empty() && back.extra.is_empty());
    }
}
