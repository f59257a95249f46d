//! Reading a dataset uploaded to s3s-fs through `Location::put_file`.

use std::collections::HashSet;

use editshard::read::{Dataset, Images, Partition, ReadPlan, ResumeState, Shuffle, StreamOptions};
use editshard::storage::StorageOptions;
use editshard_tools::fixtures::{mixed, same, upload, write};
use editshard_tools::servers::S3Server;
use futures_util::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_then_stream_shuffle_and_fetch_by_id() {
    let server = S3Server::start();
    server.create_bucket("datasets");
    let dir = tempfile::tempdir().unwrap();
    let records = mixed(30, Some(2_000));
    let manifest = write(dir.path(), &records, 16 << 10, 4);
    let loc = server.location("s3://datasets/pico/v1", StorageOptions::default());
    upload(&loc, dir.path(), &manifest).await;

    let ds = Dataset::open(loc.clone()).await.unwrap();
    assert_eq!(ds.len(), 30);
    let got: Vec<_> = ds
        .stream(StreamOptions::default())
        .map(|r| r.unwrap())
        .collect()
        .await;
    assert!(got.iter().zip(&records).all(|(a, b)| same(a, b)));
    assert_eq!(got.len(), 30);

    // Two ranks, shuffled: disjoint, together everything, each record intact.
    let mut all = HashSet::new();
    for rank in 0..2 {
        let plan = ReadPlan::new(ResumeState::new(5, 0))
            .shuffle(Shuffle::Block { window: 4 })
            .partition(Partition::rank(rank, 2))
            .batch(4);
        let mine: Vec<_> = ds.reader(plan).map(|r| r.unwrap()).collect().await;
        for r in mine {
            let want = records.iter().find(|w| w.id == r.id).unwrap();
            assert!(same(&r, want));
            assert!(all.insert(r.id));
        }
    }
    assert_eq!(all.len(), 30);

    let r = ds
        .get_by_id_with(&records[17].id, Images::None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.id, records[17].id);
    assert!(r.source.data.is_none());
}
