//! The resynchronising salvage reader (`editshard repair`): on every truncation and every
//! single-byte flip of a shard, it recovers every record the damage did not touch and never
//! returns a damaged one, and it names the records it lost when the index is intact.
//!
//! A flip "touches" a record when it lands in the record's metadata block or one of its
//! images: a damaged frame is salvaged record by record through the index. A truncation
//! removes the index, so a record survives it when its whole frame is before the cut.

use bytes::Bytes;
use editshard_format::Record;
use editshard_format::format::{Limits, ShardIndex};
use editshard_format::shard::salvage::{SalvageReport, salvage};
use editshard_format::shard::{RandomAccessShard, ShardWriter};
use editshard_tools::records;

fn shard() -> (Vec<u8>, Vec<Record>, ShardIndex) {
    let records = records::mixed();
    let mut w = ShardWriter::new(Vec::new()).unwrap();
    for r in &records {
        w.append(r).unwrap();
    }
    let bytes = w.finish().unwrap().0;
    let index = RandomAccessShard::open(Bytes::from(bytes.clone()), "s")
        .unwrap()
        .index()
        .clone();
    assert!(index.frames.len() >= 3, "want several groups");
    (bytes, records, index)
}

fn run(bytes: &[u8]) -> (Vec<Record>, SalvageReport) {
    let mut out = Vec::new();
    let report = salvage(
        &Bytes::copy_from_slice(bytes),
        "damaged.esd",
        &Limits::DEFAULT,
        |r| {
            out.push(r);
            Ok(())
        },
    )
    .unwrap();
    (out, report)
}

/// The recovered records are exactly `want` (by number), each byte for byte the original.
fn assert_recovered(got: &[Record], records: &[Record], want: &[usize], what: &str) {
    let ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    let want_ids: Vec<&str> = want.iter().map(|&i| records[i].id.as_str()).collect();
    assert_eq!(ids, want_ids, "{what}");
    for r in got {
        let original = records.iter().find(|o| o.id == r.id).unwrap();
        assert_eq!(r, original, "{what}: {} came back damaged", r.id);
        for (a, b) in r.images().zip(original.images()) {
            assert_eq!(
                a.data, b.data,
                "{what}: an image of {} came back damaged",
                r.id
            );
        }
    }
}

fn parts(index: &ShardIndex, i: usize) -> Vec<std::ops::Range<u64>> {
    let r = &index.records[i];
    let mut out = Vec::new();
    out.push(r.meta_offset..r.meta_offset + u64::from(r.meta_len));
    for &b in index.record_blobs(i) {
        let blob = index.blobs[b as usize];
        out.push(blob.offset..blob.offset + u64::from(blob.len));
    }
    out
}

#[test]
fn an_intact_shard_gives_every_record_and_a_clean_report() {
    let (bytes, records, _) = shard();
    let (got, report) = run(&bytes);
    assert_recovered(
        &got,
        &records,
        &(0..records.len()).collect::<Vec<_>>(),
        "intact",
    );
    assert!(report.is_clean(), "{:?}", report.losses);
    assert!(report.index_intact);
}

#[test]
fn every_truncation_keeps_every_whole_frame() {
    let (bytes, records, index) = shard();
    for len in 0..bytes.len() {
        let (got, report) = run(&bytes[..len]);
        let want: Vec<usize> = (0..records.len())
            .filter(|&i| {
                let f = index.frames[index.records[i].frame as usize];
                f.offset + f.len <= len as u64
            })
            .collect();
        assert_recovered(&got, &records, &want, &format!("cut at {len}"));
        assert!(!report.is_clean(), "cut at {len}: no loss reported");
        assert!(!report.index_intact, "cut at {len}");
        for l in &report.losses {
            assert!(
                l.start <= l.end && l.end <= len as u64,
                "cut at {len}: {l:?}"
            );
        }
    }
}

#[test]
fn every_single_byte_flip_loses_only_the_records_it_touches() {
    let (bytes, records, index) = shard();
    for at in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[at] ^= mask;
            let what = format!("flip {mask:#04x} at {at}");
            let (got, report) = run(&damaged);
            let touched = |i: usize| parts(&index, i).iter().any(|p| p.contains(&(at as u64)));
            let want: Vec<usize> = (0..records.len()).filter(|&i| !touched(i)).collect();
            assert_recovered(&got, &records, &want, &what);
            // The records lost are named (the index is intact whenever a record is touched).
            let mut named: Vec<u64> = report
                .losses
                .iter()
                .flat_map(|l| l.records.iter().map(|r| r.number.unwrap()))
                .collect();
            named.sort();
            let lost: Vec<u64> = (0..records.len())
                .filter(|&i| touched(i))
                .map(|i| i as u64)
                .collect();
            assert_eq!(named, lost, "{what}: {:?}", report.losses);
            if at >= 16 {
                assert!(!report.is_clean(), "{what}: the damage went unreported");
            }
        }
    }
}

#[test]
fn damage_in_the_middle_without_an_index_resynchronises_on_the_next_frame() {
    // Break the trailer (no index) and a frame in the middle: the frames after it still come
    // back, found by scanning forward for a frame whose CRC checks.
    let (bytes, records, index) = shard();
    let mut damaged = bytes.clone();
    let n = damaged.len();
    damaged[n - 1] ^= 0xff;
    let middle = index.frames[1];
    damaged[middle.offset as usize + 4] ^= 0xff; // its CRC
    damaged[middle.offset as usize] ^= 0x40; // and its length
    let (got, report) = run(&damaged);
    let want: Vec<usize> = (0..records.len())
        .filter(|&i| index.records[i].frame != 1)
        .collect();
    assert_recovered(&got, &records, &want, "no index");
    let loss = report
        .losses
        .iter()
        .find(|l| l.start == middle.offset)
        .unwrap_or_else(|| panic!("{:?}", report.losses));
    assert_eq!(loss.end, middle.offset + middle.len);
    assert!(loss.unknown_records);
}
