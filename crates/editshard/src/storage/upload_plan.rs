//! How an object goes up to S3: in one PUT or in parts, of which size, how many at once, and
//! how much memory that takes.
//!
//! Measured against rclone on s3s-fs (bench/README.md, mirror): a 50 MB shard uploads
//! fastest in one streamed PUT (no part buffers, and no completion step, in which a store
//! reassembles the parts and an S3-compatible one like s3s-fs reads and hashes them all
//! again); concurrency then comes from the shards uploaded at once (`--jobs`). A shard of
//! gigabytes goes in parts so that one object moves over several connections, and a lost
//! connection costs one part, not the object.
//!
//! Memory: a streamed PUT holds only the source's chunks in flight (about 1 MiB). Parts are
//! held whole until their PUT is answered (a failed part is sent again from memory), so the
//! parts in memory at once, over every multipart upload to one location, are capped at
//! [`PART_MEMORY`] bytes, and within one upload at [`PARTS_IN_FLIGHT`]; an upload takes its
//! share of the budget before it reads the part. The bytes a mirror holds for its uploads
//! are then at most `PART_MEMORY + jobs × 1 MiB` (the chunks of the streamed PUTs), whatever
//! the number and size of the shards (measured: 36 MB peak RSS for a mirror of 50 MB shards
//! in one PUT each, 148 MB with `--part-size 16`, `--jobs 4`).

// Without the remote layer only the public constants are used (by docs and callers).
#![cfg_attr(not(feature = "remote"), allow(dead_code))]

/// Objects up to this length, whose SHA-256 is known beforehand, go up in one streamed PUT
/// (rclone's default cutoff is 200 MiB). Larger ones go in parts.
pub const SINGLE_PUT_MAX: u64 = 128 << 20;
/// Bytes of parts held in memory at once over every multipart upload to one location.
pub const PART_MEMORY: usize = 128 << 20;
/// Parts of one upload in flight at once, at most.
pub const PARTS_IN_FLIGHT: usize = 8;
/// S3's limit on the parts of one upload.
const MAX_PARTS: u64 = 10_000;
/// S3's smallest part (but the last).
const MIN_PART: usize = 5 << 20;

/// How to upload an object of a given length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// One PUT.
    One,
    /// A multipart upload in parts of this many bytes.
    Parts(usize),
}

/// The plan for an object of `len` bytes (`None`: unknown until it has been read), with the
/// part size the user set, if any. An object no larger than one part goes in one PUT.
pub fn plan(len: Option<u64>, part_size: Option<usize>) -> Plan {
    match (len, part_size) {
        (Some(len), Some(part)) if len <= part as u64 => Plan::One,
        (_, Some(part)) => Plan::Parts(part.max(MIN_PART)),
        (Some(len), None) if len <= SINGLE_PUT_MAX => Plan::One,
        (Some(len), None) => Plan::Parts(part_for(len)),
        (None, None) => Plan::Parts(super::DEFAULT_PART_SIZE),
    }
}

/// The part size for a multipart upload of `len` bytes: 16 MiB, or more so that the object
/// fits S3's 10,000 parts with room to spare, in whole MiB.
pub fn part_for(len: u64) -> usize {
    let least = len.div_ceil(MAX_PARTS * 9 / 10);
    let mib = least.div_ceil(1 << 20) << 20;
    usize::try_from(mib)
        .unwrap_or(usize::MAX)
        .max(super::DEFAULT_PART_SIZE)
}

/// The share of [`PART_MEMORY`] one part of `part` bytes takes, in the units of the
/// budget's semaphore (MiB, at least 1, at most the whole budget: a part larger than the
/// budget waits until every other part is answered).
pub fn budget_units(part: usize) -> u32 {
    let whole = (PART_MEMORY >> 20) as u32;
    u32::try_from(part.div_ceil(1 << 20))
        .unwrap_or(whole)
        .clamp(1, whole)
}

/// The semaphore that holds [`PART_MEMORY`], in MiB.
pub fn budget() -> tokio::sync::Semaphore {
    tokio::sync::Semaphore::new(PART_MEMORY >> 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_objects_go_in_one_put_and_large_ones_in_parts_sized_by_length() {
        assert_eq!(plan(Some(50 << 20), None), Plan::One);
        assert_eq!(plan(Some(SINGLE_PUT_MAX), None), Plan::One);
        assert_eq!(plan(Some(2 << 30), None), Plan::Parts(16 << 20));
        assert_eq!(plan(None, None), Plan::Parts(16 << 20));
        // A set part size decides alone.
        assert_eq!(plan(Some(5 << 20), Some(5 << 20)), Plan::One);
        assert_eq!(plan(Some(6 << 20), Some(5 << 20)), Plan::Parts(5 << 20));
        // 1 TiB fits 10,000 parts.
        let tib = 1u64 << 40;
        let part = part_for(tib);
        assert!(tib.div_ceil(part as u64) <= MAX_PARTS, "{part}");
        assert_eq!(part % (1 << 20), 0);
        assert_eq!(budget_units(16 << 20), 16);
        assert_eq!(budget_units(1 << 30), (PART_MEMORY >> 20) as u32);
    }
}
