//! Record metadata: everything about a record except its id, kind and image bytes, as a
//! tag-length-value message (spec/FORMAT.md, "Record metadata").
//!
//! A message is a sequence of fields `varint tag | varint len | value`. Readers skip fields
//! whose tag they do not know, so a v1.x writer can add fields that v1.0 readers ignore.

use super::wire::{Cursor, put_varint};
use crate::error::{Error, Result};
use crate::record::{Image, Provenance, Record, Score, Turn};

mod tag {
    pub const RECORD_SOURCE: u64 = 1;
    pub const RECORD_TURN: u64 = 2;
    pub const RECORD_PROVENANCE: u64 = 3;
    pub const RECORD_EXTRAS: u64 = 4;

    pub const IMAGE_MEDIA_TYPE: u64 = 1;
    pub const IMAGE_WIDTH: u64 = 2;
    pub const IMAGE_HEIGHT: u64 = 3;
    pub const IMAGE_SHA256: u64 = 4;
    pub const IMAGE_URL: u64 = 5;
    pub const IMAGE_PATH: u64 = 6;
    pub const IMAGE_ROTATION: u64 = 7;
    pub const IMAGE_SCORE: u64 = 8;
    pub const IMAGE_CAPTION: u64 = 9;

    pub const TURN_INSTRUCTION: u64 = 1;
    pub const TURN_SHORT_INSTRUCTION: u64 = 2;
    pub const TURN_EDIT_TYPE: u64 = 3;
    pub const TURN_CATEGORY: u64 = 4;
    pub const TURN_OUTPUT: u64 = 5;
    pub const TURN_REJECTED: u64 = 6;
    pub const TURN_MASK: u64 = 7;
    pub const TURN_INSTRUCTION_VARIANT: u64 = 8;

    pub const PROV_SUBSET: u64 = 1;
    pub const PROV_FILE: u64 = 2;
    pub const PROV_LINE: u64 = 3;
    pub const PROV_LICENCE: u64 = 4;
    pub const PROV_DATASET: u64 = 5;
    pub const PROV_REVISION: u64 = 6;
    pub const PROV_ROW_GROUP: u64 = 7;
    pub const PROV_ROW: u64 = 8;

    pub const SCORE_NAME: u64 = 1;
    pub const SCORE_VALUE: u64 = 2;
}

// ---------------------------------------------------------------------------------------------
// Encoding

fn field(out: &mut Vec<u8>, tag: u64, value: &[u8]) {
    put_varint(out, tag);
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

fn field_str(out: &mut Vec<u8>, tag: u64, value: &Option<String>) {
    if let Some(v) = value {
        field(out, tag, v.as_bytes());
    }
}

fn field_uint(out: &mut Vec<u8>, tag: u64, value: u64) {
    let mut v = Vec::with_capacity(10);
    put_varint(&mut v, value);
    field(out, tag, &v);
}

fn message(out: &mut Vec<u8>, tag: u64, encode: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    encode(&mut inner);
    field(out, tag, &inner);
}

fn encode_image(out: &mut Vec<u8>, image: &Image) {
    field(out, tag::IMAGE_MEDIA_TYPE, image.media_type.as_bytes());
    field_uint(out, tag::IMAGE_WIDTH, image.width.into());
    field_uint(out, tag::IMAGE_HEIGHT, image.height.into());
    field(out, tag::IMAGE_SHA256, &image.sha256);
    field_str(out, tag::IMAGE_URL, &image.url);
    field_str(out, tag::IMAGE_PATH, &image.path);
    if let Some(r) = image.rotation {
        field_uint(out, tag::IMAGE_ROTATION, r.into());
    }
    for s in &image.scores {
        message(out, tag::IMAGE_SCORE, |m| {
            field(m, tag::SCORE_NAME, s.name.as_bytes());
            field(m, tag::SCORE_VALUE, &s.value.to_le_bytes());
        });
    }
    field_str(out, tag::IMAGE_CAPTION, &image.caption);
}

/// Encodes a record's metadata (fields in ascending tag order, absent options omitted).
pub fn encode(record: &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    message(&mut out, tag::RECORD_SOURCE, |m| {
        encode_image(m, &record.source)
    });
    for turn in &record.turns {
        message(&mut out, tag::RECORD_TURN, |m| {
            field_str(m, tag::TURN_INSTRUCTION, &turn.instruction);
            field_str(m, tag::TURN_SHORT_INSTRUCTION, &turn.short_instruction);
            field_str(m, tag::TURN_EDIT_TYPE, &turn.edit_type);
            field_str(m, tag::TURN_CATEGORY, &turn.category);
            message(m, tag::TURN_OUTPUT, |i| encode_image(i, &turn.output));
            for r in &turn.rejected {
                message(m, tag::TURN_REJECTED, |i| encode_image(i, r));
            }
            if let Some(mask) = &turn.mask {
                message(m, tag::TURN_MASK, |i| encode_image(i, mask));
            }
            for v in &turn.instruction_variants {
                field(m, tag::TURN_INSTRUCTION_VARIANT, v.as_bytes());
            }
        });
    }
    let p = &record.provenance;
    if *p != Provenance::default() {
        message(&mut out, tag::RECORD_PROVENANCE, |m| {
            field_str(m, tag::PROV_SUBSET, &p.subset);
            field_str(m, tag::PROV_FILE, &p.file);
            if let Some(line) = p.line {
                field_uint(m, tag::PROV_LINE, line);
            }
            field_str(m, tag::PROV_LICENCE, &p.licence);
            field_str(m, tag::PROV_DATASET, &p.dataset);
            field_str(m, tag::PROV_REVISION, &p.revision);
            if let Some(g) = p.row_group {
                field_uint(m, tag::PROV_ROW_GROUP, g);
            }
            if let Some(row) = p.row {
                field_uint(m, tag::PROV_ROW, row);
            }
        });
    }
    if !record.extras.is_empty() {
        let json = serde_json::to_vec(&record.extras).expect("a JSON map always serializes");
        field(&mut out, tag::RECORD_EXTRAS, &json);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// Iterates over the fields of one message, yielding `(tag, value cursor)`.
struct Fields<'a> {
    c: Cursor<'a>,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8], base: u64) -> Self {
        Fields {
            c: Cursor::new(bytes, base),
        }
    }

    fn next(&mut self) -> Result<Option<(u64, Cursor<'a>)>> {
        if self.c.is_empty() {
            return Ok(None);
        }
        let tag = self.c.varint_in("field tag", 1, u64::from(u32::MAX))?;
        let len = self
            .c
            .varint_in("field length", 0, self.c.remaining() as u64)?;
        let base = self.c.offset();
        let value = self.c.bytes("field value", len as usize)?;
        Ok(Some((tag, Cursor::new(value, base))))
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, what: &str, at: u64) -> Result<()> {
    if slot.is_some() {
        return Err(Error::malformed(format!("{what} appears twice")).at_offset(at));
    }
    *slot = Some(value);
    Ok(())
}

fn string(mut v: Cursor<'_>, what: &str) -> Result<String> {
    let len = v.remaining();
    Ok(v.utf8(what, len)?.to_string())
}

fn uint(mut v: Cursor<'_>, what: &str, max: u64) -> Result<u64> {
    let n = v.varint_in(what, 0, max)?;
    v.finish(what)?;
    Ok(n)
}

fn required<T>(slot: Option<T>, what: &str, at: u64) -> Result<T> {
    slot.ok_or_else(|| Error::malformed(format!("{what} is missing")).at_offset(at))
}

fn decode_score(v: Cursor<'_>) -> Result<Score> {
    let start = v.offset();
    let mut fields = Fields { c: v };
    let (mut name, mut value) = (None, None);
    while let Some((tag, mut f)) = fields.next()? {
        let at = f.offset();
        match tag {
            tag::SCORE_NAME => set_once(&mut name, string(f, "score name")?, "score name", at)?,
            tag::SCORE_VALUE => {
                let bits = f.u32("score value")?;
                f.finish("score value")?;
                set_once(&mut value, f32::from_bits(bits), "score value", at)?
            }
            _ => {}
        }
    }
    Ok(Score {
        name: required(name, "score name", start)?,
        value: required(value, "score value", start)?,
    })
}

fn decode_image(v: Cursor<'_>) -> Result<Image> {
    let start = v.offset();
    let mut fields = Fields { c: v };
    let (mut media_type, mut width, mut height, mut sha256) = (None, None, None, None);
    let (mut url, mut path, mut rotation, mut caption) = (None, None, None, None);
    let mut scores = Vec::new();
    while let Some((tag, mut f)) = fields.next()? {
        let at = f.offset();
        match tag {
            tag::IMAGE_MEDIA_TYPE => {
                set_once(&mut media_type, string(f, "media type")?, "media type", at)?
            }
            tag::IMAGE_WIDTH => set_once(
                &mut width,
                uint(f, "width", u32::MAX.into())? as u32,
                "width",
                at,
            )?,
            tag::IMAGE_HEIGHT => set_once(
                &mut height,
                uint(f, "height", u32::MAX.into())? as u32,
                "height",
                at,
            )?,
            tag::IMAGE_SHA256 => {
                let bytes: [u8; 32] = f
                    .bytes("SHA-256", 32)?
                    .try_into()
                    .expect("exactly 32 bytes");
                f.finish("SHA-256")?;
                set_once(&mut sha256, bytes, "SHA-256", at)?
            }
            tag::IMAGE_URL => set_once(&mut url, string(f, "image URL")?, "image URL", at)?,
            tag::IMAGE_PATH => set_once(&mut path, string(f, "image path")?, "image path", at)?,
            tag::IMAGE_ROTATION => set_once(
                &mut rotation,
                uint(f, "rotation", u16::MAX.into())? as u16,
                "rotation",
                at,
            )?,
            tag::IMAGE_SCORE => scores.push(decode_score(f)?),
            tag::IMAGE_CAPTION => set_once(&mut caption, string(f, "caption")?, "caption", at)?,
            _ => {}
        }
    }
    Ok(Image {
        media_type: required(media_type, "image media type", start)?,
        width: required(width, "image width", start)?,
        height: required(height, "image height", start)?,
        len: 0,
        sha256: required(sha256, "image SHA-256", start)?,
        url,
        path,
        rotation,
        scores,
        caption,
        data: None,
    })
}

fn decode_turn(v: Cursor<'_>) -> Result<Turn> {
    let start = v.offset();
    let mut fields = Fields { c: v };
    let (mut instruction, mut short, mut edit_type, mut category, mut output) =
        (None, None, None, None, None);
    let (mut rejected, mut mask, mut variants) = (Vec::new(), None, Vec::new());
    while let Some((tag, f)) = fields.next()? {
        let at = f.offset();
        match tag {
            tag::TURN_INSTRUCTION => set_once(
                &mut instruction,
                string(f, "instruction")?,
                "instruction",
                at,
            )?,
            tag::TURN_SHORT_INSTRUCTION => set_once(
                &mut short,
                string(f, "short instruction")?,
                "short instruction",
                at,
            )?,
            tag::TURN_EDIT_TYPE => {
                set_once(&mut edit_type, string(f, "edit type")?, "edit type", at)?
            }
            tag::TURN_CATEGORY => set_once(&mut category, string(f, "category")?, "category", at)?,
            tag::TURN_OUTPUT => set_once(&mut output, decode_image(f)?, "turn output", at)?,
            tag::TURN_REJECTED => rejected.push(decode_image(f)?),
            tag::TURN_MASK => set_once(&mut mask, decode_image(f)?, "mask", at)?,
            tag::TURN_INSTRUCTION_VARIANT => variants.push(string(f, "instruction variant")?),
            _ => {}
        }
    }
    Ok(Turn {
        instruction,
        short_instruction: short,
        edit_type,
        category,
        output: required(output, "turn output image", start)?,
        rejected,
        mask,
        instruction_variants: variants,
    })
}

fn decode_provenance(v: Cursor<'_>) -> Result<Provenance> {
    let mut fields = Fields { c: v };
    let mut p = Provenance::default();
    while let Some((tag, f)) = fields.next()? {
        let at = f.offset();
        match tag {
            tag::PROV_SUBSET => set_once(&mut p.subset, string(f, "subset")?, "subset", at)?,
            tag::PROV_FILE => set_once(&mut p.file, string(f, "file")?, "file", at)?,
            tag::PROV_LINE => set_once(&mut p.line, uint(f, "line", u64::MAX)?, "line", at)?,
            tag::PROV_LICENCE => set_once(&mut p.licence, string(f, "licence")?, "licence", at)?,
            tag::PROV_DATASET => set_once(&mut p.dataset, string(f, "dataset")?, "dataset", at)?,
            tag::PROV_REVISION => {
                set_once(&mut p.revision, string(f, "revision")?, "revision", at)?
            }
            tag::PROV_ROW_GROUP => set_once(
                &mut p.row_group,
                uint(f, "row group", u64::MAX)?,
                "row group",
                at,
            )?,
            tag::PROV_ROW => set_once(&mut p.row, uint(f, "row", u64::MAX)?, "row", at)?,
            _ => {}
        }
    }
    Ok(p)
}

/// Decodes a metadata block into a record without image bytes. `id` and `kind` come from the
/// group table; `image_lens` gives each image's byte length in canonical order, and its
/// length must equal the number of images the metadata describes. `base` is the block's
/// absolute offset (for a compressed block, the offset of the stored block).
pub fn decode(
    raw: &[u8],
    base: u64,
    id: &str,
    kind: crate::record::Kind,
    image_lens: &[u64],
) -> Result<Record> {
    let mut fields = Fields::new(raw, base);
    let mut source = None;
    let mut turns = Vec::new();
    let mut provenance = None;
    let mut extras = None;
    while let Some((tag, f)) = fields.next()? {
        let at = f.offset();
        match tag {
            tag::RECORD_SOURCE => set_once(&mut source, decode_image(f)?, "source image", at)?,
            tag::RECORD_TURN => turns.push(decode_turn(f)?),
            tag::RECORD_PROVENANCE => {
                set_once(&mut provenance, decode_provenance(f)?, "provenance", at)?
            }
            tag::RECORD_EXTRAS => {
                let map: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_slice(f.rest()).map_err(|e| {
                        Error::malformed(format!("extras are not a JSON object: {e}")).at_offset(at)
                    })?;
                set_once(&mut extras, map, "extras", at)?
            }
            _ => {}
        }
    }
    let mut record = Record {
        id: id.to_string(),
        kind,
        source: required(source, "source image", base)?,
        turns,
        provenance: provenance.unwrap_or_default(),
        extras: extras.unwrap_or_default(),
    };
    let count = record.images().count();
    if count != image_lens.len() {
        return Err(Error::malformed(format!(
            "the metadata describes {count} images but the group table references {}",
            image_lens.len()
        ))
        .at_offset(base));
    }
    for (image, &len) in record.images_mut().zip(image_lens) {
        image.len = len;
    }
    Ok(record)
}
