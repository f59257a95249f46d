//! The shards' id filters (spec/FORMAT.md section 12, "Id filter"): a Bloom filter of record
//! ids per shard, so finding a record by id touches one shard, not all of them.
//!
//! They are most of a large manifest (some 20 bits a record), and only a lookup by id uses
//! them. A reader therefore parses the manifest with [`super::Manifest::parse_deferring_filters`]:
//! every filter is checked as [`super::Manifest::parse`] checks it, but only its length is
//! kept ([`FilterData::Deferred`]); the first lookup by id reads the manifest again and takes
//! the filters from it ([`IdFilters::from_manifest_bytes`]), after checking that the bytes
//! are the ones parsed at open ([`ManifestDigest`]).

use std::cell::Cell;

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A Bloom filter of record ids (spec/FORMAT.md, "Id filter").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdFilter {
    /// Number of bits, a multiple of 8.
    pub bits: u64,
    /// Number of probes per id.
    pub hashes: u32,
    /// The bit array, base64 (standard alphabet, padded); bit `i` is `data[i / 8] >> (i % 8)`.
    pub data: FilterData,
}

/// An id filter's bit array as the manifest spells it (base64), or, in a manifest parsed
/// with [`super::Manifest::parse_deferring_filters`], only the length of that text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterData {
    Base64(String),
    /// Left in the manifest's bytes: see the module's documentation. Serializing it is an
    /// error (a manifest written from it would lose its filters).
    Deferred {
        len: u64,
    },
}

impl FilterData {
    /// Length of the base64 text.
    pub fn len(&self) -> u64 {
        match self {
            FilterData::Base64(s) => s.len() as u64,
            FilterData::Deferred { len } => *len,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The base64 text; `None` when deferred.
    pub fn base64(&self) -> Option<&str> {
        match self {
            FilterData::Base64(s) => Some(s),
            FilterData::Deferred { .. } => None,
        }
    }
}

thread_local! {
    /// Set while [`super::Manifest::parse_deferring_filters`] parses: serde has no other
    /// way to tell a nested field how to deserialize.
    static DEFER_FILTERS: Cell<bool> = const { Cell::new(false) };
}

/// Defers the filters of what this thread deserializes until dropped.
pub(super) struct DeferFilters(bool);

impl DeferFilters {
    pub(super) fn start() -> DeferFilters {
        DeferFilters(DEFER_FILTERS.with(|d| d.replace(true)))
    }
}

impl Drop for DeferFilters {
    fn drop(&mut self) {
        DEFER_FILTERS.with(|d| d.set(self.0));
    }
}

impl Serialize for FilterData {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            FilterData::Base64(text) => s.serialize_str(text),
            FilterData::Deferred { .. } => Err(serde::ser::Error::custom(
                "an id filter was left in the manifest's bytes (a reader's manifest): load the \
                 manifest whole to write it",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for FilterData {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = FilterData;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a base64 string")
            }
            // Borrowed or not, a deferred filter's text is only measured, never copied.
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<FilterData, E> {
                Ok(if DEFER_FILTERS.with(Cell::get) {
                    FilterData::Deferred {
                        len: v.len() as u64,
                    }
                } else {
                    FilterData::Base64(v.to_string())
                })
            }
            fn visit_string<E: serde::de::Error>(
                self,
                v: String,
            ) -> std::result::Result<FilterData, E> {
                Ok(if DEFER_FILTERS.with(Cell::get) {
                    FilterData::Deferred {
                        len: v.len() as u64,
                    }
                } else {
                    FilterData::Base64(v)
                })
            }
        }
        d.deserialize_str(Text)
    }
}

/// Which bytes a manifest was parsed from: its length and SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestDigest {
    pub len: u64,
    pub sha256: [u8; 32],
}

impl ManifestDigest {
    pub fn of(bytes: &[u8]) -> ManifestDigest {
        ManifestDigest {
            len: bytes.len() as u64,
            sha256: Sha256::digest(bytes).into(),
        }
    }
}

impl std::fmt::Display for ManifestDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "{} bytes, sha256 {}",
            self.len,
            crate::hex::hex(&self.sha256)
        )
    }
}

/// Every shard's id filter, in shard order: what a lookup by id needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdFilters {
    filters: Vec<IdFilter>,
}

impl IdFilters {
    pub fn new(filters: Vec<IdFilter>) -> IdFilters {
        IdFilters { filters }
    }

    /// The filters of the manifest whose bytes are `bytes`, which must be the ones `opened`
    /// was parsed from (a manifest replaced since would give another dataset's filters).
    pub fn from_manifest_bytes(opened: &ManifestDigest, bytes: &[u8]) -> Result<IdFilters> {
        let now = ManifestDigest::of(bytes);
        if now != *opened {
            return Err(Error::invalid(format!(
                "the manifest changed since the dataset was opened ({opened}; now {now}): a \
                 lookup by id needs the id filters of the manifest that was read; open the \
                 dataset again"
            )));
        }
        // The same bytes were parsed and checked whole at open: only the filters are taken
        // now, without building the rest (a whole parse buffers every field, because of the
        // manifest's flattened unknown fields, and left some 18 MB to the allocator at 4M
        // records).
        #[derive(Deserialize)]
        struct Shards {
            shards: Vec<Shard>,
        }
        #[derive(Deserialize)]
        struct Shard {
            id_filter: IdFilter,
        }
        let parsed: Shards = serde_json::from_slice(bytes)
            .map_err(|e| Error::malformed(format!("the manifest's id filters: {e}")))?;
        let filters: Vec<IdFilter> = parsed.shards.into_iter().map(|s| s.id_filter).collect();
        for f in &filters {
            f.validate()?;
        }
        Ok(IdFilters::new(filters))
    }

    pub fn len(&self) -> usize {
        self.filters.len()
    }
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }
    /// Shard `s`'s filter.
    pub fn get(&self, s: usize) -> Option<&IdFilter> {
        self.filters.get(s)
    }
    pub fn into_vec(self) -> Vec<IdFilter> {
        self.filters
    }

    /// Shards that may hold a record with this id, in order. Usually one; a false positive
    /// of a filter costs one footer read.
    pub fn candidate_shards(&self, id: &str) -> Vec<usize> {
        let probe = IdProbe::new(id);
        (0..self.filters.len())
            .filter(|&s| self.filters[s].may_contain_probe(&probe))
            .collect()
    }
}

/// Bits per id: with 14 probes, a false-positive rate near 1 in 15,000 per shard.
const BITS_PER_ID: u64 = 20;
const HASHES: u32 = 14;
/// Largest filter a reader accepts.
const MAX_FILTER_BITS: u64 = 1 << 33;

pub(super) struct IdProbe {
    h1: u64,
    h2: u64,
}

impl IdProbe {
    pub(super) fn new(id: &str) -> IdProbe {
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
            data: FilterData::Base64(base64::engine::general_purpose::STANDARD.encode(data)),
        }
    }

    /// The spec's checks (sizes, probe count, length of the base64 text): the same whether
    /// the text is kept or deferred.
    pub(super) fn validate(&self) -> Result<()> {
        let ok = self.bits > 0
            && self.bits % 8 == 0
            && self.bits <= MAX_FILTER_BITS
            && (1..=64).contains(&self.hashes)
            && self.data.len() == (self.bits / 8).div_ceil(3) * 4;
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
    /// has records. A filter that does not decode "may contain" every id, as before; so does
    /// a deferred one (its bits are not here).
    pub(super) fn may_contain_probe(&self, probe: &IdProbe) -> bool {
        let Some(data) = self.data.base64() else {
            return true;
        };
        if data.len() as u64 != (self.bits / 8).div_ceil(3) * 4 {
            return true;
        }
        (0..self.hashes).all(|i| {
            let b = probe.bit(i, self.bits);
            filter_byte(data.as_bytes(), (b / 8) as usize)
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

    fn text(f: &IdFilter) -> &str {
        f.data.base64().unwrap()
    }

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
        // Sizes whose last base64 group is padded (1 or 2 bytes) and unpadded.
        for n in [1usize, 7, 40, 41, 42, 300] {
            let ids: Vec<String> = (0..n).map(|i| format!("multi-turn/{i}.png")).collect();
            let f = IdFilter::build(ids.iter().map(String::as_str));
            let whole = base64::engine::general_purpose::STANDARD
                .decode(text(&f))
                .unwrap();
            for (i, &byte) in whole.iter().enumerate() {
                assert_eq!(
                    filter_byte(text(&f).as_bytes(), i),
                    Some(byte),
                    "n {n}, byte {i}"
                );
            }
            assert_eq!(filter_byte(text(&f).as_bytes(), whole.len() + 3), None);
            assert!(ids.iter().all(|id| f.may_contain(id)), "n {n}");
        }
        // A filter whose data does not decode is no filter: every id may be there.
        let mut bad = IdFilter::build(["a", "b"]);
        bad.data = FilterData::Base64("!".repeat(bad.data.len() as usize));
        assert!(bad.may_contain("anything"));
    }

    #[test]
    fn a_deferred_filter_is_measured_checked_and_never_written() {
        let f = IdFilter::build(["a", "b", "c"]);
        let json = serde_json::to_string(&f).unwrap();
        let deferred: IdFilter = {
            let _defer = DeferFilters::start();
            serde_json::from_str(&json).unwrap()
        };
        assert_eq!(deferred.data, FilterData::Deferred { len: f.data.len() });
        deferred.validate().unwrap();
        assert!(serde_json::to_string(&deferred).is_err());
        // The guard ends with its scope: the same text parses whole again.
        let again: IdFilter = serde_json::from_str(&json).unwrap();
        assert_eq!(again, f);
        // A wrong length is refused deferred as it is whole.
        let short = json.replacen("\"data\":\"", "\"data\":\"AAAA", 1);
        let _defer = DeferFilters::start();
        let short: IdFilter = serde_json::from_str(&short).unwrap();
        assert!(short.validate().is_err());
    }
}
