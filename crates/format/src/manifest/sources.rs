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
