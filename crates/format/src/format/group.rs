//! The group table: the head of a group frame, listing its records and the images they share.
//! The index repeats every group's table byte for byte, so the same parser serves both.
//!
//! ```text
//! varint n_records | varint n_blobs
//! n_records x { varint id_len | id | u8 kind | u8 meta_codec | varint meta_len | u32 meta_crc
//!               | varint n_refs | n_refs x varint blob }
//! n_blobs   x { varint len | u32 crc }
//! ```
//! The frame's data follows the table: every record's metadata block in record order, then
//! every blob in blob order.

use super::Limits;
use super::wire::{Cursor, put_varint, varint_len};
use crate::error::{Error, Result};
use crate::record::Kind;

/// One record of a group, as the table describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEntry {
    pub id: String,
    pub kind: Kind,
    pub meta_codec: u8,
    /// Stored (possibly compressed) length of the metadata block.
    pub meta_len: u32,
    /// CRC32 of the stored metadata block.
    pub meta_crc: u32,
    /// Blob index of each of the record's images, in canonical image order
    /// (see [`crate::record::Record::images`]).
    pub refs: Vec<u32>,
}

/// One distinct image of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobEntry {
    pub len: u32,
    pub crc: u32,
}

/// A parsed group table with where its entries are in the bytes it was parsed from.
#[derive(Debug, Clone)]
pub struct LocatedTable {
    pub table: GroupTable,
    /// Cursor position of each record's entry (its id length).
    pub record_at: Vec<usize>,
    /// Cursor position of each blob's entry (its length).
    pub blob_at: Vec<usize>,
}

/// What [`GroupTable::scan`] tells of a table it checked.
pub(crate) struct ScannedTable<'a> {
    pub records: usize,
    pub blobs: usize,
    /// Total length of the data that follows the table.
    pub data_len: u64,
    /// The first record whose metadata uses the shard's dictionary (codec 2).
    pub first_dict_id: Option<&'a str>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupTable {
    pub records: Vec<RecordEntry>,
    pub blobs: Vec<BlobEntry>,
}

impl GroupTable {
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.records.len() as u64);
        put_varint(out, self.blobs.len() as u64);
        for r in &self.records {
            put_varint(out, r.id.len() as u64);
            out.extend_from_slice(r.id.as_bytes());
            out.push(r.kind.code());
            out.push(r.meta_codec);
            put_varint(out, u64::from(r.meta_len));
            out.extend_from_slice(&r.meta_crc.to_le_bytes());
            put_varint(out, r.refs.len() as u64);
            for &b in &r.refs {
                put_varint(out, u64::from(b));
            }
        }
        for b in &self.blobs {
            put_varint(out, u64::from(b.len));
            out.extend_from_slice(&b.crc.to_le_bytes());
        }
    }

    /// Parses a table and checks it is self-consistent: counts and lengths within `limits`,
    /// every reference naming an existing blob, every blob referenced.
    pub fn parse(c: &mut Cursor<'_>, limits: &Limits) -> Result<GroupTable> {
        Self::parse_located(c, limits).map(|located| located.table)
    }

    /// [`Self::parse`], also returning where each record's and each blob's entry starts
    /// (as [`Cursor::position`]s): what an index read in place keeps instead of the table.
    pub fn parse_located(c: &mut Cursor<'_>, limits: &Limits) -> Result<LocatedTable> {
        let mut record_at = Vec::new();
        let mut blob_at = Vec::new();
        let n_records = c.varint_in("group record count", 1, limits.max_group_records.into())?;
        let n_blobs = c.varint_in("group blob count", 0, limits.max_group_blobs.into())?;
        let mut table = GroupTable::default();
        for _ in 0..n_records {
            record_at.push(c.position());
            let mut refs = Vec::new();
            let entry = record_entry(c, limits, n_blobs, |b| refs.push(b as u32))?;
            table.records.push(RecordEntry {
                id: entry.id.to_string(),
                kind: entry.kind,
                meta_codec: entry.meta_codec,
                meta_len: entry.meta_len as u32,
                meta_crc: entry.meta_crc,
                refs,
            });
        }
        for _ in 0..n_blobs {
            blob_at.push(c.position());
            let len = c.varint_in("blob length", 1, limits.max_frame_len.into())? as u32;
            let crc = c.u32("blob CRC")?;
            table.blobs.push(BlobEntry { len, crc });
        }
        let mut used = vec![false; table.blobs.len()];
        for r in &table.records {
            for &b in &r.refs {
                used[b as usize] = true;
            }
        }
        if let Some(unused) = used.iter().position(|u| !u) {
            return Err(Error::malformed(format!(
                "blob {unused} of the group is not referenced by any record"
            ))
            .at_offset(c.offset()));
        }
        Ok(LocatedTable {
            table,
            record_at,
            blob_at,
        })
    }

    /// Checks a table as [`Self::parse_located`] does, with the same errors, without building
    /// it (loading a footer again after the reader's cache dropped it is then a walk over its
    /// bytes, not an allocation per record): each record's entry position and its metadata's
    /// offset in the frame's data go to `records`, each blob's to `blobs`, as u32 (an index
    /// payload is at most `max_index_len` and a frame's data at most `max_frame_len`, both
    /// u32; a table whose lengths overflow the latter is refused by the caller, which checks
    /// `data_len` against the frame's length). `used` is scratch space, reused from table to
    /// table.
    pub(crate) fn scan<'a>(
        c: &mut Cursor<'a>,
        limits: &Limits,
        used: &mut Vec<bool>,
        records: &mut Vec<(u32, u32)>,
        blobs: &mut Vec<(u32, u32)>,
    ) -> Result<ScannedTable<'a>> {
        let n_records = c.varint_in("group record count", 1, limits.max_group_records.into())?;
        let n_blobs = c.varint_in("group blob count", 0, limits.max_group_blobs.into())?;
        used.clear();
        used.resize(n_blobs as usize, false);
        let mut meta_at = 0u64;
        let mut first_dict_id = None;
        for _ in 0..n_records {
            let entry_at = c.position();
            let entry = record_entry(c, limits, n_blobs, |b| used[b as usize] = true)?;
            if entry.meta_codec == super::CODEC_ZSTD_DICT && first_dict_id.is_none() {
                first_dict_id = Some(entry.id);
            }
            let meta_len = entry.meta_len;
            records.push((entry_at as u32, meta_at as u32));
            meta_at += meta_len;
        }
        let mut data_at = meta_at;
        for _ in 0..n_blobs {
            let entry_at = c.position();
            let len = c.varint_in("blob length", 1, limits.max_frame_len.into())?;
            c.u32("blob CRC")?;
            blobs.push((entry_at as u32, data_at as u32));
            data_at += len;
        }
        if let Some(unused) = used.iter().position(|u| !u) {
            return Err(Error::malformed(format!(
                "blob {unused} of the group is not referenced by any record"
            ))
            .at_offset(c.offset()));
        }
        Ok(ScannedTable {
            records: n_records as usize,
            blobs: n_blobs as usize,
            data_len: data_at,
            first_dict_id,
        })
    }

    /// Length of [`encode`](Self::encode)'s output, without encoding.
    pub fn encoded_len(&self) -> usize {
        let records: usize = self
            .records
            .iter()
            .map(|r| {
                varint_len(r.id.len() as u64)
                    + r.id.len()
                    + 2
                    + varint_len(u64::from(r.meta_len))
                    + 4
                    + varint_len(r.refs.len() as u64)
                    + r.refs
                        .iter()
                        .map(|&b| varint_len(u64::from(b)))
                        .sum::<usize>()
            })
            .sum();
        let blobs: usize = self
            .blobs
            .iter()
            .map(|b| varint_len(u64::from(b.len)) + 4)
            .sum();
        varint_len(self.records.len() as u64)
            + varint_len(self.blobs.len() as u64)
            + records
            + blobs
    }

    /// Total length of the data that follows the table.
    pub fn data_len(&self) -> u64 {
        let metas: u64 = self.records.iter().map(|r| u64::from(r.meta_len)).sum();
        let blobs: u64 = self.blobs.iter().map(|b| u64::from(b.len)).sum();
        metas + blobs
    }

    /// Offset of each record's metadata block, relative to the start of the data.
    pub fn meta_offsets(&self) -> Vec<u64> {
        prefix_sums(self.records.iter().map(|r| u64::from(r.meta_len)), 0)
    }

    /// Offset of each blob, relative to the start of the data.
    pub fn blob_offsets(&self) -> Vec<u64> {
        let metas: u64 = self.records.iter().map(|r| u64::from(r.meta_len)).sum();
        prefix_sums(self.blobs.iter().map(|b| u64::from(b.len)), metas)
    }
}

fn prefix_sums(lens: impl Iterator<Item = u64>, start: u64) -> Vec<u64> {
    let mut at = start;
    lens.map(|len| {
        let here = at;
        at += len;
        here
    })
    .collect()
}

/// One record's entry of a group table, as read by [`record_entry`].
struct RawEntry<'a> {
    id: &'a str,
    kind: Kind,
    meta_codec: u8,
    meta_len: u64,
    meta_crc: u32,
}

/// Reads and checks one record's entry (section 5.1): id, kind, metadata codec, length and
/// CRC, and its image references, each below `n_blobs` and handed to `on_ref`. The one
/// reader of an entry for [`GroupTable::parse_located`] and [`GroupTable::scan`], so both
/// refuse the same bytes with the same errors.
fn record_entry<'a>(
    c: &mut Cursor<'a>,
    limits: &Limits,
    n_blobs: u64,
    mut on_ref: impl FnMut(u64),
) -> Result<RawEntry<'a>> {
    let id_len = c.varint_in("record id length", 1, limits.max_id_len.into())?;
    let id = c.utf8("record id", id_len as usize)?;
    let at = c.offset();
    let code = c.u8("record kind")?;
    let kind = Kind::from_code(code).ok_or_else(|| {
        Error::unsupported(format!("record kind {code} (known: 0 to 3)")).at_offset(at)
    })?;
    let at = c.offset();
    let meta_codec = c.u8("metadata codec")?;
    if meta_codec > super::CODEC_ZSTD_DICT {
        return Err(
            Error::unsupported(format!("metadata codec {meta_codec} (known: 0 to 2)"))
                .at_offset(at),
        );
    }
    let meta_len = c.varint_in("metadata length", 0, limits.max_meta_len.into())?;
    let meta_crc = c.u32("metadata CRC")?;
    let n_refs = c.varint_in("image count", 1, limits.max_record_images.into())?;
    for _ in 0..n_refs {
        let at = c.offset();
        let b = c.varint("image reference")?;
        if b >= n_blobs {
            return Err(Error::malformed(format!(
                "image reference {b} but the group has {n_blobs} blobs"
            ))
            .at_offset(at));
        }
        on_ref(b);
    }
    Ok(RawEntry {
        id,
        kind,
        meta_codec,
        meta_len,
        meta_crc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_len_matches_encode() {
        let table = GroupTable {
            records: vec![RecordEntry {
                id: "x".repeat(200),
                kind: Kind::Preference,
                meta_codec: 1,
                meta_len: 70_000,
                meta_crc: 7,
                refs: vec![0, 1, 200],
            }],
            blobs: (0..201)
                .map(|i| BlobEntry {
                    len: 1 << (i % 31),
                    crc: i,
                })
                .collect(),
        };
        let mut out = Vec::new();
        table.encode(&mut out);
        assert_eq!(table.encoded_len(), out.len());
    }
}
