//! Shards that lie with valid CRCs, for the tests of what readers check beyond CRCs: an index
//! rewritten to disagree with the frames, and the manifest entry refreshed to match the new
//! file (length, footer, SHA-256), as a hostile writer would produce.

use std::path::Path;

use editshard::format::wire::crc32;
use editshard::format::{FRAME_HEADER_LEN, FrameHeader, IndexFrame, Limits, TRAILER_LEN, Trailer};
use editshard::manifest::Manifest;
use sha2::{Digest, Sha256};

/// Rewrites a shard's index through `lie`, with a valid CRC, and a trailer whose record count
/// is what the new index lists.
pub fn rewrite_index(bytes: &[u8], lie: impl FnOnce(&mut IndexFrame)) -> Vec<u8> {
    let trailer_at = bytes.len() - TRAILER_LEN;
    let trailer = Trailer::parse(&bytes[trailer_at..], trailer_at as u64).unwrap();
    let at = trailer.index_offset as usize;
    let body = &bytes[at + FRAME_HEADER_LEN..trailer_at];
    let mut index = IndexFrame::parse_body(body, 0, &Limits::DEFAULT).unwrap();
    lie(&mut index);
    let body = index.encode_body(3);
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(
        &FrameHeader {
            body_len: body.len() as u32,
            body_crc: crc32(&body),
        }
        .encode(),
    );
    out.extend_from_slice(&body);
    let records = index
        .frames
        .iter()
        .filter_map(|f| f.table.as_ref())
        .map(|t| t.records.len() as u64)
        .sum();
    out.extend_from_slice(
        &Trailer {
            index_offset: at as u64,
            index_len: (FRAME_HEADER_LEN + body.len()) as u64,
            record_count: records,
        }
        .encode(),
    );
    out
}

/// Replaces shard `s` of the dataset in `dir` with `f` of its bytes, and refreshes its
/// manifest entry's length, footer and SHA-256 (not its record count) so that only the
/// shard's contents lie.
pub fn replace_shard(dir: &Path, s: usize, f: impl FnOnce(Vec<u8>) -> Vec<u8>) {
    let manifest_path = dir.join("manifest.json");
    let mut manifest = Manifest::parse(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let entry = &mut manifest.shards[s];
    let path = dir.join(&entry.path);
    let bytes = f(std::fs::read(&path).unwrap());
    std::fs::write(&path, &bytes).unwrap();
    let trailer_at = bytes.len().saturating_sub(TRAILER_LEN);
    if let Ok(trailer) = Trailer::parse(&bytes[trailer_at..], trailer_at as u64) {
        entry.footer_offset = trailer.index_offset;
        entry.footer_length = bytes.len() as u64 - trailer.index_offset;
    } else {
        entry.footer_offset = 0;
        entry.footer_length = bytes.len() as u64;
    }
    manifest.bytes = manifest.bytes - entry.bytes + bytes.len() as u64;
    entry.bytes = bytes.len() as u64;
    entry.sha256 = editshard::hex::hex(&Sha256::digest(&bytes));
    entry.crc64nvme = Some(editshard::crc64::encode(editshard::crc64::crc64nvme(
        &bytes,
    )));
    // The id filter in step with the ids the (possibly lying) index now names.
    if let Ok(shard) = editshard::shard::RandomAccessShard::open(bytes.clone(), entry.path.clone())
    {
        let ids = shard.index().records().map(|r| r.id);
        entry.id_filter = editshard::manifest::IdFilter::build(ids);
    }
    std::fs::write(&manifest_path, manifest.to_json().unwrap()).unwrap();
}

/// Renames record `from` to `to` (ids of equal length) in its group frame and in the index,
/// with valid CRCs: how a writer that ignores the uniqueness of ids would have written it.
pub fn rename_record(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    use editshard::format::wire::Cursor;
    use editshard::format::{FRAME_GROUP, GroupTable, HEADER_LEN};
    assert_eq!(from.len(), to.len(), "the ids must have equal lengths");
    let rename = |table: &mut GroupTable| {
        for r in &mut table.records {
            if r.id == from {
                r.id = to.to_string();
            }
        }
    };
    let trailer_at = bytes.len() - TRAILER_LEN;
    let index_at = Trailer::parse(&bytes[trailer_at..], trailer_at as u64)
        .unwrap()
        .index_offset as usize;
    let mut out = bytes.to_vec();
    let mut at = HEADER_LEN;
    while at < index_at {
        let header = FrameHeader::parse(&out[at..at + FRAME_HEADER_LEN], at as u64).unwrap();
        let body_at = at + FRAME_HEADER_LEN;
        let body_end = body_at + header.body_len as usize;
        if out[body_at] == FRAME_GROUP {
            let mut c = Cursor::new(&out[body_at + 2..body_end], 0);
            let mut table = GroupTable::parse(&mut c, &Limits::DEFAULT).unwrap();
            let table_len = c.position();
            rename(&mut table);
            let mut encoded = Vec::new();
            table.encode(&mut encoded);
            out[body_at + 2..body_at + 2 + table_len].copy_from_slice(&encoded);
            let crc = crc32(&out[body_at..body_end]);
            out[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        }
        at = body_end;
    }
    rewrite_index(&out, |index| {
        for f in &mut index.frames {
            if let Some(t) = f.table.as_mut() {
                rename(t);
            }
        }
    })
}

/// Rewrites the shard of the dataset in `dir` that holds record `id` so that the SHA-256 its
/// first edit's metadata claims is that of other bytes, every CRC valid and the index
/// describing the frames exactly: what a writer that does not check hashes and mixes up its
/// images would write. Only `Verify::Full` (and `editshard verify`) can tell. The manifest
/// entry is refreshed as [`replace_shard`] does.
pub fn claim_a_false_hash(dir: &Path, id: &str) {
    use editshard::shard::{RandomAccessShard, ShardReader, ShardWriter, WriterOptions};
    let manifest = Manifest::parse(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    for (s, entry) in manifest.shards.iter().enumerate() {
        let bytes = std::fs::read(dir.join(&entry.path)).unwrap();
        let shard = RandomAccessShard::open(bytes.clone(), entry.path.clone()).unwrap();
        if shard.index().position(id).is_none() {
            continue;
        }
        let options = WriterOptions {
            verify_hashes: false,
            ..WriterOptions::default()
        };
        let mut w = ShardWriter::with_options(Vec::new(), options).unwrap();
        for r in ShardReader::new(&bytes[..]) {
            let mut r = r.unwrap();
            if r.id == id {
                r.turns[0].output.sha256 = Sha256::digest(b"not the bytes stored").into();
            }
            w.append(&r).unwrap();
        }
        let lying = w.finish().unwrap().0;
        replace_shard(dir, s, |_| lying);
        return;
    }
    panic!("no record {id:?} in {}", dir.display());
}
