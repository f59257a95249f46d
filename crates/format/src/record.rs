//! The data model: one [`Record`] type for every kind of row.
//!
//! A record is a source image and a list of [`Turn`]s. A single-turn SFT row has one turn; a
//! preference row has one turn whose output is the chosen edit and whose `rejected` list holds
//! the failed edits; a multi-turn session has one turn per instruction. Everything in a source
//! row that has no field of its own goes to [`Record::extras`], so nothing is ever dropped.
//!
//! ```
//! use editshard_format::record::{Image, Kind, Record, Turn};
//! # fn png(w: u32, h: u32) -> Vec<u8> { // a PNG header: all that `from_bytes` reads
//! #     let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
//! #     v.extend_from_slice(&w.to_be_bytes());
//! #     v.extend_from_slice(&h.to_be_bytes());
//! #     v.extend_from_slice(&[8, 2, 0, 0, 0]);
//! #     let crc = crc32fast::hash(&v[12..29]);
//! #     v.extend_from_slice(&crc.to_be_bytes());
//! #     v
//! # }
//! let source = Image::from_bytes(png(2, 1).into()).unwrap();
//! assert_eq!((source.media_type.as_str(), source.width, source.height), ("image/png", 2, 1));
//! let mut turn = Turn::new(source.clone());
//! turn.instruction = Some("Make the sky purple".into());
//! let record = Record::new("sft/images/positive-edit/1.png", Kind::Sft, source, vec![turn]);
//! assert_eq!(record.images().count(), 2);
//! ```

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::hex::hex;

/// Which subset of a release a record came from; decides how its turns are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Anything that is not one of the release's three subsets.
    Generic = 0,
    /// Single-turn supervised example: source, instruction, successful edit.
    Sft = 1,
    /// Single turn with a chosen edit (`output`) and one or more `rejected` edits.
    Preference = 2,
    /// A session of several instructions, one edited image per turn.
    MultiTurn = 3,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Generic, Kind::Sft, Kind::Preference, Kind::MultiTurn];

    pub fn code(self) -> u8 {
        self as u8
    }
    pub fn from_code(code: u8) -> Option<Kind> {
        Kind::ALL.get(code as usize).copied()
    }
    /// The name used in manifests, JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Generic => "generic",
            Kind::Sft => "sft",
            Kind::Preference => "preference",
            Kind::MultiTurn => "multi-turn",
        }
    }
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A named score, e.g. `("instruction_compliance", 0.8)`. Order is kept as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub name: String,
    pub value: f32,
}

/// One stored image and what is known about it.
///
/// `data` holds the bytes exactly as they were received: editshard never re-encodes. It is
/// `None` when a reader was asked for metadata only; `len` and `sha256` are always present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// IANA media type: `image/jpeg`, `image/png`, `image/webp`, or whatever the writer saw.
    pub media_type: String,
    pub width: u32,
    pub height: u32,
    /// Length of the image bytes.
    pub len: u64,
    /// SHA-256 of the image bytes.
    #[serde(with = "hex32")]
    pub sha256: [u8; 32],
    /// The URL the bytes were fetched from, as written in the source row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The path relative to the release root, as written in the source row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Counter-clockwise rotation in degrees recorded by the source (Open Images `Rotation`).
    /// The pixels are not rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<Score>,
    /// A description of the image (format 1.1): InstructPix2Pix's `original_prompt` and
    /// `edited_prompt`, UltraEdit's source and target captions, HQ-Edit's descriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(skip)]
    pub data: Option<Bytes>,
}

/// One instruction and its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// The full instruction (`text` in the release, or a multi-turn prompt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction: Option<String>,
    /// The short instruction (`summarized_text`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_instruction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The edited image (for preference rows: the chosen one).
    pub output: Image,
    /// Failed edits of the same instruction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Image>,
    /// The region the edit may change (format 1.1), as the dataset gives it (MagicBrush and
    /// UltraEdit: white marks the region). Stored after the turn's rejected images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<Image>,
    /// Other phrasings of the same instruction (format 1.1), in the dataset's order
    /// (OmniEdit's `edited_prompt_list`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instruction_variants: Vec<String>,
}

/// Where a record came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Subset name as in the release (`sft`, `preference`, `multi-turn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    /// The file the row was read from, relative to the release root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line number of the row in `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
    /// The dataset the row came from, e.g. `osunlp/MagicBrush` (format 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// The dataset's revision (a Hub commit, a release tag) (format 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The Parquet row group of `file` the row was in, from 0 (format 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_group: Option<u64>,
    /// The row's position in `file`, from 0 across all row groups (format 1.1). Rows of a
    /// multi-turn session read from several rows name the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
}

/// One example: a source image, its turns, and everything else the row carried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Stable, unique within a dataset: the release's natural key, e.g.
    /// `sft/images/positive-edit/1.png`.
    pub id: String,
    pub kind: Kind,
    pub source: Image,
    pub turns: Vec<Turn>,
    #[serde(default)]
    pub provenance: Provenance,
    /// Fields of the source row that have no place above, kept verbatim.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extras: serde_json::Map<String, serde_json::Value>,
}

impl Image {
    /// Describes `data`: sniffs the media type from its magic bytes, reads the dimensions from
    /// its header (no pixel decoding) and hashes it. Fails on anything that is not a JPEG, PNG
    /// or WebP with a readable header.
    pub fn from_bytes(data: Bytes) -> Result<Image> {
        let info = crate::image_info::probe(&data)?;
        Ok(Image::with_info(
            data,
            info.media_type.to_string(),
            info.width,
            info.height,
        ))
    }

    /// Describes `data` with a caller-supplied media type and size (for formats `probe` does
    /// not know). Only the hash and length are computed.
    pub fn with_info(data: Bytes, media_type: String, width: u32, height: u32) -> Image {
        Image {
            media_type,
            width,
            height,
            len: data.len() as u64,
            sha256: Sha256::digest(&data).into(),
            url: None,
            path: None,
            rotation: None,
            scores: Vec::new(),
            caption: None,
            data: Some(data),
        }
    }

    /// The SHA-256 as lower-case hex.
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }

    /// Checks that `data`, if present, has the recorded length and hash.
    pub fn check_data(&self) -> Result<()> {
        let Some(data) = &self.data else {
            return Ok(());
        };
        if data.len() as u64 != self.len {
            return Err(Error::malformed(format!(
                "image is {} bytes but its metadata says {}",
                data.len(),
                self.len
            )));
        }
        let actual: [u8; 32] = Sha256::digest(data).into();
        if actual != self.sha256 {
            return Err(Error::malformed(format!(
                "image SHA-256 is {} but its metadata says {}",
                hex(&actual),
                self.sha256_hex()
            )));
        }
        Ok(())
    }
}

impl Turn {
    pub fn new(output: Image) -> Turn {
        Turn {
            instruction: None,
            short_instruction: None,
            edit_type: None,
            category: None,
            output,
            rejected: Vec::new(),
            mask: None,
            instruction_variants: Vec::new(),
        }
    }
}

impl Record {
    pub fn new(id: impl Into<String>, kind: Kind, source: Image, turns: Vec<Turn>) -> Record {
        Record {
            id: id.into(),
            kind,
            source,
            turns,
            provenance: Provenance::default(),
            extras: serde_json::Map::new(),
        }
    }

    /// Every image in the record's canonical order: the source, then for each turn its output,
    /// its rejected images and its mask. The format stores image references in this order.
    pub fn images(&self) -> impl Iterator<Item = &Image> {
        std::iter::once(&self.source).chain(self.turns.iter().flat_map(|t| {
            std::iter::once(&t.output)
                .chain(t.rejected.iter())
                .chain(t.mask.iter())
        }))
    }

    /// Mutable counterpart of [`Record::images`], in the same order.
    pub fn images_mut(&mut self) -> impl Iterator<Item = &mut Image> {
        std::iter::once(&mut self.source).chain(self.turns.iter_mut().flat_map(|t| {
            std::iter::once(&mut t.output)
                .chain(t.rejected.iter_mut())
                .chain(t.mask.iter_mut())
        }))
    }

    /// Whether the record uses a field that format 1.0 does not have (a mask, a caption,
    /// instruction variants, or the 1.1 provenance fields); such a record needs a 1.1 shard.
    pub fn needs_v1_1(&self) -> bool {
        let p = &self.provenance;
        self.images().any(|i| i.caption.is_some())
            || self
                .turns
                .iter()
                .any(|t| t.mask.is_some() || !t.instruction_variants.is_empty())
            || p.dataset.is_some()
            || p.revision.is_some()
            || p.row_group.is_some()
            || p.row.is_some()
    }

    /// Drops all image bytes, keeping the metadata (length, hash, size).
    pub fn strip_data(&mut self) {
        for image in self.images_mut() {
            image.data = None;
        }
    }

    /// The record as a JSON value: all metadata, no image bytes.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a record always serializes")
    }
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::hex::hex(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        crate::hex::unhex32(&s).ok_or_else(|| D::Error::custom("expected 64 hex digits"))
    }
}
