//! Records written by `ShardWriter` come back identical through all three readers, images are
//! stored once per group, and damage is reported with its location.

use editshard_tools::records;

use bytes::Bytes;
use editshard_format::shard::RandomAccessShard;
use editshard_format::shard::ShardDecoder;
use editshard_format::shard::ShardReader;
use editshard_format::shard::{ShardWriter, WriterOptions};
use editshard_format::{ErrorKind, ReadOptions, Record, Verify};
use futures_util::StreamExt;
use tokio_util::codec::FramedRead;

fn write(records: &[Record], options: WriterOptions) -> Vec<u8> {
    let mut w = ShardWriter::with_options(Vec::new(), options).unwrap();
    for r in records {
        w.append(r).unwrap();
    }
    w.finish().unwrap().0
}

fn stream(bytes: &[u8]) -> editshard_format::Result<Vec<Record>> {
    ShardReader::new(bytes).collect()
}

fn stream_async(bytes: &[u8]) -> editshard_format::Result<Vec<Record>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut out = Vec::new();
        let mut framed = FramedRead::new(bytes, ShardDecoder::new());
        while let Some(r) = framed.next().await {
            out.push(r?);
        }
        Ok(out)
    })
}

fn random(bytes: &[u8]) -> editshard_format::Result<Vec<Record>> {
    let shard = RandomAccessShard::open(Bytes::copy_from_slice(bytes), "t.esd")?;
    (0..shard.len()).map(|i| shard.get(i)).collect()
}

#[test]
fn every_reader_returns_what_was_written() {
    for level in [0, 3] {
        let records = records::mixed();
        let bytes = write(
            &records,
            WriterOptions {
                compression_level: level,
                ..Default::default()
            },
        );
        assert_eq!(stream(&bytes).unwrap(), records);
        assert_eq!(stream_async(&bytes).unwrap(), records);
        assert_eq!(random(&bytes).unwrap(), records);
    }
}

#[test]
fn shared_images_are_stored_once_and_counted() {
    let records = records::mixed();
    let mut w = ShardWriter::new(Vec::new()).unwrap();
    for r in &records {
        w.append(r).unwrap();
    }
    let (bytes, summary) = w.finish().unwrap();
    let s = &summary.stats;
    let referenced: u64 = records.iter().map(|r| r.images().count() as u64).sum();
    assert_eq!(s.images_referenced, referenced);
    // preference 1 reuses sft 1's source and edit; multi-turn 7 reuses sft 2's source.
    assert_eq!(s.images_stored, referenced - 3);
    let shard = RandomAccessShard::open(Bytes::from(bytes.clone()), "t.esd").unwrap();
    assert_eq!(shard.index().blob_count() as u64, s.images_stored);
    // Groups: {sft1, pref1}, {sft2, mt7}, {generic3}, {sft4}.
    assert_eq!(shard.index().frames().len(), 4);
    assert_eq!(summary.bytes, bytes.len() as u64);
    assert_eq!(
        summary.footer_offset + summary.footer_len,
        bytes.len() as u64
    );
    assert_eq!(s.kinds.get("sft"), Some(&3));
    assert_eq!(
        s.edit_types.get("Change overall color tone (warm ↔ cool)"),
        Some(&1)
    );
}

#[test]
fn random_access_projection_reads_only_what_is_asked() {
    let records = records::mixed();
    let bytes = Bytes::from(write(&records, WriterOptions::default()));
    let shard = RandomAccessShard::open(bytes.clone(), "t.esd").unwrap();
    for (i, want) in records.iter().enumerate() {
        let meta = shard.metadata(i).unwrap();
        let mut stripped = want.clone();
        stripped.strip_data();
        assert_eq!(meta, stripped);
        for (k, img) in want.images().enumerate() {
            assert_eq!(&shard.image(i, k).unwrap(), img.data.as_ref().unwrap());
        }
        assert_eq!(shard.get_by_id(&want.id).unwrap().as_ref(), Some(want));
        // The span of one record is one contiguous range inside one frame.
        let span = shard.index().record_span(i);
        let frame = shard.index().frames()[shard.index().record(i).frame as usize];
        assert!(span.start >= frame.offset && span.end <= frame.offset + frame.len);
    }
    assert!(shard.get_by_id("missing").unwrap().is_none());
    assert!(shard.get(records.len()).is_err());
}

#[test]
fn groups_respect_their_limits() {
    // Ten records sharing one source, at most 3 per group.
    let records: Vec<Record> = (0..10).map(|n| records::sft(n, 1)).collect();
    let options = WriterOptions {
        max_group_records: 3,
        ..Default::default()
    };
    let bytes = write(&records, options);
    let shard = RandomAccessShard::open(Bytes::from(bytes.clone()), "t.esd").unwrap();
    let groups = shard
        .index()
        .frames()
        .iter()
        .filter(|f| f.frame_type == 0x01);
    assert_eq!(groups.count(), 4);
    assert_eq!(stream(&bytes).unwrap(), records);
}

#[test]
fn the_writer_refuses_bad_records() {
    let mut w = ShardWriter::new(Vec::new()).unwrap();
    let mut r = records::sft(1, 1);
    w.append(&r).unwrap();
    let err = w.append(&r).unwrap_err();
    assert!(err.to_string().contains("already holds"), "{err}");
    r.id = "other".into();
    r.source.data = Some(Bytes::from_static(b"tampered"));
    let err = w.append(&r).unwrap_err();
    // Input the format cannot hold is refused as such (a converter reports the row and goes on).
    assert!(matches!(err.kind(), ErrorKind::Rejected(_)), "{err}");
    r.source.data = None;
    assert!(w.append(&r).is_err());
    r.id = String::new();
    assert!(w.append(&r).is_err());
    // Nothing half-appended: the shard still holds exactly the first record.
    let bytes = w.finish().unwrap().0;
    assert_eq!(stream(&bytes).unwrap().len(), 1);
}

#[test]
fn errors_name_the_shard_record_and_offset() {
    let records = records::mixed();
    let mut bytes = write(&records, WriterOptions::default());
    let shard = RandomAccessShard::open(Bytes::from(bytes.clone()), "t.esd").unwrap();
    let blob = shard.index().blob(shard.index().record_blobs(2)[1]);
    bytes[blob.offset as usize + 3] ^= 0x20;

    let err = ShardReader::new(&bytes[..])
        .named("shard-00000.esd")
        .find_map(Result::err)
        .unwrap();
    assert!(matches!(err.kind(), ErrorKind::Checksum { .. }));
    assert_eq!(err.shard(), Some("shard-00000.esd"));
    assert_eq!(err.record(), Some(2), "first record of the damaged group");
    let frame = shard.index().frames()[shard.index().record(2).frame as usize];
    assert_eq!(err.offset(), Some(frame.offset));
    // What and where in Display; what to do is advice, given by the layer that knows the
    // commands (`editshard::advice`), never by the core.
    let text = err.to_string();
    assert!(
        text.contains("shard-00000.esd") && text.contains("record #2"),
        "{text}"
    );
    assert!(!text.contains("verify"), "{text}");

    let shard = RandomAccessShard::open(Bytes::from(bytes), "t.esd").unwrap();
    let err = shard.get(2).unwrap_err();
    assert_eq!(
        (err.record(), err.id(), err.offset()),
        (Some(2), Some(records[2].id.as_str()), Some(blob.offset))
    );
    assert!(
        shard.metadata(2).is_ok(),
        "metadata is intact and needs no image bytes"
    );
    assert!(shard.get(0).is_ok(), "other records are unaffected");
}

#[test]
fn verification_can_be_turned_off() {
    let records = vec![records::sft(1, 1)];
    let mut bytes = write(&records, WriterOptions::default());
    let shard = RandomAccessShard::open(Bytes::from(bytes.clone()), "t.esd").unwrap();
    let blob = shard.index().blob(0);
    bytes[blob.offset as usize] ^= 1;
    assert!(stream(&bytes).is_err());
    let options = ReadOptions::verifying(Verify::None);
    let read: Vec<Record> = ShardReader::with_options(&bytes[..], options)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_ne!(read, records, "the damaged byte came through unchecked");
}

#[test]
fn trailing_bytes_and_empty_input_are_errors() {
    let mut bytes = write(&records::mixed(), WriterOptions::default());
    assert!(stream(&[]).is_err());
    bytes.push(0);
    let err = stream(&bytes).unwrap_err();
    assert!(err.to_string().contains("follow the trailer"), "{err}");
    assert!(stream_async(&bytes).is_err());
}

#[test]
fn empty_shard_is_valid() {
    let bytes = write(&[], WriterOptions::default());
    assert_eq!(stream(&bytes).unwrap(), vec![]);
    assert_eq!(stream_async(&bytes).unwrap(), vec![]);
    assert_eq!(random(&bytes).unwrap(), vec![]);
}

/// A record whose images cannot fit one frame together (each under the blob limit) is
/// refused when it is appended, as one record, with the writer still usable: not when its
/// group is written, where the error ended the whole shard (and `convert` with it).
#[test]
fn a_record_whose_images_cannot_fit_one_frame_is_refused_on_append() {
    // Two distinct 510 MiB images (zeroed allocations the check never touches).
    let mut record = records::sft(1, 1);
    let template = record.source.clone();
    let huge = |tag: u8| {
        let mut i = template.clone();
        let data = Bytes::from(vec![0u8; 510 << 20]);
        i.len = data.len() as u64;
        i.data = Some(data);
        i.sha256 = [tag; 32];
        i
    };
    record.source = huge(1);
    record.turns[0].output = huge(2);
    let options = WriterOptions {
        verify_hashes: false,
        ..WriterOptions::default()
    };
    let mut w = ShardWriter::with_options(Vec::new(), options).unwrap();
    let e = w.append(&record).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Rejected(_)), "{e}");
    assert!(e.to_string().contains("one frame"), "{e}");
    // The writer goes on.
    let small = records::sft(2, 2);
    w.append(&small).unwrap();
    let bytes = w.finish().unwrap().0;
    assert_eq!(stream(&bytes).unwrap(), vec![small]);
}
