//! An index that disagrees with the frames it describes, with every CRC valid (a writer that
//! lies, not damage): random access must never return one record's data under another's id.
//! At the default verification it checks the record's frame header and group table against
//! the index (for an image read alone too); `Verify::Full` adds each image's SHA-256
//! (`verify_levels` has a lie only that catches).

use bytes::Bytes;
use editshard_format::shard::{RandomAccessShard, ReadOptions, ShardWriter, Verify};
use editshard_format::{Image, Kind, Record, Turn};
use editshard_tools::records::image;
use editshard_tools::tamper::rewrite_index;

/// Two records sharing a source (so one group) whose edits have equal lengths.
fn shard() -> (Vec<u8>, Vec<Record>) {
    shard_sharing(image(1, "image/jpeg", 4, 3, 40))
}

/// Two records sharing the source `src`, with edits of 50 bytes each.
fn shard_sharing(src: Image) -> (Vec<u8>, Vec<Record>) {
    let records = vec![
        Record::new(
            "a",
            Kind::Sft,
            src.clone(),
            vec![Turn::new(image(2, "image/png", 4, 3, 50))],
        ),
        Record::new(
            "b",
            Kind::Sft,
            src,
            vec![Turn::new(image(3, "image/png", 4, 3, 50))],
        ),
    ];
    let mut w = ShardWriter::new(Vec::new()).unwrap();
    for r in &records {
        w.append(r).unwrap();
    }
    (w.finish().unwrap().0, records)
}

/// Every record read by id is either an error or the record with that id, and every image
/// returned hashes to its recorded SHA-256.
fn assert_never_wrong(bytes: Vec<u8>, records: &[Record], what: &str) {
    let shard = RandomAccessShard::open(Bytes::from(bytes), "lying.esd")
        .unwrap_or_else(|e| panic!("{what}: the index is consistent in itself: {e}"));
    let mut errors = 0;
    for want in records {
        match shard.get_by_id(&want.id) {
            Ok(Some(got)) => {
                for img in got.images() {
                    img.check_data().unwrap_or_else(|e| panic!("{what}: {e}"));
                }
                assert_eq!(&got, want, "{what}: {} came back with other data", want.id);
            }
            Ok(None) => {}
            Err(e) => {
                assert!(e.is_corruption(), "{what}: {e}");
                assert_eq!(e.shard(), Some("lying.esd"), "{what}: {e}");
                errors += 1;
            }
        }
        if let Some(i) = shard.index().position(&want.id) {
            match shard.metadata(i) {
                Ok(got) => assert_eq!(got.turns[0].output.sha256, want.turns[0].output.sha256),
                Err(_) => errors += 1,
            }
            for k in 0..2 {
                if let Ok(data) = shard.image(i, k) {
                    let img = if k == 0 {
                        &want.source
                    } else {
                        &want.turns[0].output
                    };
                    assert_eq!(
                        Some(&data),
                        img.data.as_ref(),
                        "{what}: image {k} of {}",
                        want.id
                    );
                }
            }
        }
    }
    assert!(errors > 0, "{what}: the lie went unnoticed");
}

#[test]
fn swapped_ids_in_the_index_are_caught() {
    let (bytes, records) = shard();
    let lying = rewrite_index(&bytes, |index| {
        let table = index.frames[0].table.as_mut().unwrap();
        assert_eq!(table.records.len(), 2, "both records share one group");
        let (a, b) = (table.records[0].id.clone(), table.records[1].id.clone());
        table.records[0].id = b;
        table.records[1].id = a;
    });
    assert_never_wrong(lying, &records, "swapped ids");
}

#[test]
fn a_reference_to_another_image_is_caught() {
    let (bytes, records) = shard();
    let lying = rewrite_index(&bytes, |index| {
        let table = index.frames[0].table.as_mut().unwrap();
        // Each record's edit now points at the other's: same length, its own valid CRC.
        let (a, b) = (table.records[0].refs[1], table.records[1].refs[1]);
        table.records[0].refs[1] = b;
        table.records[1].refs[1] = a;
    });
    assert_never_wrong(lying, &records, "swapped image reference");
}

#[test]
fn an_index_that_matches_the_frames_reads_everything() {
    let (bytes, records) = shard();
    let same = rewrite_index(&bytes, |_| {});
    let shard = RandomAccessShard::open(Bytes::from(same), "same.esd").unwrap();
    for (i, want) in records.iter().enumerate() {
        assert_eq!(&shard.get(i).unwrap(), want);
        assert_eq!(
            shard.image(i, 1).unwrap(),
            want.turns[0].output.data.clone().unwrap()
        );
    }
}

/// Ids are unique within a shard: a shard written with the same id twice (valid CRCs, in two
/// groups) is refused by the streaming readers and on open by random access, with the id.
#[test]
fn a_shard_with_a_duplicate_id_is_refused_by_every_reader() {
    use editshard_format::shard::ShardReader;
    use editshard_tools::tamper::rename_record;
    let records = vec![
        Record::new(
            "a",
            Kind::Sft,
            image(1, "image/jpeg", 4, 3, 40),
            vec![Turn::new(image(2, "image/png", 4, 3, 50))],
        ),
        Record::new(
            "b",
            Kind::Sft,
            image(3, "image/jpeg", 4, 3, 40),
            vec![Turn::new(image(4, "image/png", 4, 3, 50))],
        ),
    ];
    let mut w = ShardWriter::new(Vec::new()).unwrap();
    for r in &records {
        w.append(r).unwrap();
    }
    let bytes = rename_record(&w.finish().unwrap().0, "b", "a");
    let err = ShardReader::new(&bytes[..])
        .named("dup.esd")
        .find_map(Result::err)
        .expect("a shard holding id \"a\" twice was read without error");
    assert!(err.is_corruption(), "{err}");
    assert_eq!(err.id(), Some("a"), "{err}");
    assert_eq!(err.record(), Some(1), "{err}");
    assert!(err.offset().is_some(), "{err}");
    assert!(err.to_string().contains("twice"), "{err}");
    let err = RandomAccessShard::open(Bytes::from(bytes), "dup.esd")
        .err()
        .unwrap();
    assert!(err.to_string().contains("twice"), "{err}");
}

/// With `Verify::Full`, a view hashes each stored image once and remembers what it found: a
/// record that points at an image already verified for another record, but claims another
/// SHA-256, is still caught, on every read, while the honest record keeps reading. (Decoded
/// with `decode_parts`, which skips the frame head check that would catch this lie first.)
#[test]
fn an_image_verified_once_is_still_checked_against_each_records_claim() {
    // Every image the same length, so that references can be swapped without a length lie.
    let (bytes, records) = shard_sharing(image(1, "image/png", 4, 3, 50));
    let lying = Bytes::from(rewrite_index(&bytes, |index| {
        let table = index.frames[0].table.as_mut().unwrap();
        // b's source and edit swapped: its edit now points at the shared source, which a
        // verifies honestly first. a is untouched.
        table.records[1].refs.swap(0, 1);
    }));
    let options = ReadOptions::verifying(Verify::Full);
    let shard = RandomAccessShard::open_with(lying.clone(), "memo.esd", options).unwrap();
    let view = shard.view();
    for round in 0..3 {
        let a = view.decode_parts(0, &lying, 0, true).unwrap();
        assert_eq!(a, records[0], "round {round}: a reads");
        let e = view.decode_parts(1, &lying, 0, true).unwrap_err();
        assert!(e.is_corruption(), "round {round}: {e}");
        assert!(e.to_string().contains("SHA-256"), "round {round}: {e}");
    }
}
