//! Each verification level catches what it promises, and no more (spec section 7, "What a
//! read checks"): a damaged image byte is caught by the default (`Verify::Crc`) and by
//! `Verify::Full`, in every reader; metadata that disagrees with the image it points at while
//! every CRC is valid (a broken writer) only by `Verify::Full`; `Verify::None` returns the
//! bytes as they are.

use bytes::Bytes;
use editshard_format::shard::{
    RandomAccessShard, ReadOptions, ShardDecoder, ShardReader, ShardWriter, Verify, WriterOptions,
};
use editshard_format::{Error, ErrorKind, Record, Turn};
use editshard_tools::records::image;
use futures_util::StreamExt;
use tokio_util::codec::FramedRead;

const LEVELS: [Verify; 3] = [Verify::None, Verify::Crc, Verify::Full];

/// Two records in one group: "a" honest, "b" whose edit's metadata claims the SHA-256 of
/// other bytes. The writer was told not to check hashes (as a broken one would not), so every
/// CRC is valid and the index describes the frames exactly.
fn shard_with_a_false_hash() -> (Vec<u8>, Vec<Record>) {
    let mut lying = image(3, "image/png", 4, 3, 50);
    lying.sha256 = image(99, "image/png", 4, 3, 50).sha256;
    let records = vec![
        Record::new(
            "a",
            editshard_format::Kind::Sft,
            image(1, "image/jpeg", 4, 3, 40),
            vec![Turn::new(image(2, "image/png", 4, 3, 50))],
        ),
        Record::new(
            "b",
            editshard_format::Kind::Sft,
            image(4, "image/jpeg", 4, 3, 40),
            vec![Turn::new(lying)],
        ),
    ];
    let options = WriterOptions {
        verify_hashes: false,
        ..WriterOptions::default()
    };
    let mut w = ShardWriter::with_options(Vec::new(), options).unwrap();
    for r in &records {
        w.append(r).unwrap();
    }
    (w.finish().unwrap().0, records)
}

/// Every record through the sync streaming reader, the async one and the random-access
/// reader (whole record, and metadata then each image alone), at level `verify`: each reader's records or its
/// first error.
fn read_every_way(bytes: &[u8], verify: Verify) -> Vec<(&'static str, Result<Vec<Record>, Error>)> {
    let options = ReadOptions::verifying(verify);
    let sync = ShardReader::with_options(bytes, options.clone())
        .named("levels.esd")
        .collect::<Result<Vec<_>, _>>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let decoder = FramedRead::new(bytes, ShardDecoder::with_options(options.clone()));
    let streamed: Vec<Result<Record, Error>> = rt.block_on(decoder.collect());
    let streamed = streamed.into_iter().collect::<Result<Vec<_>, _>>();
    let shard =
        RandomAccessShard::open_with(Bytes::copy_from_slice(bytes), "levels.esd", options).unwrap();
    let random = (0..shard.len()).map(|i| shard.get(i)).collect();
    let images = (0..shard.len())
        .map(|i| {
            let mut r = shard.metadata(i)?;
            r.source.data = Some(shard.image(i, 0)?);
            r.turns[0].output.data = Some(shard.image(i, 1)?);
            Ok(r)
        })
        .collect();
    vec![
        ("ShardReader", sync),
        ("ShardDecoder", streamed),
        ("RandomAccessShard::get", random),
        ("RandomAccessShard::image", images),
    ]
}

#[test]
fn a_false_image_hash_with_valid_crcs_is_caught_only_by_full() {
    let (bytes, records) = shard_with_a_false_hash();
    for verify in LEVELS {
        for (reader, got) in read_every_way(&bytes, verify) {
            let what = format!("{reader} at verify={verify}");
            if verify == Verify::Full {
                let e = got.expect_err(&format!("{what}: the false hash went unnoticed"));
                assert!(e.is_corruption(), "{what}: {e}");
                assert!(e.to_string().contains("SHA-256"), "{what}: {e}");
                assert_eq!(e.id(), Some("b"), "{what}: {e}");
                assert_eq!(e.record(), Some(1), "{what}: {e}");
                assert!(e.offset().is_some(), "{what}: {e}");
            } else {
                // The bytes are what was stored: the claim is the metadata's, not checked.
                let got = got.unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(got, records, "{what}");
                assert!(got[1].turns[0].output.check_data().is_err());
            }
        }
    }
}

#[test]
fn a_flipped_image_byte_is_caught_by_default_and_returned_by_none() {
    let (bytes, records) = shard_with_a_false_hash();
    let shard = RandomAccessShard::open(Bytes::from(bytes.clone()), "levels.esd").unwrap();
    // Record a's edit: honest metadata, so only the damage can be caught.
    let at = shard.view().image_range(0, 1).unwrap().start as usize + 7;
    let mut damaged = bytes;
    damaged[at] ^= 0x10;
    for verify in LEVELS {
        for (reader, got) in read_every_way(&damaged, verify) {
            let what = format!("{reader} at verify={verify}");
            if verify == Verify::None {
                let got = got.unwrap_or_else(|e| panic!("{what}: {e}"));
                let data = got[0].turns[0].output.data.as_ref().unwrap();
                let want = records[0].turns[0].output.data.as_ref().unwrap();
                assert_ne!(data, want, "{what}: the damaged byte was not returned");
                assert_eq!(data.len(), want.len());
            } else {
                let e = got.expect_err(&format!("{what}: the damage went unnoticed"));
                assert!(e.is_corruption(), "{what}: {e}");
                assert!(
                    matches!(e.kind(), ErrorKind::Checksum { .. }),
                    "{what}: {e}"
                );
                assert!(e.offset().is_some(), "{what}: {e}");
            }
        }
    }
}
