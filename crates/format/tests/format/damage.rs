//! Exhaustive damage: every truncation and every single-byte flip of a small shard ends in a
//! located error from the streaming readers (never a panic, a hang or a wild allocation), and
//! the random-access reader either reports an error or returns exactly the original records.

use editshard_tools::records;

use bytes::Bytes;
use editshard_format::shard::RandomAccessShard;
use editshard_format::shard::ShardDecoder;
use editshard_format::shard::ShardReader;
use editshard_format::shard::ShardWriter;
use editshard_format::{Error, Record};
use futures_util::StreamExt;
use tokio_util::codec::FramedRead;

fn shard() -> (Vec<u8>, Vec<Record>) {
    let records = records::mixed();
    let mut w = ShardWriter::new(Vec::new()).unwrap();
    for r in &records {
        w.append(r).unwrap();
    }
    (w.finish().unwrap().0, records)
}

fn stream(bytes: &[u8]) -> Result<Vec<Record>, Error> {
    ShardReader::new(bytes).named("damaged.esd").collect()
}

fn assert_located(err: &Error, what: &str) {
    assert_eq!(err.shard(), Some("damaged.esd"), "{what}: {err}");
    assert!(err.offset().is_some(), "{what}: no byte offset in {err}");
    assert!(
        err.is_corruption() || matches!(err.kind(), editshard_format::ErrorKind::Unsupported(_)),
        "{what}: {err}"
    );
}

/// Random access must never return different data than was written: an error, or the truth.
fn random_is_error_or_truth(bytes: &[u8], records: &[Record], what: &str) {
    let Ok(shard) = RandomAccessShard::open(Bytes::copy_from_slice(bytes), "damaged.esd") else {
        return;
    };
    for i in 0..shard.len() {
        match shard.get(i) {
            Ok(r) => assert_eq!(
                Some(&r),
                records.get(i),
                "{what}: record {i} came back different"
            ),
            Err(e) => assert!(e.offset().is_some() || e.record().is_some(), "{what}: {e}"),
        }
        if let Ok(mut r) = shard.metadata(i) {
            let mut want = records[i].clone();
            want.strip_data();
            r.strip_data();
            assert_eq!(r, want, "{what}: metadata {i} came back different");
        }
    }
}

#[test]
fn every_truncation_is_a_located_error() {
    let (bytes, _) = shard();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for len in 0..bytes.len() {
        let cut = &bytes[..len];
        let err = stream(cut).expect_err(&format!("prefix of {len} bytes was accepted"));
        assert_located(&err, &format!("prefix {len}"));
        let async_err = rt.block_on(async {
            let mut framed = FramedRead::new(cut, ShardDecoder::new().named("damaged.esd"));
            while let Some(item) = framed.next().await {
                if let Err(e) = item {
                    return Some(e);
                }
            }
            None
        });
        assert_located(
            &async_err.unwrap_or_else(|| panic!("async accepted prefix {len}")),
            &format!("async prefix {len}"),
        );
        assert!(
            RandomAccessShard::open(Bytes::copy_from_slice(cut), "damaged.esd").is_err(),
            "random open accepted prefix {len}"
        );
    }
}

#[test]
fn every_single_byte_flip_is_detected() {
    let (bytes, records) = shard();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for at in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[at] ^= mask;
            let what = format!("flip {mask:#04x} at byte {at}");
            let err = stream(&bad).expect_err(&format!("{what} went unnoticed"));
            assert_located(&err, &what);
            let async_failed = rt.block_on(async {
                let mut framed = FramedRead::new(&bad[..], ShardDecoder::new());
                while let Some(item) = framed.next().await {
                    if item.is_err() {
                        return true;
                    }
                }
                false
            });
            assert!(async_failed, "async: {what} went unnoticed");
            random_is_error_or_truth(&bad, &records, &what);
        }
    }
}

#[test]
fn a_huge_frame_length_does_not_allocate_it() {
    let (bytes, _) = shard();
    // The first frame header follows the 16-byte shard header: claim a 1 GiB body.
    let mut bad = bytes.clone();
    bad[16..20].copy_from_slice(&(1u32 << 30).to_le_bytes());
    let err = stream(&bad).unwrap_err();
    assert!(
        matches!(err.kind(), editshard_format::ErrorKind::Truncated(_)),
        "{err}"
    );
    // Past the limit: refused before reading the body at all.
    bad[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = stream(&bad).unwrap_err();
    assert!(
        matches!(err.kind(), editshard_format::ErrorKind::Limit(_)),
        "{err}"
    );
}
