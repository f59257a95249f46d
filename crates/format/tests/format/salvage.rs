//! The resynchronising salvage reader (`editshard repair`): on every truncation and every
//! single-byte flip of a shard, it recovers every record the damage did not touch and never
//! returns a damaged one, and it names the records it lost when the index is intact.
//!
//! A flip "touches" a record when it lands in the record's metadata block or one of its
//! images: a damaged frame is salvaged record by record through the index. A truncation
//! removes the index, so a record survives it when its whole frame is before the cut.
//!
//! Only what the structure vouches for is a record: a valid frame hidden in an image's bytes
//! (`editshard_tools::smuggle`) never comes out, whether the shard is cut short inside the
//! frame that holds it or that frame is damaged.

use std::ops::Range;

use bytes::Bytes;
use editshard_format::Record;
use editshard_format::format::{Limits, ShardIndex};
use editshard_format::shard::salvage::{SalvageReport, salvage};
use editshard_format::shard::{RandomAccessShard, ShardWriter};
use editshard_tools::{records, smuggle};

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
    assert!(index.frames().len() >= 3, "want several groups");
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
    let r = &index.record(i);
    let mut out = Vec::new();
    out.push(r.meta_offset..r.meta_offset + u64::from(r.meta_len));
    for b in index.record_blobs(i) {
        let blob = index.blob(b);
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
                let f = index.frames()[index.record(i).frame as usize];
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

/// Breaks the trailer, so that salvage walks the frames without the index.
fn without_index(bytes: &mut [u8]) {
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
}

/// The records not in frame `k`.
fn outside_frame(records: &[Record], index: &ShardIndex, k: u32) -> Vec<usize> {
    (0..records.len())
        .filter(|&i| index.record(i).frame != k)
        .collect()
}

#[test]
fn without_an_index_a_damaged_frame_is_skipped_by_its_own_length() {
    // The body of frame 1 damaged: its length field says where frame 2 starts.
    let (bytes, records, index) = shard();
    let mut damaged = bytes.clone();
    without_index(&mut damaged);
    let middle = index.frames()[1];
    damaged[(middle.offset + middle.len / 2) as usize] ^= 0xff;
    let (got, report) = run(&damaged);
    assert_recovered(&got, &records, &outside_frame(&records, &index, 1), "body");
    let loss = report
        .losses
        .iter()
        .find(|l| l.start == middle.offset)
        .unwrap_or_else(|| panic!("{:?}", report.losses));
    assert_eq!(loss.end, middle.offset + middle.len);
    assert!(loss.unknown_records);
}

#[test]
fn without_an_index_a_damaged_length_field_is_placed_by_the_frames_crc() {
    // Frame 1's length field damaged, its body whole: its CRC finds its end, and every record
    // comes back, its own too.
    let (bytes, records, index) = shard();
    for mask in [0x40u8, 0x01, 0xff] {
        let mut damaged = bytes.clone();
        without_index(&mut damaged);
        let middle = index.frames()[1];
        damaged[middle.offset as usize] ^= mask;
        let (got, report) = run(&damaged);
        let all: Vec<usize> = (0..records.len()).collect();
        assert_recovered(&got, &records, &all, &format!("length ^ {mask:#04x}"));
        assert!(
            report
                .losses
                .iter()
                .any(|l| l.start == middle.offset && l.reason.contains("length field")),
            "{:?}",
            report.losses
        );
    }
}

#[test]
fn without_an_index_a_frame_whose_length_and_crc_are_both_damaged_ends_the_walk() {
    // Nothing vouches for where frame 2 starts: the frames after are reported lost, never
    // looked for by scanning (which could take an image's bytes for a frame).
    let (bytes, records, index) = shard();
    let mut damaged = bytes.clone();
    without_index(&mut damaged);
    let middle = index.frames()[1];
    damaged[middle.offset as usize + 3] ^= 0x80; // its length: past every limit
    damaged[middle.offset as usize + 4] ^= 0xff; // its CRC
    let (got, report) = run(&damaged);
    let before: Vec<usize> = (0..records.len())
        .filter(|&i| index.record(i).frame == 0)
        .collect();
    assert_recovered(&got, &records, &before, "length and CRC");
    let loss = report
        .losses
        .iter()
        .find(|l| l.start == middle.offset)
        .unwrap_or_else(|| panic!("{:?}", report.losses));
    assert_eq!(loss.end, damaged.len() as u64);
    assert!(
        loss.unknown_records && loss.reason.contains("none is taken"),
        "{loss:?}"
    );
}

/// A shard of [`smuggle::records_with_carrier`], its index, and where the carrier's image and
/// frame are.
fn smuggling_shard() -> (Vec<u8>, Vec<Record>, ShardIndex, Range<u64>, Range<u64>) {
    let records = smuggle::records_with_carrier();
    let mut w = ShardWriter::new(Vec::new()).unwrap();
    for r in &records {
        w.append(r).unwrap();
    }
    let bytes = w.finish().unwrap().0;
    let shard = RandomAccessShard::open(Bytes::from(bytes.clone()), "s").unwrap();
    let (image, frame) = smuggle::carrier_image_and_frame(&shard);
    assert!(
        image.end < frame.end,
        "the carrier's image is not the end of its frame"
    );
    (bytes, records, shard.index().clone(), image, frame)
}

fn assert_nothing_smuggled(got: &[Record], report: &SalvageReport, what: &str) {
    assert!(
        got.iter().all(|r| r.id != smuggle::SMUGGLED_ID),
        "{what}: a record that was never in the shard came out: {:?}",
        report.losses
    );
}

#[test]
fn a_frame_inside_an_image_of_a_shard_cut_short_is_not_a_record() {
    // Cut at the end of the carrier's image (the smuggled frame whole before the cut), and at
    // every byte from there to the end of the carrier's frame.
    let (bytes, records, index, image, frame) = smuggling_shard();
    let carrier_frame = index
        .record(index.position(smuggle::CARRIER_ID).unwrap())
        .frame;
    let want: Vec<usize> = (0..records.len())
        .filter(|&i| index.record(i).frame < carrier_frame)
        .collect();
    for cut in image.end - 4..frame.end {
        let (got, report) = run(&bytes[..cut as usize]);
        assert_nothing_smuggled(&got, &report, &format!("cut at {cut}"));
        assert_recovered(&got, &records, &want, &format!("cut at {cut}"));
        assert!(
            report
                .losses
                .iter()
                .any(|l| l.start == frame.start && l.end == cut),
            "cut at {cut}: the carrier's frame to the end is reported lost: {:?}",
            report.losses
        );
    }
}

#[test]
fn a_frame_inside_an_image_of_a_damaged_frame_is_not_a_record() {
    // No index, and the carrier's frame damaged outside the smuggled bytes (its length field
    // whole): the walk goes on after the carrier's frame, not inside it.
    let (bytes, records, index, image, frame) = smuggling_shard();
    let carrier_frame = index
        .record(index.position(smuggle::CARRIER_ID).unwrap())
        .frame;
    for at in [
        frame.start + 9,
        image.start + 1,
        image.end - 1,
        frame.end - 1,
    ] {
        let mut damaged = bytes.clone();
        without_index(&mut damaged);
        damaged[at as usize] ^= 0x55;
        let (got, report) = run(&damaged);
        assert_nothing_smuggled(&got, &report, &format!("flip at {at}"));
        assert_recovered(
            &got,
            &records,
            &outside_frame(&records, &index, carrier_frame),
            &format!("flip at {at}"),
        );
    }
    // With the index intact, the damaged frame is salvaged record by record: the carrier is
    // lost if the flip is in its image, never the smuggled record found.
    let mut damaged = bytes.clone();
    damaged[(image.start + 1) as usize] ^= 0x55;
    let (got, report) = run(&damaged);
    assert_nothing_smuggled(&got, &report, "index intact");
    assert!(report.index_intact);
    assert_eq!(got.len(), records.len() - 1);
}
