//! A dataset's verification level (`DatasetOptions::read.verify`) holds in every way of
//! reading it (get, get_many, an epoch reader, a stream): a flipped image byte is caught by
//! the default, metadata claiming another image's SHA-256 with valid CRCs only by
//! `Verify::Full`, and `Verify::None` returns the bytes as stored.

use editshard::Record;
use editshard::read::{Dataset, DatasetOptions, Images, ReadPlan, StreamOptions};
use editshard::shard::{RandomAccessShard, ReadOptions, Verify};
use editshard::storage::Location;
use editshard_tools::fixtures::{mixed, write};
use editshard_tools::tamper::{claim_a_false_hash, replace_shard};
use futures_util::StreamExt;

const LEVELS: [Verify; 3] = [Verify::None, Verify::Crc, Verify::Full];

async fn open(dir: &std::path::Path, verify: Verify) -> Dataset {
    let options = DatasetOptions {
        read: ReadOptions::verifying(verify),
        ..DatasetOptions::default()
    };
    Dataset::open_with(Location::local(dir), options)
        .await
        .unwrap()
}

/// Record `victim` read every way the library offers: alone, in a batch with its neighbours,
/// through an epoch reader and a stream (each the victim's result, or the first error).
async fn read_every_way(
    ds: &Dataset,
    victim: u64,
) -> Vec<(&'static str, editshard::Result<Record>)> {
    let n = ds.len();
    let pick = |rs: Vec<Record>| rs.into_iter().nth(victim as usize).unwrap();
    let all: Vec<u64> = (0..n).collect();
    let batch = ds.get_many(&all, Images::All).await.map(pick);
    let plan = ReadPlan::default();
    let epoch: editshard::Result<Vec<Record>> = ds
        .reader(plan)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect();
    let streamed: editshard::Result<Vec<Record>> = ds
        .stream(StreamOptions::default())
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect();
    vec![
        ("get", ds.get(victim).await),
        ("get_many", batch),
        ("reader", epoch.map(pick)),
        ("stream", streamed.map(pick)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_false_image_hash_is_caught_only_by_full() {
    let dir = tempfile::tempdir().unwrap();
    let records = mixed(8, None);
    write(dir.path(), &records, 1 << 20, 4);
    let victim = 5u64;
    claim_a_false_hash(dir.path(), &records[victim as usize].id);
    for verify in LEVELS {
        let ds = open(dir.path(), verify).await;
        for (how, got) in read_every_way(&ds, victim).await {
            let what = format!("{how} at verify={verify}");
            match got {
                Ok(r) if verify != Verify::Full => {
                    assert_eq!(r.id, records[victim as usize].id, "{what}");
                    let want = &records[victim as usize].turns[0].output.data;
                    assert_eq!(&r.turns[0].output.data, want, "{what}");
                    assert!(r.turns[0].output.check_data().is_err(), "{what}");
                }
                Ok(_) => panic!("{what}: the false hash went unnoticed"),
                Err(e) => {
                    assert_eq!(verify, Verify::Full, "{what}: {e}");
                    assert!(e.is_corruption(), "{what}: {e}");
                    assert!(e.to_string().contains("SHA-256"), "{what}: {e}");
                    assert_eq!(e.id(), Some(records[victim as usize].id.as_str()), "{what}");
                    assert!(e.shard().is_some() && e.offset().is_some(), "{what}: {e}");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_image_byte_is_caught_by_default_and_returned_by_none() {
    let dir = tempfile::tempdir().unwrap();
    let records = mixed(8, None);
    write(dir.path(), &records, 1 << 20, 4);
    let victim = 5u64;
    let ds = open(dir.path(), Verify::Crc).await;
    assert_eq!(ds.manifest().shards.len(), 1);
    // A copy: the record's bytes are a view of the mapped file, which is rewritten in place.
    let edit = ds.get(victim).await.unwrap().turns[0]
        .output
        .data
        .as_ref()
        .unwrap()
        .to_vec();
    replace_shard(dir.path(), 0, |mut bytes| {
        let shard = RandomAccessShard::open(bytes.clone(), "shard").unwrap();
        let at = shard.view().image_range(victim as usize, 1).unwrap();
        bytes[(at.start + at.end) as usize / 2] ^= 0x20;
        bytes
    });
    for verify in LEVELS {
        let ds = open(dir.path(), verify).await;
        for (how, got) in read_every_way(&ds, victim).await {
            let what = format!("{how} at verify={verify}");
            match got {
                Ok(r) => {
                    assert_eq!(verify, Verify::None, "{what}: the damage went unnoticed");
                    let data = r.turns[0].output.data.clone().unwrap();
                    assert_eq!(data.len(), edit.len(), "{what}");
                    assert_ne!(
                        data[..],
                        edit[..],
                        "{what}: the damaged byte was not returned"
                    );
                }
                Err(e) => {
                    assert_ne!(verify, Verify::None, "{what}: {e}");
                    assert!(
                        matches!(e.kind(), editshard::ErrorKind::Checksum { .. }),
                        "{what}: {e}"
                    );
                    assert!(e.shard().is_some() && e.offset().is_some(), "{what}: {e}");
                }
            }
        }
    }
}
