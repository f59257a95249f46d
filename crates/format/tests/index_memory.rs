//! What a loaded shard index holds in memory, measured by glibc's malloc statistics (this
//! binary's only test, so that nothing else allocates meanwhile): a reader that keeps many shards'
//! indexes must hold what `ShardIndex::heap_bytes` says, a few hundred bytes a record and
//! little else per shard. The shards' prepared metadata dictionaries (31 KiB each, more
//! than their records' indexes) are held once in the process's bounded cache, not per index.

// glibc's malloc statistics are what measure it.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

use bytes::Bytes;
use editshard_format::format::{
    Limits, ShardIndex, prepared_dictionaries, set_prepared_dictionary_budget,
};
use editshard_format::shard::ShardWriter;
use editshard_tools::records::{multi_turn, preference, sft};

/// glibc's `struct mallinfo2` (malloc.h, glibc 2.33 and later).
#[repr(C)]
#[derive(Default)]
struct Mallinfo2 {
    arena: usize,
    ordblks: usize,
    smblks: usize,
    hblks: usize,
    hblkhd: usize,
    usmblks: usize,
    fsmblks: usize,
    uordblks: usize,
    fordblks: usize,
    keepcost: usize,
}

unsafe extern "C" {
    fn mallinfo2() -> Mallinfo2;
}

/// Bytes malloc has handed out and not taken back, in every arena: what Rust allocates (its
/// `System` allocator is malloc) and what zstd allocates in C (its prepared dictionaries),
/// which a Rust global allocator would not see.
fn malloced() -> usize {
    // SAFETY: `mallinfo2` takes no arguments, only reads malloc's statistics under its own
    // locks, and returns the struct by value with the layout declared above.
    let m = unsafe { mallinfo2() };
    m.uordblks + m.hblkhd
}

const SHARDS: u32 = 48;
const RECORDS: u32 = 96;
/// What one record's index may cost in memory: its entry (id, kind, metadata length and CRC,
/// image references, ~60 bytes here, decompressed) and the tables that locate it (~50 bytes
/// with its frame and two images).
const PER_RECORD: u64 = 200;
/// What one shard's index may cost besides its records: its struct and its dictionary's
/// bytes (the writer's dictionaries for these records are 1-2 KiB; its prepared form, 31
/// KiB, must not be here).
const PER_SHARD: u64 = 4 << 10;

/// A shard of `RECORDS` records, its metadata distinct from every other shard's, so that each
/// shard trains a dictionary of its own.
fn shard(s: u32) -> Bytes {
    let mut w = ShardWriter::new(Vec::new()).unwrap();
    for k in 0..RECORDS {
        let n = s * 1000 + k;
        let record = match k % 4 {
            0 | 1 => sft(n, n),
            2 => preference(n, n, 1),
            _ => multi_turn(n, n, 2),
        };
        w.append(&record).unwrap();
    }
    let (bytes, summary) = w.finish().unwrap();
    assert!(
        summary.dictionary_len.is_some(),
        "shard {s} has no dictionary"
    );
    Bytes::from(bytes)
}

#[test]
fn loaded_indexes_hold_what_they_count_and_no_dictionary_per_shard() {
    // Smaller than the shards' prepared dictionaries together (48 x 31 KiB): the cache must
    // drop some.
    let budget = 512 << 10;
    set_prepared_dictionary_budget(budget);
    let files: Vec<Bytes> = (0..SHARDS).map(shard).collect();
    let footers: Vec<(Bytes, u64)> = files
        .iter()
        .map(|f| {
            let end = f.len() - editshard_format::format::TRAILER_LEN;
            let trailer = editshard_format::format::Trailer::parse(&f[end..], end as u64).unwrap();
            let at = trailer.index_offset;
            (f.slice(at as usize..), at)
        })
        .collect();

    let (_, prepared_before) = prepared_dictionaries();
    let before = malloced();
    let indexes: Vec<ShardIndex> = footers
        .iter()
        .map(|(footer, at)| ShardIndex::parse_footer_shared(footer, *at, &Limits::DEFAULT).unwrap())
        .collect();
    let held = malloced().saturating_sub(before);

    let counted: u64 = indexes.iter().map(ShardIndex::heap_bytes).sum();
    eprintln!(
        "held {held} counted {counted} prepared {:?} first {:?} len {}",
        prepared_dictionaries(),
        indexes[0].memory(),
        indexes[0].len()
    );
    let (prepared, prepared_bytes) = prepared_dictionaries();
    assert!(
        prepared_bytes <= budget && prepared < SHARDS as usize,
        "{prepared} prepared dictionaries of {prepared_bytes} bytes held for {SHARDS} shards \
         (budget {budget})"
    );
    // What the indexes hold is what they count (and malloc's overhead on their few
    // allocations), plus what the bounded cache of prepared dictionaries grew by.
    let cache_grew = prepared_bytes.saturating_sub(prepared_before);
    assert!(
        held as u64 <= counted + cache_grew + u64::from(SHARDS) * 4096,
        "{SHARDS} indexes hold {held} bytes; they count {counted}, the prepared \
         dictionaries grew by {cache_grew}"
    );
    for (s, index) in indexes.iter().enumerate() {
        let m = index.memory();
        assert_eq!(m.total(), index.heap_bytes());
        let bound = PER_RECORD * index.len() as u64 + PER_SHARD;
        assert!(
            index.heap_bytes() <= bound,
            "shard {s}: its index holds {} bytes for {} records ({m:?}); at most {bound}",
            index.heap_bytes(),
            index.len()
        );
    }
    // Every record still decodes (its dictionary prepared again when it is not cached).
    for (s, (index, file)) in indexes.iter().zip(&files).enumerate() {
        let r = index.record(0);
        let stored = &file[r.meta_range().start as usize..r.meta_range().end as usize];
        editshard_format::format::decode_block_with(
            r.meta_codec,
            stored,
            1 << 20,
            "record metadata",
            index.dictionary.as_ref(),
        )
        .unwrap_or_else(|e| panic!("shard {s}: {e}"));
    }
    let (_, after) = prepared_dictionaries();
    assert!(after <= budget, "{after} bytes of prepared dictionaries");
}
