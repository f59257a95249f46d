//! The metadata dictionary of format 1.1: a zstd dictionary (RFC 8878 section 5) carried by a
//! shard's dictionary frame (type 0x03) and repeated at the end of its index, with which
//! records' metadata blocks of codec 2 are compressed.
//!
//! One record's metadata is a few hundred bytes of field tags, URLs, paths and instructions
//! that every record of the shard shares in shape; compressed alone, zstd has no history to
//! draw on and saves little. A dictionary trained on the shard's first records gives it one.
//!
//! ```text
//! dictionary frame body = type 0x03 | flags 0 | dictionary bytes (magic 37 A4 30 EC, ...)
//! ```

use std::sync::Arc;

use bytes::Bytes;

use super::prepared;

use crate::error::{Error, Result};

/// The magic number a formatted zstd dictionary starts with (RFC 8878 section 5), little-endian.
pub const DICTIONARY_MAGIC: [u8; 4] = [0x37, 0xA4, 0x30, 0xEC];

/// A shard's metadata dictionary, checked. Cheap to clone. Its prepared form (what zstd
/// decompresses with) is not held here but in the process's bounded cache of prepared
/// dictionaries (see [`super::prepared`]), so that a reader holding many shards' indexes does
/// not hold as many prepared dictionaries.
#[derive(Clone)]
pub struct Dictionary {
    bytes: Bytes,
    digest: u64,
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dictionary")
            .field("len", &self.bytes.len())
            .field("id", &self.id())
            .finish()
    }
}

impl PartialEq for Dictionary {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl Eq for Dictionary {}

impl Dictionary {
    /// Checks `bytes` (a dictionary frame's body after type and flags): at most `max` bytes, a
    /// formatted zstd dictionary (its magic, then entropy tables zstd can load).
    pub fn parse(bytes: Bytes, max: u32) -> Result<Dictionary> {
        if bytes.len() > max as usize {
            return Err(Error::limit(format!(
                "metadata dictionary of {} bytes; the limit is {max}",
                bytes.len()
            )));
        }
        if bytes.len() < 8 || bytes[..4] != DICTIONARY_MAGIC {
            return Err(Error::malformed(
                "the dictionary frame does not hold a zstd dictionary (no dictionary magic \
                 37 A4 30 EC)",
            ));
        }
        let digest = prepared::digest(&bytes);
        // Preparing it checks it; the prepared form is cached for the records that follow.
        prepared::prepared(&bytes, digest).ok_or_else(damaged)?;
        Ok(Dictionary { bytes, digest })
    }

    /// The dictionary as stored.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The Dictionary_ID the dictionary declares (bytes 4..8).
    pub fn id(&self) -> u32 {
        u32::from_le_bytes(self.bytes[4..8].try_into().expect("checked on parse"))
    }

    /// The prepared form, from the process's cache or prepared again.
    pub(crate) fn prepared(&self) -> Result<Arc<zstd::zstd_safe::DDict<'static>>> {
        prepared::prepared(&self.bytes, self.digest).ok_or_else(damaged)
    }

    /// Trains a dictionary of at most `max_len` bytes on `samples` (zstd's ZDICT, fastCover,
    /// single-threaded, so the same samples always give the same bytes). `None` when zstd
    /// cannot train one (too few or too small samples).
    pub fn train(samples: &[Vec<u8>], max_len: usize) -> Option<Dictionary> {
        let trained = zstd::dict::from_samples(samples, max_len).ok()?;
        Dictionary::parse(Bytes::from(trained), u32::MAX).ok()
    }
}

fn damaged() -> Error {
    Error::malformed(
        "the dictionary frame's zstd dictionary is damaged (zstd cannot load its entropy \
         tables)",
    )
}

/// Compresses metadata blocks with one dictionary (the writer's side of codec 2).
pub struct DictCompressor {
    cctx: zstd::zstd_safe::CCtx<'static>,
    cdict: zstd::zstd_safe::CDict<'static>,
}

impl DictCompressor {
    pub fn new(dictionary: &Dictionary, level: i32) -> Result<DictCompressor> {
        use zstd::zstd_safe::{CCtx, CDict, CParameter};
        let cdict = CDict::try_create(dictionary.bytes(), level)
            .ok_or_else(|| Error::bug("zstd could not prepare the metadata dictionary"))?;
        let mut cctx = CCtx::try_create()
            .ok_or_else(|| Error::bug("zstd could not create a compression context"))?;
        let setup = |c: &mut CCtx<'static>| -> std::result::Result<(), usize> {
            c.set_parameter(CParameter::CompressionLevel(level))?;
            c.set_parameter(CParameter::ContentSizeFlag(true))?;
            // The shard has one dictionary: the frame need not name it (4 bytes a record).
            c.set_parameter(CParameter::DictIdFlag(false))?;
            c.set_parameter(CParameter::ChecksumFlag(false))?;
            c.set_parameter(CParameter::WindowLog(super::MAX_WINDOW_LOG.min(24)))?;
            Ok(())
        };
        setup(&mut cctx).map_err(|code| {
            Error::bug(format!(
                "zstd refused a parameter: {}",
                zstd::zstd_safe::get_error_name(code)
            ))
        })?;
        Ok(DictCompressor { cctx, cdict })
    }

    /// One zstd frame holding `raw`, compressed with the dictionary, declaring its size.
    pub fn compress(&mut self, raw: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(raw.len()));
        let name = |code| zstd::zstd_safe::get_error_name(code).to_string();
        self.cctx
            .ref_cdict(&self.cdict)
            .map_err(|c| Error::bug(format!("zstd: {}", name(c))))?;
        self.cctx
            .compress2(&mut out, raw)
            .map_err(|c| Error::bug(format!("zstd: {}", name(c))))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Vec<u8>> {
        (0..200)
            .map(|i| {
                format!(
                    "{{\"url\":\"https://farm{}.staticflickr.com/{}/{}_{:x}_o.jpg\",\
                     \"instruction\":\"Make the sky {} and add a {} to the left\"}}",
                    i % 9,
                    1000 + i * 7,
                    i * 7919,
                    i * 104_729,
                    ["purple", "red", "green"][i % 3],
                    ["cat", "dog", "boat", "tree"][i % 4]
                )
                .into_bytes()
            })
            .collect()
    }

    #[test]
    fn training_is_deterministic_and_compression_round_trips() {
        let a = Dictionary::train(&samples(), 4096).expect("trains");
        let b = Dictionary::train(&samples(), 4096).expect("trains");
        assert_eq!(
            a.bytes(),
            b.bytes(),
            "the same samples give the same dictionary"
        );
        assert!(a.bytes().len() <= 4096);
        let raw = &samples()[7];
        let packed = DictCompressor::new(&a, 3).unwrap().compress(raw).unwrap();
        assert!(
            packed.len() < raw.len() / 2,
            "{} of {}",
            packed.len(),
            raw.len()
        );
        let out = super::super::decode_block_with(2, &packed, 1 << 20, "m", Some(&a)).unwrap();
        assert_eq!(&out, raw);
        // Without the dictionary, codec 2 is an error that says so.
        let err = super::super::decode_block_with(2, &packed, 1 << 20, "m", None).unwrap_err();
        assert!(err.to_string().contains("dictionary"), "{err}");
    }

    #[test]
    fn damaged_or_oversized_dictionaries_are_refused() {
        let d = Dictionary::train(&samples(), 4096).unwrap();
        assert!(Dictionary::parse(d.bytes().clone(), 100).is_err());
        let mut bad = d.bytes().to_vec();
        bad[0] ^= 1;
        assert!(Dictionary::parse(Bytes::from(bad), 1 << 20).is_err());
        let mut cut = d.bytes().to_vec();
        cut.truncate(12);
        assert!(Dictionary::parse(Bytes::from(cut), 1 << 20).is_err());
    }
}
