//! The body of every fuzz target, shared by the cargo-fuzz binaries in `fuzz_targets/` and by
//! `crates/format/tests/format/fuzz_regressions.rs`, which replays every input kept under
//! `crates/format/tests/fuzz-regressions/` on the stable toolchain. A target returns normally on any input; a panic is a bug.

#![allow(dead_code)]

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use editshard_format::format::{Limits, ShardIndex};
use editshard_format::manifest::Manifest;
use editshard_format::record::{Image, Kind, Provenance, Record, Score, Turn};
use editshard_format::shard::{
    RandomAccessShard, ShardDecoder, ShardReader, ShardWriter, WriterOptions,
};
use editshard_pico::rows::{LineReader, Subset, parse_row};
use tokio_util::codec::Decoder;

/// A target's body: takes any bytes, returns normally unless it found a bug.
pub type Target = fn(&[u8]);

/// Every target by name, for the regression replay.
pub const TARGETS: &[(&str, Target)] = &[
    ("frame_decoder", frame_decoder),
    ("footer", footer),
    ("shard_stream", shard_stream),
    ("random_access", random_access),
    ("manifest", manifest),
    ("release_row", release_row),
    ("round_trip", round_trip),
    ("salvage", salvage),
];

/// The tokio-util `Decoder` fed arbitrary bytes in arbitrary chunk sizes, the way a network
/// stream delivers them: it must never panic, and must end in records or an error.
pub fn frame_decoder(data: &[u8]) {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let mut decoder = ShardDecoder::new();
    let mut buf = BytesMut::new();
    for chunk in rest.chunks(step) {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    while let Ok(Some(_)) = decoder.decode_eof(&mut buf) {}
}

/// The footer parser (index frame + trailer) on arbitrary bytes at an arbitrary file offset.
pub fn footer(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let offset = u64::from(u16::from_le_bytes([data[0], data[1]]));
    if let Ok(index) = ShardIndex::parse_footer(&data[2..], offset, &Limits::DEFAULT) {
        for i in 0..index.len() {
            let _ = index.record_span(i);
            let _ = index.record_blobs(i);
            let id = index.record(i).id;
            assert_eq!(index.position(id), Some(i), "every id finds its own record");
        }
    }
}

/// A whole shard through the sync streaming reader. Seeded with the golden vectors.
pub fn shard_stream(data: &[u8]) {
    for record in ShardReader::new(data) {
        if record.is_err() {
            break;
        }
    }
}

/// The random-access reader on arbitrary bytes: open, then every record, its metadata and
/// each of its images.
pub fn random_access(data: &[u8]) {
    let Ok(shard) = RandomAccessShard::open(Bytes::copy_from_slice(data), "fuzz.esd") else {
        return;
    };
    for i in 0..shard.len() {
        let _ = shard.get(i);
        let _ = shard.metadata(i);
        for k in 0..shard.index().record_blobs(i).len() {
            let _ = shard.image(i, k);
        }
    }
}

/// The dataset manifest parser and the lookups readers make with it.
pub fn manifest(data: &[u8]) {
    if let Ok(m) = Manifest::parse(data) {
        let _ = m.locate(m.records / 2);
        let _ = m.candidate_shards("sft/images/positive-edit/1.png");
        let _ = m.to_json();
    }
}

/// One release JSONL row of each subset through the row adapter, and the line reader that
/// splits (and caps) the JSONL file.
pub fn release_row(data: &[u8]) {
    let Some((&which, line)) = data.split_first() else {
        return;
    };
    let subset = [Subset::Sft, Subset::Preference, Subset::MultiTurn][usize::from(which) % 3];
    let _ = parse_row(subset, 1, line);
    let mut lines = LineReader::new(line);
    while let Ok(Some(_)) = lines.next_line() {}
}

fn image(u: &mut Unstructured<'_>) -> arbitrary::Result<Image> {
    let mut data: Vec<u8> = Vec::arbitrary(u)?;
    if data.is_empty() {
        data.push(0);
    }
    let mut img = Image::with_info(
        Bytes::from(data),
        String::arbitrary(u)?,
        u.arbitrary()?,
        u.arbitrary()?,
    );
    img.url = u.arbitrary()?;
    img.path = u.arbitrary()?;
    img.rotation = u.arbitrary()?;
    img.caption = u.arbitrary()?;
    for _ in 0..u.int_in_range(0..=3)? {
        let value = f32::arbitrary(u)?;
        // NaN != NaN would make equal records compare unequal.
        img.scores.push(Score {
            name: u.arbitrary()?,
            value: if value.is_nan() { 0.0 } else { value },
        });
    }
    Ok(img)
}

fn record(u: &mut Unstructured<'_>, n: usize, pool: &mut Vec<Image>) -> arbitrary::Result<Record> {
    let mut pick = |u: &mut Unstructured<'_>| -> arbitrary::Result<Image> {
        if !pool.is_empty() && bool::arbitrary(u)? {
            let k = u.choose_index(pool.len())?;
            return Ok(pool[k].clone());
        }
        let img = image(u)?;
        pool.push(img.clone());
        Ok(img)
    };
    let source = pick(u)?;
    let mut turns = Vec::new();
    for _ in 0..u.int_in_range(0..=3)? {
        let mut t = Turn::new(pick(u)?);
        t.instruction = u.arbitrary()?;
        t.short_instruction = u.arbitrary()?;
        t.edit_type = u.arbitrary()?;
        t.category = u.arbitrary()?;
        for _ in 0..u.int_in_range(0..=2)? {
            t.rejected.push(pick(u)?);
        }
        if bool::arbitrary(u)? {
            t.mask = Some(pick(u)?);
        }
        t.instruction_variants = u.arbitrary()?;
        turns.push(t);
    }
    let kind = Kind::from_code(u.int_in_range(0..=3)?).expect("0..=3");
    let mut r = Record::new(
        format!("{n}/{}", String::arbitrary(u)?),
        kind,
        source,
        turns,
    );
    r.provenance = Provenance {
        subset: u.arbitrary()?,
        file: u.arbitrary()?,
        line: u.arbitrary()?,
        licence: u.arbitrary()?,
        dataset: u.arbitrary()?,
        revision: u.arbitrary()?,
        row_group: u.arbitrary()?,
        row: u.arbitrary()?,
    };
    if bool::arbitrary(u)? {
        r.extras
            .insert(String::arbitrary(u)?, String::arbitrary(u)?.into());
    }
    Ok(r)
}

/// Property: an arbitrary record written by `ShardWriter` reads back equal through the sync
/// reader and the random-access reader.
pub fn round_trip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut pool = Vec::new();
    let mut records = Vec::new();
    let level = if bool::arbitrary(&mut u).unwrap_or(false) {
        3
    } else {
        0
    };
    for n in 0..u.int_in_range(0..=4).unwrap_or(0) {
        match record(&mut u, n, &mut pool) {
            Ok(r) => records.push(r),
            Err(_) => break,
        }
    }
    // Format 1.0 or 1.1; for 1.1, a dictionary decided after 1 to 4 records, so that even
    // a few records reach the dictionary frame and codec 2.
    let minor = u16::from(bool::arbitrary(&mut u).unwrap_or(true));
    let options = WriterOptions {
        compression_level: level,
        max_group_records: 2,
        minor_version: minor,
        dictionary_samples: u.int_in_range(1..=4).unwrap_or(1),
        ..Default::default()
    };
    let mut w = ShardWriter::with_options(Vec::new(), options).unwrap();
    // A 1.0 writer refuses a record with 1.1 fields: those are not expected back.
    records.retain(|r| {
        let refused = minor == 0 && r.needs_v1_1();
        assert_eq!(w.append(r).is_err(), refused, "{}", r.id);
        !refused
    });
    let bytes = w.finish().unwrap().0;
    let read: Vec<Record> = ShardReader::new(&bytes[..])
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(read, records);
    let shard = RandomAccessShard::open(Bytes::from(bytes), "rt.esd").unwrap();
    for (i, r) in records.iter().enumerate() {
        assert_eq!(&shard.get(i).unwrap(), r);
    }
}

/// The salvage reader behind `editshard repair` (it resynchronises on frame boundaries after
/// damage) on arbitrary bytes: it never panics, always ends, and every record it returns is
/// intact (each image matches its SHA-256), whatever the damage.
pub fn salvage(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    let result = editshard_format::shard::salvage(&bytes, "fuzz.esd", &Limits::DEFAULT, |record| {
        for image in record.images() {
            assert!(
                image.data.is_some(),
                "salvage returned an image without bytes"
            );
            assert!(
                image.check_data().is_ok(),
                "salvage returned a damaged image"
            );
        }
        Ok(())
    });
    if let Ok(report) = result {
        for loss in &report.losses {
            assert!(loss.start <= loss.end && loss.end <= data.len() as u64);
        }
    }
}
