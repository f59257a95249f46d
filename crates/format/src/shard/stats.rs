//! [`ShardStats`]: what a shard holds, counted as records are written (kinds, edit types,
//! categories, images before and after deduplication); the manifest sums them.

use std::collections::BTreeMap;

use crate::record::Record;

/// Counts per kind, edit type and category, and what image deduplication saved.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardStats {
    pub records: u64,
    pub kinds: BTreeMap<String, u64>,
    pub edit_types: BTreeMap<String, u64>,
    pub categories: BTreeMap<String, u64>,
    /// Images referenced by records, counting every reference.
    pub images_referenced: u64,
    pub image_bytes_referenced: u64,
    /// Images actually stored, after deduplication within groups.
    pub images_stored: u64,
    pub image_bytes_stored: u64,
}

impl ShardStats {
    /// Counts one record (kinds, turns' edit types and categories, image references); what
    /// is stored is counted as groups are written. `verify` recounts a dataset with it.
    pub fn count(&mut self, record: &Record) {
        self.records += 1;
        *self
            .kinds
            .entry(record.kind.name().to_string())
            .or_default() += 1;
        for turn in &record.turns {
            if let Some(t) = &turn.edit_type {
                *self.edit_types.entry(t.clone()).or_default() += 1;
            }
            if let Some(c) = &turn.category {
                *self.categories.entry(c.clone()).or_default() += 1;
            }
        }
        for image in record.images() {
            self.images_referenced += 1;
            self.image_bytes_referenced += image.len;
        }
    }
}

/// Adds every count of `theirs` to `mine`.
pub(crate) fn merge_counts(mine: &mut BTreeMap<String, u64>, theirs: &BTreeMap<String, u64>) {
    for (k, v) in theirs {
        *mine.entry(k.clone()).or_default() += v;
    }
}
