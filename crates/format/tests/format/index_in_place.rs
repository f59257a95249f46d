//! The index read in place (`ShardIndex`): every lookup by position and by id agrees with the
//! index decoded the slow way (`IndexFrame`, one struct per entry) on many shapes of footer;
//! a footer whose lengths or offsets lie is refused when it is opened, with where; and what a
//! loaded index holds per record does not grow with the shard.

use bytes::Bytes;
use editshard_format::format::wire::crc32;
use editshard_format::format::{
    FRAME_HEADER_LEN, GroupTable, HEADER_LEN, IndexFrame, Limits, ShardIndex, TRAILER_LEN, Trailer,
};
use editshard_format::shard::{RandomAccessShard, ShardWriter, WriterOptions};
use editshard_format::{Kind, Record, Turn};
use editshard_tools::records::{editing_v1_1, image, multi_turn, preference, sft};
use editshard_tools::tamper::rewrite_index;

fn write(records: &[Record], options: WriterOptions) -> Vec<u8> {
    let mut w = ShardWriter::with_options(Vec::new(), options).unwrap();
    for r in records {
        w.append(r).unwrap();
    }
    w.finish().unwrap().0
}

fn footer(bytes: &[u8]) -> (u64, &[u8]) {
    let trailer_at = bytes.len() - TRAILER_LEN;
    let trailer = Trailer::parse(&bytes[trailer_at..], trailer_at as u64).unwrap();
    (
        trailer.index_offset,
        &bytes[trailer.index_offset as usize..],
    )
}

/// What the index says of one record, found the slow way: (id, kind, frame, metadata offset,
/// length, CRC and codec, and each image's offset, length and CRC).
type Expected = (String, Kind, u32, u64, u32, u32, u8, Vec<(u64, u32, u32)>);

/// Every record's locations, from the index decoded into structs and summed by hand.
fn expected(bytes: &[u8]) -> (Vec<Expected>, Vec<Vec<u8>>) {
    let (at, _) = footer(bytes);
    let body = &bytes[at as usize + FRAME_HEADER_LEN..bytes.len() - TRAILER_LEN];
    let index = IndexFrame::parse_body(body, 0, &Limits::DEFAULT).unwrap();
    let mut out = Vec::new();
    let mut tables = Vec::new();
    let mut offset = HEADER_LEN as u64;
    for (f, entry) in index.frames.iter().enumerate() {
        let mut encoded = Vec::new();
        if let Some(t) = &entry.table {
            t.encode(&mut encoded);
            let data = offset + FRAME_HEADER_LEN as u64 + 2 + encoded.len() as u64;
            let blobs: Vec<(u64, u32, u32)> = t
                .blob_offsets()
                .iter()
                .zip(&t.blobs)
                .map(|(rel, b)| (data + rel, b.len, b.crc))
                .collect();
            for (r, rel) in t.records.iter().zip(t.meta_offsets()) {
                out.push((
                    r.id.clone(),
                    r.kind,
                    f as u32,
                    data + rel,
                    r.meta_len,
                    r.meta_crc,
                    r.meta_codec,
                    r.refs.iter().map(|&b| blobs[b as usize]).collect(),
                ));
            }
        }
        tables.push(encoded);
        offset += entry.frame_len;
    }
    (out, tables)
}

/// Checks every lookup of `index` against [`expected`].
fn check_lookups(bytes: &[u8], index: &ShardIndex, what: &str) {
    let (want, tables) = expected(bytes);
    assert_eq!(index.len(), want.len(), "{what}");
    assert_eq!(index.frames().len(), tables.len(), "{what}");
    for (f, table) in tables.iter().enumerate() {
        assert_eq!(
            index.table_bytes(f),
            &table[..],
            "{what}: table of frame {f}"
        );
        for i in index.frame_records(f) {
            assert_eq!(index.record(i).frame as usize, f, "{what}: record {i}");
        }
    }
    let mut blobs_seen = 0;
    for (i, w) in want.iter().enumerate() {
        let r = index.record(i);
        let got = (
            r.id.to_string(),
            r.kind,
            r.frame,
            r.meta_offset,
            r.meta_len,
            r.meta_crc,
            r.meta_codec,
            index
                .record_blobs(i)
                .iter()
                .map(|&b| {
                    let blob = index.blob(b);
                    blobs_seen = blobs_seen.max(b + 1);
                    (blob.offset, blob.len, blob.crc)
                })
                .collect::<Vec<_>>(),
        );
        assert_eq!(&got, w, "{what}: record {i}");
        assert_eq!(index.position(&w.0), Some(i), "{what}: id {:?}", w.0);
        // The span covers the frame head, the metadata and every image.
        let span = index.record_span(i);
        assert_eq!(
            span.start,
            index.frames()[r.frame as usize].offset,
            "{what}"
        );
        for &(offset, len, _) in &w.7 {
            assert!(span.end >= offset + u64::from(len), "{what}: record {i}");
        }
        assert_eq!(index.get(i), Some(r), "{what}");
    }
    assert_eq!(index.get(want.len()), None, "{what}");
    assert_eq!(
        blobs_seen as usize,
        index.blob_count(),
        "{what}: every image is used"
    );
    assert_eq!(index.blobs().len(), index.blob_count(), "{what}");
    for id in [
        "",
        "nope",
        "sft/images/positive-edit/999999.png",
        "\u{10ffff}",
    ] {
        assert_eq!(index.position(id), None, "{what}: {id:?}");
    }
}

fn with_id(mut r: Record, id: &str) -> Record {
    r.id = id.to_string();
    r
}

/// Shapes of shard: one record; many records each in its own group; groups of several
/// records sharing a source; several images per record; ids of 1 and 200 bytes and beyond
/// ASCII, in no sorted order; metadata with a dictionary (1.1); index stored or compressed.
fn shapes() -> Vec<(String, Vec<Record>, WriterOptions)> {
    let stored = WriterOptions {
        compression_level: 0,
        ..WriterOptions::default()
    };
    let small_groups = WriterOptions {
        max_group_records: 3,
        ..WriterOptions::default()
    };
    let stored_v1_1 = WriterOptions {
        compression_level: 0,
        ..WriterOptions::default()
    };
    let v1_0 = WriterOptions {
        minor_version: 0,
        ..WriterOptions::default()
    };
    let mixed: Vec<Record> = (0..60)
        .map(|n| match n % 3 {
            0 => sft(n, n / 6),
            1 => preference(n, n / 6, 1 + n % 4),
            _ => multi_turn(n, n / 6, 1 + n % 3),
        })
        .collect();
    let odd_ids: Vec<Record> = [
        "z",
        "a",
        &"x".repeat(200),
        "é/ü/日本",
        "m",
        "a/b",
        "a.",
        "A",
    ]
    .iter()
    .enumerate()
    .map(|(n, id)| with_id(sft(n as u32, n as u32 % 2), id))
    .collect();
    let alone: Vec<Record> = (0..300).map(|n| sft(n, 1000 + n)).collect();
    let dict: Vec<Record> = (0..120).map(editing_v1_1).collect();
    let plain: Vec<Record> = (0..120).map(|n| sft(n, n / 4)).collect();
    let mut shapes = vec![
        (
            "one record".to_string(),
            vec![sft(1, 1)],
            WriterOptions::default(),
        ),
        ("one record, stored".into(), vec![sft(1, 1)], stored.clone()),
        (
            "mixed kinds".into(),
            mixed.clone(),
            WriterOptions::default(),
        ),
        ("mixed kinds, stored".into(), mixed.clone(), stored.clone()),
        ("mixed, groups of 3".into(), mixed, small_groups),
        ("odd ids".into(), odd_ids.clone(), WriterOptions::default()),
        ("odd ids, stored".into(), odd_ids, stored),
        ("300 groups of one".into(), alone, WriterOptions::default()),
        (
            "dictionary (1.1)".into(),
            dict.clone(),
            WriterOptions::default(),
        ),
        ("dictionary (1.1), stored".into(), dict, stored_v1_1),
        ("format 1.0".into(), plain, v1_0),
    ];
    let big = image(7, "image/png", 4, 4, 4000);
    let many_images = Record::new(
        "many",
        Kind::MultiTurn,
        big,
        (0..40)
            .map(|t| Turn::new(image(100 + t, "image/png", 4, 4, 30)))
            .collect(),
    );
    shapes.push((
        "40 images".into(),
        vec![many_images, sft(2, 2)],
        WriterOptions::default(),
    ));
    shapes
}

#[test]
fn lookups_agree_with_the_index_decoded_the_slow_way() {
    for (what, records, options) in shapes() {
        let bytes = write(&records, options);
        let (at, foot) = footer(&bytes);
        let index = ShardIndex::parse_footer(foot, at, &Limits::DEFAULT).unwrap();
        check_lookups(&bytes, &index, &what);
        if what == "dictionary (1.1)" {
            assert!(
                index.dictionary.is_some(),
                "{what}: the shape has a dictionary"
            );
        }
        let shared = Bytes::from(bytes.clone());
        let index =
            ShardIndex::parse_footer_shared(&shared.slice(at as usize..), at, &Limits::DEFAULT)
                .unwrap();
        check_lookups(&bytes, &index, &format!("{what} (shared)"));
        // And the records read through it are the ones written.
        let shard = RandomAccessShard::open(shared, "shape.esd").unwrap();
        for (i, want) in records.iter().enumerate() {
            assert_eq!(&shard.get(i).unwrap(), want, "{what}: record {i}");
            let by_id = shard.get_by_id(&want.id).unwrap().unwrap();
            assert_eq!(&by_id, want, "{what}: {}", want.id);
        }
    }
}

#[test]
fn a_stored_index_over_shared_bytes_is_read_in_place() {
    let records: Vec<Record> = (0..200).map(|n| sft(n, n)).collect();
    let options = WriterOptions {
        compression_level: 0,
        ..WriterOptions::default()
    };
    let bytes = Bytes::from(write(&records, options));
    let (at, foot) = footer(&bytes);
    let copied = ShardIndex::parse_footer(foot, at, &Limits::DEFAULT).unwrap();
    let shared =
        ShardIndex::parse_footer_shared(&bytes.slice(at as usize..), at, &Limits::DEFAULT).unwrap();
    // The shared index holds no copy of the payload: only its locating tables (12 bytes a
    // record, 8 an image, 40 a frame: here every record is a group of its own).
    let payload = (foot.len() - TRAILER_LEN - FRAME_HEADER_LEN - 3) as u64;
    assert_eq!(copied.heap_bytes() - shared.heap_bytes(), payload);
    let tables = 200 * 12 + 400 * 8 + 200 * 40;
    assert!(
        shared.heap_bytes() < tables + 1024,
        "{}",
        shared.heap_bytes()
    );
}

/// Replaces the index frame of `bytes` with `body` (valid CRC, trailer to match).
fn with_index_body(bytes: &[u8], body: &[u8], records: u64) -> Vec<u8> {
    let (at, _) = footer(bytes);
    let mut out = bytes[..at as usize].to_vec();
    out.extend_from_slice(
        &editshard_format::format::FrameHeader {
            body_len: body.len() as u32,
            body_crc: crc32(body),
        }
        .encode(),
    );
    out.extend_from_slice(body);
    out.extend_from_slice(
        &Trailer {
            index_offset: at,
            index_len: (FRAME_HEADER_LEN + body.len()) as u64,
            record_count: records,
        }
        .encode(),
    );
    out
}

fn refused(bytes: &[u8], what: &str) -> editshard_format::Error {
    let (at, foot) = footer(bytes);
    let e = ShardIndex::parse_footer(foot, at, &Limits::DEFAULT)
        .err()
        .unwrap_or_else(|| panic!("{what}: a lying footer was accepted"));
    assert!(e.is_corruption(), "{what}: {e}");
    assert!(e.offset().is_some(), "{what}: no location in {e}");
    // Through the reader, the error names the shard too.
    let e2 = RandomAccessShard::open(Bytes::from(bytes.to_vec()), "lies.esd")
        .err()
        .unwrap_or_else(|| panic!("{what}: accepted by the reader"));
    assert_eq!(e2.shard(), Some("lies.esd"), "{what}: {e2}");
    e
}

#[test]
fn a_footer_whose_offsets_lie_is_refused_at_open_with_where() {
    let records: Vec<Record> = (0..12).map(|n| sft(n, n / 3)).collect();
    let bytes = write(&records, WriterOptions::default());
    let (at, _) = footer(&bytes);

    // A frame said to be longer than it is: the offsets after it would all be wrong.
    let lie = rewrite_index(&bytes, |index| index.frames[1].frame_len += 7);
    let e = refused(&lie, "longer frame");
    assert_eq!(e.offset(), Some(at), "{e}");
    assert!(e.to_string().contains("does not add up"), "{e}");

    // A metadata block said to be longer: the images would be read from the wrong place.
    let lie = rewrite_index(&bytes, |index| {
        let t = index.frames[1].table.as_mut().unwrap();
        t.records[0].meta_len += 1;
    });
    let e = refused(&lie, "longer metadata");
    assert!(e.to_string().contains("frame 1"), "{e}");

    // An image said to be shorter, the next frame moved to match: frames no longer tile.
    let lie = rewrite_index(&bytes, |index| {
        let t = index.frames[1].table.as_mut().unwrap();
        t.blobs[0].len -= 1;
        index.frames[1].frame_len -= 1;
    });
    let e = refused(&lie, "frames that do not reach the index");
    assert!(e.to_string().contains("index starts at"), "{e}");

    // Two records with the same id: a read by id could return either.
    let lie = rewrite_index(&bytes, |index| {
        let t = index.frames[2].table.as_mut().unwrap();
        t.records[0].id = records[0].id.clone();
    });
    let e = refused(&lie, "duplicate id");
    assert!(e.to_string().contains("appears twice"), "{e}");
    assert!(e.to_string().contains(&records[0].id), "{e}");

    // A reference past the group's images, in a stored index: located in the file.
    let (at_stored, foot) = footer(&bytes);
    let body = &foot[FRAME_HEADER_LEN..foot.len() - TRAILER_LEN];
    let mut index = IndexFrame::parse_body(body, 0, &Limits::DEFAULT).unwrap();
    let t: &mut GroupTable = index
        .frames
        .iter_mut()
        .find_map(|f| f.table.as_mut())
        .unwrap();
    t.records[0].refs[0] = 9;
    let lie = with_index_body(&bytes, &index.encode_body(0), 12);
    let e = refused(&lie, "reference past the images");
    let offset = e.offset().unwrap();
    assert!(
        offset > at_stored && offset < lie.len() as u64,
        "{e}: the offset is inside the index"
    );
    assert!(e.to_string().contains("image reference 9"), "{e}");

    // A trailer whose record count disagrees with the index.
    let (at, foot) = footer(&bytes);
    let mut cut = bytes.clone();
    let trailer_at = cut.len() - TRAILER_LEN;
    cut[trailer_at..].copy_from_slice(
        &Trailer {
            index_offset: at,
            index_len: (foot.len() - TRAILER_LEN) as u64,
            record_count: 13,
        }
        .encode(),
    );
    let e = refused(&cut, "record count");
    assert!(e.to_string().contains("trailer says 13"), "{e}");
}

/// What a loaded index holds, per record, for shards of `n` records of the same shape.
fn bytes_per_record(n: u32) -> f64 {
    let records: Vec<Record> = (0..n).map(|k| sft(k, k / 2)).collect();
    let bytes = write(&records, WriterOptions::default());
    let (at, foot) = footer(&bytes);
    let index = ShardIndex::parse_footer(foot, at, &Limits::DEFAULT).unwrap();
    index.heap_bytes() as f64 / f64::from(n)
}

#[test]
fn memory_per_record_does_not_grow_with_the_shard() {
    let small = bytes_per_record(200);
    let large = bytes_per_record(6000);
    // The payload holds each entry once (an id of ~35 bytes here); the tables 12 bytes a
    // record, 8 an image, 40 a group of two. The parsed index of old held ~10x the footer.
    assert!(
        large <= small * 1.05,
        "{small:.1} then {large:.1} bytes a record"
    );
    assert!(large < 130.0, "{large:.1} bytes a record");
}
