//! Format 1.1 as readers meet it: the metadata dictionary through every reader (streaming,
//! async, random access, salvage), and a shard of a newer minor version named in errors.

use bytes::Bytes;
use editshard_format::format::{Limits, wire::crc32};
use editshard_format::shard::salvage::salvage;
use editshard_format::shard::{RandomAccessShard, ShardDecoder, ShardReader, ShardWriter};
use editshard_format::{ErrorKind, Record};
use editshard_tools::records;
use futures_util::StreamExt;
use tokio_util::codec::FramedRead;

fn dictionary_shard() -> (Vec<u8>, Vec<Record>) {
    let records = records::editing_v1_1_set();
    let mut w = ShardWriter::new(Vec::new()).unwrap();
    for r in &records {
        w.append(r).unwrap();
    }
    let (bytes, summary) = w.finish().unwrap();
    assert_eq!(summary.minor_version, 1);
    assert!(
        summary.dictionary_len.is_some(),
        "the writer kept a dictionary"
    );
    (bytes, records)
}

/// Where the dictionary frame is: the first frame (the writer puts it before every group).
fn dictionary_frame(bytes: &[u8]) -> std::ops::Range<usize> {
    assert_eq!(bytes[16 + 8], 0x03, "frame 0 is the dictionary frame");
    let len = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
    16..16 + 8 + len
}

#[tokio::test]
async fn every_reader_decodes_codec_2() {
    let (bytes, records) = dictionary_shard();
    every_reader_reads(&bytes, &records).await;
}

/// The sync reader, the async decoder and the random-access reader all give `records`.
async fn every_reader_reads(bytes: &[u8], records: &[Record]) {
    let streamed: Vec<Record> = ShardReader::new(bytes).collect::<Result<_, _>>().unwrap();
    assert_eq!(streamed, records);
    let decoded: Vec<Record> = FramedRead::new(bytes, ShardDecoder::new())
        .map(|r| r.unwrap())
        .collect()
        .await;
    assert_eq!(decoded, records);
    let shard = RandomAccessShard::open(Bytes::copy_from_slice(bytes), "d.esd").unwrap();
    for (i, want) in records.iter().enumerate() {
        assert_eq!(&shard.get(i).unwrap(), want);
    }
}

/// What salvage recovers from the shard cut before its index and trailer.
fn salvage_without_index(bytes: &[u8]) -> Vec<Record> {
    let cut = &bytes[..bytes.len() - 100];
    let mut got = Vec::new();
    salvage(
        &Bytes::copy_from_slice(cut),
        "d.esd",
        &Limits::DEFAULT,
        |r| {
            got.push(r);
            Ok(())
        },
    )
    .unwrap();
    got
}

#[test]
fn a_damaged_dictionary_frame_is_salvaged_through_the_index_copy() {
    let (mut bytes, records) = dictionary_shard();
    let frame = dictionary_frame(&bytes);
    bytes[frame.start + 40] ^= 0x01; // the frame's CRC no longer checks
    let err = ShardReader::new(&bytes[..]).next().unwrap().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Checksum { .. }), "{err}");
    let mut got = Vec::new();
    let report = salvage(&Bytes::from(bytes), "d.esd", &Limits::DEFAULT, |r| {
        got.push(r);
        Ok(())
    })
    .unwrap();
    assert_eq!(
        got, records,
        "every record, decoded with the index's dictionary"
    );
    assert_eq!(report.losses.len(), 1, "{:?}", report.losses);
}

#[test]
fn without_the_index_salvage_uses_the_dictionary_frame() {
    let (bytes, records) = dictionary_shard();
    assert_eq!(salvage_without_index(&bytes), records);
}

#[test]
fn codec_2_without_a_dictionary_frame_is_refused() {
    // The dictionary frame turned into an optional frame (type 0x80, CRC fixed): a reader
    // skips it and then meets codec 2 with no dictionary.
    let (mut bytes, _) = dictionary_shard();
    let frame = dictionary_frame(&bytes);
    bytes[frame.start + 8] = 0x80;
    let crc = crc32(&bytes[frame.start + 8..frame.end]);
    bytes[frame.start + 4..frame.start + 8].copy_from_slice(&crc.to_le_bytes());
    let err = ShardReader::new(&bytes[..]).find_map(Result::err).unwrap();
    assert!(
        err.to_string().contains("no dictionary frame precedes"),
        "{err}"
    );
}

#[test]
fn errors_in_a_shard_of_a_newer_minor_say_to_upgrade() {
    let (mut bytes, _) = dictionary_shard();
    bytes[10..12].copy_from_slice(&2u16.to_le_bytes());
    let crc = crc32(&bytes[..12]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    // Readable as it is: a newer minor alone is no error.
    assert_eq!(ShardReader::new(&bytes[..]).count(), 80);
    // A frame type this reader does not know (as 1.2 might add), CRC fixed.
    let frame = dictionary_frame(&bytes);
    bytes[frame.start + 8] = 0x04;
    let crc = crc32(&bytes[frame.start + 8..frame.end]);
    bytes[frame.start + 4..frame.start + 8].copy_from_slice(&crc.to_le_bytes());
    let err = ShardReader::new(&bytes[..]).next().unwrap().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Unsupported(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("format version 1.2") && text.contains("upgrade editshard"),
        "{text}"
    );
    assert_eq!(err.newer_minor(), Some(2), "{err}");
    // A 1.1 shard's errors do not claim it.
    let (mut bytes, _) = dictionary_shard();
    let frame = dictionary_frame(&bytes);
    bytes[frame.start + 20] ^= 1;
    let err = ShardReader::new(&bytes[..]).next().unwrap().unwrap_err();
    assert!(!err.to_string().contains("upgrade"), "{err}");
}

/// Past the hold budget, the first groups are written before the dictionary (codec 1, their
/// metadata kept as samples) and the dictionary frame follows them: every reader still reads
/// every record, and the later records use the dictionary.
#[tokio::test]
async fn groups_past_the_hold_budget_precede_the_dictionary() {
    let records = records::editing_v1_1_set();
    let options = editshard_format::shard::WriterOptions {
        dictionary_hold_bytes: 1,
        max_group_records: 4,
        ..Default::default()
    };
    let mut w = ShardWriter::with_options(Vec::new(), options).unwrap();
    for r in &records {
        w.append(r).unwrap();
    }
    let (bytes, summary) = w.finish().unwrap();
    assert!(summary.dictionary_len.is_some(), "a dictionary was kept");
    // Frame 0 is a group now, written before the dictionary was decided.
    assert_eq!(bytes[16 + 8], 0x01, "frame 0 is a group");
    every_reader_reads(&bytes, &records).await;
    // Salvage without the index meets the dictionary frame after the first groups.
    assert_eq!(salvage_without_index(&bytes), records);
}
