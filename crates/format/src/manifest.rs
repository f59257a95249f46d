//! `manifest.json`: the one small file at a dataset's root that lists every shard.
//!
//! It is written last, so a dataset without one is visibly incomplete, and readers never list a
//! directory or bucket. Each shard entry carries its footer location (so opening a shard is
//! one ranged read) and a Bloom filter of its record ids (so finding a record by id touches
//! one shard, not all of them).
//!
//! ```
//! use editshard_format::manifest::IdFilter;
//! let filter = IdFilter::build(["sft/1.png", "sft/2.png"]);
//! assert!(filter.may_contain("sft/1.png"));
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::{VERSION_MAJOR, VERSION_MINOR};
use crate::path::check_relative_path;
use crate::shard::stats::merge_counts;
use crate::shard::writer::{ShardStats, ShardSummary};

mod id_filter;
mod sources;
use id_filter::{DeferFilters, IdProbe};
pub use id_filter::{FilterData, IdFilter, IdFilters, ManifestDigest};
pub use sources::{ShardRange, SourceEntry};

pub const MANIFEST_NAME: &str = "manifest.json";
/// Largest manifest a reader accepts.
pub const MAX_MANIFEST_LEN: u64 = 256 << 20;
/// The value of the `format` field.
pub const FORMAT_NAME: &str = "editshard";

/// Image counts before and after deduplication.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageTotals {
    pub referenced: u64,
    pub stored: u64,
    pub bytes_referenced: u64,
    pub bytes_stored: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// Path relative to the manifest, `/`-separated; never absolute, never `..`.
    pub path: String,
    pub bytes: u64,
    pub records: u64,
    pub footer_offset: u64,
    pub footer_length: u64,
    /// SHA-256 of the whole shard file, lower-case hex.
    pub sha256: String,
    /// CRC-64/NVME of the whole shard file in S3's text form (see [`crate::crc64`]). Optional
    /// (spec section 12): manifests written before the field have none, and readers that
    /// predate it ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc64nvme: Option<String>,
    pub id_filter: IdFilter,
}

impl ShardEntry {
    /// The entry's CRC-64/NVME, when it records one (the manifest was validated: a recorded
    /// one parses).
    pub fn crc64nvme_value(&self) -> Option<u64> {
        self.crc64nvme.as_deref().and_then(crate::crc64::decode)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `"editshard"`.
    pub format: String,
    /// `"MAJOR.MINOR"` of the shard format.
    pub format_version: String,
    pub records: u64,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
    pub kinds: BTreeMap<String, u64>,
    pub edit_types: BTreeMap<String, u64>,
    pub categories: BTreeMap<String, u64>,
    pub images: ImageTotals,
    pub shards: Vec<ShardEntry>,
    /// What a mixture (`editshard mix`) was made of, per source: see [`SourceEntry`]. Empty
    /// (and not written) for any other dataset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceEntry>,
    /// Fields written by newer versions, kept when a manifest is read and written again.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Set by [`Manifest::parse_deferring_filters`]: the bytes this manifest was parsed
    /// from, which hold its id filters. `None` when the filters are here.
    #[serde(skip)]
    pub filters_in: Option<ManifestDigest>,
}

impl Manifest {
    pub fn new(licence: Option<String>) -> Manifest {
        Manifest {
            format: FORMAT_NAME.to_string(),
            format_version: format!("{VERSION_MAJOR}.{VERSION_MINOR}"),
            records: 0,
            bytes: 0,
            licence,
            kinds: BTreeMap::new(),
            edit_types: BTreeMap::new(),
            categories: BTreeMap::new(),
            images: ImageTotals::default(),
            shards: Vec::new(),
            sources: Vec::new(),
            extra: serde_json::Map::new(),
            filters_in: None,
        }
    }

    /// The minor format version `format_version` names (0 when it names none).
    pub fn minor_version(&self) -> u16 {
        self.format_version
            .split('.')
            .nth(1)
            .and_then(|m| m.parse().ok())
            .unwrap_or(0)
    }

    /// Sets `format_version` to `1.minor`: the version of the first shard, then the newest of
    /// all shards (a reader needs that version to read the whole dataset).
    pub fn note_minor_version(&mut self, minor: u16) {
        let minor = if self.shards.is_empty() {
            minor
        } else {
            minor.max(self.minor_version())
        };
        self.format_version = format!("{VERSION_MAJOR}.{minor}");
    }

    /// Adds a finished shard at `path` (relative to the manifest).
    pub fn push_shard(&mut self, path: String, summary: &ShardSummary) {
        self.note_minor_version(summary.minor_version);
        self.records += summary.records;
        self.bytes += summary.bytes;
        self.add_stats(&summary.stats);
        self.shards.push(ShardEntry {
            path,
            bytes: summary.bytes,
            records: summary.records,
            footer_offset: summary.footer_offset,
            footer_length: summary.footer_len,
            sha256: crate::hex::hex(&summary.sha256),
            crc64nvme: Some(crate::crc64::encode(summary.crc64nvme)),
            id_filter: IdFilter::build(summary.ids.iter().map(String::as_str)),
        });
    }

    fn add_stats(&mut self, stats: &ShardStats) {
        merge_counts(&mut self.kinds, &stats.kinds);
        merge_counts(&mut self.edit_types, &stats.edit_types);
        merge_counts(&mut self.categories, &stats.categories);
        self.images.referenced += stats.images_referenced;
        self.images.stored += stats.images_stored;
        self.images.bytes_referenced += stats.image_bytes_referenced;
        self.images.bytes_stored += stats.image_bytes_stored;
    }

    /// Appends another manifest's shards and counts (used to merge the parts of a split
    /// conversion). Shard paths are taken as they are.
    pub fn absorb(&mut self, other: &Manifest) {
        self.note_minor_version(other.minor_version());
        self.records += other.records;
        self.bytes += other.bytes;
        merge_counts(&mut self.kinds, &other.kinds);
        merge_counts(&mut self.edit_types, &other.edit_types);
        merge_counts(&mut self.categories, &other.categories);
        self.images.referenced += other.images.referenced;
        self.images.stored += other.images.stored;
        self.images.bytes_referenced += other.images.bytes_referenced;
        self.images.bytes_stored += other.images.bytes_stored;
        self.shards.extend(other.shards.iter().cloned());
    }

    /// Serializes with stable key order and a trailing newline.
    ///
    /// Fails on a manifest parsed with [`Self::parse_deferring_filters`] (a reader's: its
    /// filters are not here, and a manifest is never written without them): tools that
    /// write a manifest load it with [`Self::parse`].
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let mut out = serde_json::to_vec_pretty(self).map_err(|e| {
            Error::invalid(format!(
                "cannot write this manifest: {e} (a reader's manifest leaves its id filters in \
                 the file; load it whole, with Manifest::parse or Dataset::whole_manifest, to \
                 write it)"
            ))
        })?;
        out.push(b'\n');
        Ok(out)
    }

    /// Parses and validates a manifest: the format name and major version, shard paths that
    /// stay inside the dataset, and totals that add up.
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        if bytes.len() as u64 > MAX_MANIFEST_LEN {
            return Err(Error::limit(format!(
                "manifest of {} bytes; the limit is {MAX_MANIFEST_LEN}",
                bytes.len()
            )));
        }
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| {
            Error::malformed(format!(
                "{MANIFEST_NAME} is not a valid manifest: {e} (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        m.validate()?;
        Ok(m)
    }

    /// [`Self::parse`] without keeping the id filters: each is checked as `parse` checks
    /// it, and only its length is kept ([`FilterData::Deferred`]). A reader's manifest, then
    /// no larger than its shard list: [`IdFilters::from_manifest_bytes`] takes the filters
    /// from the same bytes when a lookup by id needs them.
    pub fn parse_deferring_filters(bytes: &[u8]) -> Result<Manifest> {
        let mut m = {
            let _defer = DeferFilters::start();
            Self::parse(bytes)?
        };
        m.filters_in = Some(ManifestDigest::of(bytes));
        Ok(m)
    }

    /// True when the id filters were left in the manifest's bytes.
    pub fn filters_deferred(&self) -> bool {
        self.filters_in.is_some()
    }

    /// The heap this manifest holds, in bytes, near enough (strings and collections it
    /// owns, not the allocator's rounding): what a reading process keeps for it. With
    /// deferred filters it does not grow with the filters' size.
    pub fn heap_bytes(&self) -> u64 {
        let counts =
            |m: &BTreeMap<String, u64>| m.keys().map(|k| k.capacity() as u64 + 8 + 24).sum::<u64>();
        let shards = self
            .shards
            .iter()
            .map(|s| {
                let crc = s.crc64nvme.as_ref().map_or(0, String::capacity);
                let filter = match &s.id_filter.data {
                    FilterData::Base64(text) => text.capacity(),
                    FilterData::Deferred { .. } => 0,
                };
                (s.path.capacity() + s.sha256.capacity() + crc + filter) as u64
            })
            .sum::<u64>()
            + (self.shards.capacity() * std::mem::size_of::<ShardEntry>()) as u64;
        // Sources and unknown fields: what they serialize to, as their heap is hard to sum.
        fn json_len(v: &impl Serialize) -> u64 {
            serde_json::to_vec(v).map_or(0, |j| j.len() as u64)
        }
        (self.format.capacity() + self.format_version.capacity()) as u64
            + self.licence.as_ref().map_or(0, |l| l.capacity() as u64)
            + counts(&self.kinds)
            + counts(&self.edit_types)
            + counts(&self.categories)
            + shards
            + json_len(&self.sources)
            + json_len(&self.extra)
    }

    pub fn validate(&self) -> Result<()> {
        if self.format != FORMAT_NAME {
            return Err(Error::malformed(format!(
                "manifest format is {:?}, expected {FORMAT_NAME:?}",
                self.format
            )));
        }
        let major = self
            .format_version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u16>().ok());
        if major != Some(VERSION_MAJOR) {
            return Err(Error::unsupported(format!(
                "manifest format_version {:?}; this reader reads {VERSION_MAJOR}.x",
                self.format_version
            )));
        }
        let (mut records, mut bytes) = (0u64, 0u64);
        let mut seen = std::collections::HashSet::new();
        for (i, s) in self.shards.iter().enumerate() {
            check_relative_path(&s.path).map_err(|e| e.at_record(i as u64))?;
            if !seen.insert(&s.path) {
                return Err(Error::malformed(format!(
                    "shard path {:?} is listed twice",
                    s.path
                )));
            }
            if s.footer_offset.checked_add(s.footer_length) != Some(s.bytes) {
                return Err(Error::malformed(format!(
                    "shard {:?}: footer {}+{} does not end at the shard's length {}",
                    s.path, s.footer_offset, s.footer_length, s.bytes
                )));
            }
            if crate::hex::unhex32(&s.sha256).is_none() {
                return Err(Error::malformed(format!(
                    "shard {:?}: sha256 is not 64 hex digits",
                    s.path
                )));
            }
            if let Some(crc) = &s.crc64nvme
                && crate::crc64::decode(crc).is_none()
            {
                return Err(Error::malformed(format!(
                    "shard {:?}: crc64nvme {crc:?} is not the base64 of 8 bytes (12 characters, \
                     as S3 reports it)",
                    s.path
                )));
            }
            s.id_filter.validate()?;
            // Every record takes bytes of its shard: a count beyond its length is a lie (and
            // bounds every total below).
            if s.records > s.bytes {
                return Err(Error::malformed(format!(
                    "shard {:?} claims {} records in {} bytes",
                    s.path, s.records, s.bytes
                )));
            }
            records = records.checked_add(s.records).ok_or_else(|| {
                Error::malformed(format!(
                    "the shards' records overflow a 64-bit count at shard {:?}",
                    s.path
                ))
            })?;
            bytes = bytes.checked_add(s.bytes).ok_or_else(|| {
                Error::malformed(format!(
                    "the shards' bytes overflow a 64-bit count at shard {:?}",
                    s.path
                ))
            })?;
        }
        if records != self.records {
            return Err(Error::malformed(format!(
                "the manifest says {} records but its shards add up to {records}",
                self.records
            )));
        }
        if bytes != self.bytes {
            return Err(Error::malformed(format!(
                "the manifest says {} bytes but its shards add up to {bytes} (records: {records})",
                self.bytes
            )));
        }
        let shard_records: Vec<u64> = self.shards.iter().map(|s| s.records).collect();
        sources::validate(&self.sources, &shard_records)?;
        self.validate_summaries()
    }

    /// The summary counts agree with the totals (spec section 12): what `ls` and `stats`
    /// print from the manifest alone cannot say what the shards do not hold.
    fn validate_summaries(&self) -> Result<()> {
        let sum = |name: &str, counts: &BTreeMap<String, u64>| {
            counts
                .values()
                .try_fold(0u64, |a, &n| a.checked_add(n))
                .ok_or_else(|| {
                    Error::malformed(format!(
                        "the manifest's {name} counts overflow a 64-bit sum"
                    ))
                })
        };
        let kinds = sum("kinds", &self.kinds)?;
        if kinds != self.records {
            return Err(Error::malformed(format!(
                "the manifest's kinds add up to {kinds} records, but it holds {}",
                self.records
            )));
        }
        for (name, counts) in [
            ("edit_types", &self.edit_types),
            ("categories", &self.categories),
        ] {
            let turns = sum(name, counts)?;
            if turns > self.bytes {
                return Err(Error::malformed(format!(
                    "the manifest's {name} count {turns} turns in {} bytes",
                    self.bytes
                )));
            }
        }
        let images = &self.images;
        if images.stored > images.referenced || images.bytes_stored > self.bytes {
            return Err(Error::malformed(format!(
                "the manifest's image totals do not fit: {} stored of {} referenced, {} bytes \
                 stored in {} bytes of shards",
                images.stored, images.referenced, images.bytes_stored, self.bytes
            )));
        }
        Ok(())
    }

    /// The shard holding global record `index`, and the record's index within it.
    pub fn locate(&self, index: u64) -> Option<(usize, u64)> {
        let mut first = 0u64;
        for (s, shard) in self.shards.iter().enumerate() {
            if index < first.saturating_add(shard.records) {
                return Some((s, index - first));
            }
            first = first.saturating_add(shard.records);
        }
        None
    }

    /// Shards that may hold a record with this id, in order. Usually one; a false positive
    /// of a filter costs one footer read. With deferred filters, every shard (see
    /// [`IdFilters::candidate_shards`]).
    pub fn candidate_shards(&self, id: &str) -> Vec<usize> {
        let probe = IdProbe::new(id);
        (0..self.shards.len())
            .filter(|&s| self.shards[s].id_filter.may_contain_probe(&probe))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid manifest of `shards` shards of `per_shard` records each, with their filters.
    fn manifest_of(shards: usize, per_shard: u64) -> Manifest {
        let mut m = Manifest::new(None);
        for s in 0..shards {
            let ids: Vec<String> = (0..per_shard).map(|i| format!("sft/{s}/{i}")).collect();
            m.shards.push(ShardEntry {
                path: format!("shard-{s:05}.esd"),
                bytes: per_shard * 100,
                records: per_shard,
                footer_offset: per_shard * 90,
                footer_length: per_shard * 10,
                sha256: "0".repeat(64),
                crc64nvme: None,
                id_filter: IdFilter::build(ids.iter().map(String::as_str)),
            });
        }
        m.records = shards as u64 * per_shard;
        m.bytes = m.records * 100;
        m.kinds.insert("sft".into(), m.records);
        m.validate().unwrap();
        m
    }

    #[test]
    fn a_readers_manifest_does_not_hold_the_filters() {
        // The same shards with filters 1,000 times larger: a reader's manifest is the same
        // size; a writer's (whole) one is not.
        let (small, large) = (manifest_of(4, 10), manifest_of(4, 10_000));
        let (small_json, large_json) = (small.to_json().unwrap(), large.to_json().unwrap());
        let lean_small = Manifest::parse_deferring_filters(&small_json).unwrap();
        let lean_large = Manifest::parse_deferring_filters(&large_json).unwrap();
        assert!(lean_large.filters_deferred() && !large.filters_deferred());
        // A reader's manifest is never written: an error that says how, not a panic.
        let e = lean_large.to_json().unwrap_err().to_string();
        assert!(e.contains("load it whole"), "{e}");
        assert_eq!(lean_small.heap_bytes(), lean_large.heap_bytes());
        let whole_large = Manifest::parse(&large_json).unwrap();
        assert!(
            whole_large.heap_bytes() > lean_large.heap_bytes() + 4 * 30_000,
            "{} vs {}",
            whole_large.heap_bytes(),
            lean_large.heap_bytes()
        );
        assert!(
            lean_large.heap_bytes() < 4_000,
            "{}",
            lean_large.heap_bytes()
        );

        // The filters come back from the same bytes, exactly, and answer as the whole ones.
        let digest = lean_large.filters_in.unwrap();
        let filters = IdFilters::from_manifest_bytes(&digest, &large_json).unwrap();
        for (s, shard) in large.shards.iter().enumerate() {
            assert_eq!(filters.get(s), Some(&shard.id_filter));
        }
        assert_eq!(filters.candidate_shards("sft/2/9999"), vec![2]);
        assert_eq!(large.candidate_shards("sft/2/9999"), vec![2]);
        // A deferred manifest answers "every shard", never a wrong one.
        assert_eq!(lean_large.candidate_shards("sft/2/9999"), vec![0, 1, 2, 3]);

        // Other bytes, even of the same length, are refused.
        let mut changed = large_json.clone();
        let at = changed.len() - 3;
        changed[at] ^= 1;
        let err = IdFilters::from_manifest_bytes(&digest, &changed).unwrap_err();
        assert!(err.to_string().contains("changed since"), "{err}");
        assert!(IdFilters::from_manifest_bytes(&digest, &small_json).is_err());
    }

    #[test]
    fn deferred_filters_are_checked_as_whole_ones() {
        let m = manifest_of(2, 5);
        let json = String::from_utf8(m.to_json().unwrap()).unwrap();
        let text = m.shards[1].id_filter.data.base64().unwrap();
        let bad = json.replace(text, &text[4..]);
        let whole = Manifest::parse(bad.as_bytes()).unwrap_err();
        let lean = Manifest::parse_deferring_filters(bad.as_bytes()).unwrap_err();
        assert_eq!(whole.to_string(), lean.to_string());
        assert!(lean.to_string().contains("id_filter"), "{lean}");
        let not_text = json.replacen(&format!("\"{text}\""), "7", 1);
        assert!(Manifest::parse_deferring_filters(not_text.as_bytes()).is_err());
    }

    #[test]
    fn format_version_is_the_newest_minor_of_the_shards() {
        let mut m = Manifest::new(None);
        assert_eq!(m.format_version, "1.1");
        m.note_minor_version(0);
        assert_eq!(m.format_version, "1.0", "set by the first shard's writer");
        let mut other = Manifest::new(None);
        other.note_minor_version(1);
        other.shards.push(ShardEntry {
            path: "b".into(),
            bytes: 1,
            records: 0,
            footer_offset: 0,
            footer_length: 1,
            sha256: "0".repeat(64),
            crc64nvme: None,
            id_filter: IdFilter::build(std::iter::empty()),
        });
        m.shards.push(other.shards[0].clone());
        m.shards[0].path = "a".into();
        m.absorb(&other);
        assert_eq!(m.format_version, "1.1", "a 1.1 shard makes the dataset 1.1");
        m.note_minor_version(0);
        assert_eq!(
            m.format_version, "1.1",
            "never lowered once shards are listed"
        );
        assert_eq!(m.minor_version(), 1);
        // Readers accept any 1.x manifest.
        m.format_version = "1.7".into();
        assert_eq!(m.minor_version(), 7);
    }

    #[test]
    fn counts_that_overflow_or_do_not_add_up_are_refused() {
        let shard = |path: &str, records: u64, bytes: u64| ShardEntry {
            path: path.into(),
            bytes,
            records,
            footer_offset: 0,
            footer_length: bytes,
            sha256: "0".repeat(64),
            crc64nvme: None,
            id_filter: IdFilter::build(std::iter::empty()),
        };
        let mut m = Manifest::new(None);
        m.shards = vec![shard("a", 2, 100), shard("b", 3, 200)];
        (m.records, m.bytes) = (5, 300);
        m.kinds.insert("sft".into(), 5);
        m.validate().unwrap();
        // Summaries that disagree with the totals, or overflow.
        for lie in [
            |m: &mut Manifest| *m.kinds.get_mut("sft").unwrap() = u64::MAX,
            |m: &mut Manifest| {
                m.kinds.insert("preference".into(), u64::MAX - 4);
            },
            |m: &mut Manifest| {
                m.edit_types.insert("a".into(), 301);
            },
            |m: &mut Manifest| {
                m.categories.insert("a".into(), u64::MAX);
                m.categories.insert("b".into(), 2);
            },
            |m: &mut Manifest| m.images.stored = 1,
            |m: &mut Manifest| {
                m.images.referenced = 9;
                m.images.bytes_stored = 301;
            },
        ] {
            let mut lying = m.clone();
            lie(&mut lying);
            assert!(lying.validate().is_err(), "{lying:?}");
        }
        let big = 1u64 << 63;
        m.shards = vec![shard("a", big, big), shard("b", big, big)];
        (m.records, m.bytes) = (u64::MAX, u64::MAX);
        let err = m.validate().unwrap_err();
        assert!(err.to_string().contains("overflow"), "{err}");
        m.shards = vec![shard("a", big, 100)];
        (m.records, m.bytes) = (big, 100);
        let err = m.validate().unwrap_err();
        assert!(err.to_string().contains("claims"), "{err}");
        m.shards = vec![shard("a", 2, 100)];
        (m.records, m.bytes) = (2, 101);
        assert!(m.validate().is_err());
    }

    #[test]
    fn relative_paths_only() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../b",
            "a//b",
            "a\\b",
            "./a",
            "a\0b",
        ] {
            assert!(check_relative_path(bad).is_err(), "{bad:?}");
        }
        check_relative_path("part-1-of-2/shard-00000.esd").unwrap();
    }
}
