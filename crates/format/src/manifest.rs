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

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::format::{VERSION_MAJOR, VERSION_MINOR};
use crate::path::check_relative_path;
use crate::shard::stats::merge_counts;
use crate::shard::writer::{ShardStats, ShardSummary};

mod sources;
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
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a manifest always serializes");
        out.push(b'\n');
        out
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
    /// of a filter costs one footer read.
    pub fn candidate_shards(&self, id: &str) -> Vec<usize> {
        let probe = IdProbe::new(id);
        (0..self.shards.len())
            .filter(|&s| self.shards[s].id_filter.may_contain_probe(&probe))
            .collect()
    }
}

/// A Bloom filter of record ids (spec/FORMAT.md, "Id filter").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdFilter {
    /// Number of bits, a multiple of 8.
    pub bits: u64,
    /// Number of probes per id.
    pub hashes: u32,
    /// The bit array, base64 (standard alphabet, padded); bit `i` is `data[i / 8] >> (i % 8)`.
    pub data: String,
}

/// Bits per id: with 14 probes, a false-positive rate near 1 in 15,000 per shard.
const BITS_PER_ID: u64 = 20;
const HASHES: u32 = 14;
/// Largest filter a reader accepts.
const MAX_FILTER_BITS: u64 = 1 << 33;

struct IdProbe {
    h1: u64,
    h2: u64,
}

impl IdProbe {
    fn new(id: &str) -> IdProbe {
        let digest = Sha256::digest(id.as_bytes());
        let word = |i: usize| u64::from_le_bytes(digest[i..i + 8].try_into().expect("8 bytes"));
        IdProbe {
            h1: word(0),
            h2: word(8) | 1,
        }
    }
    fn bit(&self, i: u32, bits: u64) -> u64 {
        self.h1.wrapping_add(u64::from(i).wrapping_mul(self.h2)) % bits
    }
}

impl IdFilter {
    pub fn build<'a>(ids: impl IntoIterator<Item = &'a str>) -> IdFilter {
        let ids: Vec<&str> = ids.into_iter().collect();
        let bits = (ids.len() as u64 * BITS_PER_ID).max(64).div_ceil(8) * 8;
        let mut data = vec![0u8; (bits / 8) as usize];
        for id in ids {
            let probe = IdProbe::new(id);
            for i in 0..HASHES {
                let b = probe.bit(i, bits);
                data[(b / 8) as usize] |= 1 << (b % 8);
            }
        }
        IdFilter {
            bits,
            hashes: HASHES,
            data: base64::engine::general_purpose::STANDARD.encode(data),
        }
    }

    fn validate(&self) -> Result<()> {
        let ok = self.bits > 0
            && self.bits % 8 == 0
            && self.bits <= MAX_FILTER_BITS
            && (1..=64).contains(&self.hashes)
            && self.data.len() as u64 == (self.bits / 8).div_ceil(3) * 4;
        if !ok {
            return Err(Error::malformed(
                "an id_filter has an invalid size, probe count or data length",
            ));
        }
        Ok(())
    }

    /// False means the id is certainly not in the shard.
    pub fn may_contain(&self, id: &str) -> bool {
        self.may_contain_probe(&IdProbe::new(id))
    }

    /// Decodes only the base64 groups holding the probed bits: a lookup by id checks every
    /// shard's filter, and decoding each whole filter made it cost as much as the dataset
    /// has records. A filter that does not decode "may contain" every id, as before.
    fn may_contain_probe(&self, probe: &IdProbe) -> bool {
        if self.data.len() as u64 != (self.bits / 8).div_ceil(3) * 4 {
            return true;
        }
        (0..self.hashes).all(|i| {
            let b = probe.bit(i, self.bits);
            filter_byte(self.data.as_bytes(), (b / 8) as usize)
                .is_none_or(|byte| byte & (1 << (b % 8)) != 0)
        })
    }
}

/// Byte `i` of the filter whose standard, padded base64 is `data`: decodes the one 4-character
/// group that holds it. `None` when that group does not decode.
fn filter_byte(data: &[u8], i: usize) -> Option<u8> {
    let start = i / 3 * 4;
    let group = data.get(start..start + 4)?;
    let mut out = [0u8; 3];
    let n = base64::engine::general_purpose::STANDARD
        .decode_slice(group, &mut out)
        .ok()?;
    (i % 3 < n).then_some(out[i % 3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_has_no_false_negatives_and_few_false_positives() {
        let ids: Vec<String> = (0..500).map(|i| format!("sft/images/{i}.png")).collect();
        let f = IdFilter::build(ids.iter().map(String::as_str));
        f.validate().unwrap();
        assert!(ids.iter().all(|id| f.may_contain(id)));
        let false_positives = (0..20_000)
            .filter(|i| f.may_contain(&format!("other/{i}")))
            .count();
        assert!(false_positives < 10, "{false_positives} false positives");
    }

    #[test]
    fn a_lookup_decodes_the_same_bits_as_the_whole_filter() {
        use base64::Engine;
        // Sizes whose last base64 group is padded (1 or 2 bytes) and unpadded.
        for n in [1usize, 7, 40, 41, 42, 300] {
            let ids: Vec<String> = (0..n).map(|i| format!("multi-turn/{i}.png")).collect();
            let f = IdFilter::build(ids.iter().map(String::as_str));
            let whole = base64::engine::general_purpose::STANDARD
                .decode(&f.data)
                .unwrap();
            for (i, &byte) in whole.iter().enumerate() {
                assert_eq!(
                    filter_byte(f.data.as_bytes(), i),
                    Some(byte),
                    "n {n}, byte {i}"
                );
            }
            assert_eq!(filter_byte(f.data.as_bytes(), whole.len() + 3), None);
            assert!(ids.iter().all(|id| f.may_contain(id)), "n {n}");
        }
        // A filter whose data does not decode is no filter: every id may be there.
        let mut bad = IdFilter::build(["a", "b"]);
        bad.data = "!".repeat(bad.data.len());
        assert!(bad.may_contain("anything"));
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
