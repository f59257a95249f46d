//! The image SHA-256 check of [`Verify::Full`](super::Verify::Full): that the bytes a record
//! points at are the image its metadata describes. CRCs cannot tell: a writer that pointed a
//! record at another stored image wrote valid CRCs for both.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::format::group::GroupTable;
use crate::hex::hex;
use crate::record::{Image, Record};

/// The SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The error for image bytes hashing to `actual` where the record's metadata says otherwise
/// (without its location, which the caller adds).
pub(crate) fn mismatch(actual: &[u8; 32], image: &Image) -> Error {
    Error::malformed(format!(
        "the image bytes the record points at have SHA-256 {}, but its metadata says {}",
        hex(actual),
        image.sha256_hex()
    ))
}

/// Checks every image of a streamed group's `records` against its record's SHA-256, hashing
/// each stored image (blob) once however many records share it. `body_at` and `body_len` are
/// the frame body's offset and length, `first_record` the shard-wide number of its first
/// record, all for the error's location.
pub(crate) fn check_group(
    table: &GroupTable,
    records: &[Record],
    body_at: u64,
    body_len: usize,
    first_record: u64,
) -> Result<()> {
    let data_at = body_at + body_len as u64 - table.data_len();
    let offsets = table.blob_offsets();
    let mut hashes: Vec<Option<[u8; 32]>> = vec![None; table.blobs.len()];
    for (i, (entry, record)) in table.records.iter().zip(records).enumerate() {
        for (image, &b) in record.images().zip(&entry.refs) {
            let Some(data) = &image.data else { continue };
            let hash = *hashes[b as usize].get_or_insert_with(|| sha256(data));
            if hash != image.sha256 {
                return Err(mismatch(&hash, image)
                    .at_offset(data_at + offsets[b as usize])
                    .at_record(first_record + i as u64)
                    .with_id(entry.id.clone()));
            }
        }
    }
    Ok(())
}
