//! Reading a dataset served by nginx: request counts from the access log, and the bytes a
//! metadata-only read transfers.

use editshard::read::{Dataset, Images, ReadPlan, StreamOptions};
use editshard::storage::{Location, StorageOptions};
use editshard_tools::fixtures::{mixed, same, write};
use editshard_tools::servers::Nginx;
use futures_util::StreamExt;

struct Served {
    _root: tempfile::TempDir,
    nginx: Nginx,
    records: Vec<editshard::Record>,
    url: String,
}

/// 48 records with 20 KB images, in shards of about 1 MB, groups of 4 records.
fn serve() -> Served {
    let root = tempfile::tempdir().unwrap();
    let records = mixed(48, Some(20_000));
    let m = write(&root.path().join("ds"), &records, 1 << 20, 4);
    assert!(m.shards.len() >= 3, "{} shards", m.shards.len());
    let nginx = Nginx::start(root.path());
    let url = format!("{}/ds", nginx.url());
    Served {
        _root: root,
        nginx,
        records,
        url,
    }
}

async fn open(s: &Served) -> Dataset {
    Dataset::open(Location::parse(&s.url, &StorageOptions::default()).unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_and_fetch_by_id_costs_four_requests_then_one() {
    let s = serve();
    let ds = open(&s).await;
    let target = &s.records[30];
    let r = ds.get_by_id(&target.id).await.unwrap().unwrap();
    assert!(same(&r, target));
    // The manifest, the manifest again for its id filters (a reader does not keep them
    // from the open), the footer, the record.
    assert_eq!(s.nginx.wait_for_requests(4), 4);
    let log = s.nginx.access_log();
    assert_eq!(log[0].path, "/ds/manifest.json");
    assert_eq!(log[1].path, "/ds/manifest.json");
    assert!(log[2].range.is_some() && log[3].range.is_some(), "{log:#?}");
    assert!(log.iter().all(|l| l.method == "GET" && l.status < 300));

    // Further records of the same shard: one request each.
    let (shard, _) = ds.locate(30).unwrap();
    let same_shard: Vec<u64> = (0..48u64)
        .filter(|&i| i != 30 && ds.locate(i).unwrap().0 == shard)
        .take(3)
        .collect();
    assert_eq!(same_shard.len(), 3);
    for (k, &i) in same_shard.iter().enumerate() {
        s.nginx.clear_log();
        let id = &s.records[i as usize].id;
        let r = if k == 0 {
            ds.get_by_id(id).await.unwrap().unwrap()
        } else {
            ds.get(i).await.unwrap()
        };
        assert!(same(&r, &s.records[i as usize]));
        assert_eq!(s.nginx.wait_for_requests(1), 1, "record {i}");
    }

    // Three adjacent records in one batch: one coalesced request.
    let first = (0..48u64)
        .find(|&i| ds.locate(i).unwrap() == (shard, 0))
        .unwrap();
    s.nginx.clear_log();
    let many = ds
        .get_many(&[first + 2, first, first + 1], Images::All)
        .await
        .unwrap();
    assert_eq!(many[1].id, s.records[first as usize].id);
    assert_eq!(s.nginx.wait_for_requests(1), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_only_transfers_under_five_percent() {
    let s = serve();
    let ds = open(&s).await;
    let plan = ReadPlan::default().images(Images::None).batch(1000);
    let got: Vec<_> = ds.reader(plan).map(|r| r.unwrap()).collect().await;
    assert_eq!(got.len(), s.records.len());
    assert!(got.iter().all(|r| r.images().all(|i| i.data.is_none())));
    for (g, want) in got.iter().zip(&s.records) {
        let mut w = want.clone();
        w.strip_data();
        assert_eq!(g, &w);
    }
    let shards = ds.manifest().shards.len();
    // manifest + per shard: footer + one request per group's metadata run.
    let mut groups = 0;
    for sh in 0..shards {
        let index = ds.shard(sh).await.unwrap();
        let mut frames: Vec<u32> = index.index().records().map(|r| r.frame).collect();
        frames.dedup();
        groups += frames.len();
    }
    let n = s.nginx.wait_for_requests(1 + shards + groups);
    assert!(n <= 1 + shards + groups, "{n} requests");
    let transferred: u64 = s.nginx.access_log().iter().map(|l| l.bytes).sum();
    let total = ds.manifest().bytes;
    let ratio = transferred as f64 / total as f64;
    eprintln!(
        "metadata-only: {transferred} of {total} bytes ({:.2}%), {n} requests",
        ratio * 100.0
    );
    assert!(ratio < 0.05, "{transferred} of {total} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_whole_shards_one_request_each() {
    let s = serve();
    let ds = open(&s).await;
    let got: Vec<_> = ds
        .stream(StreamOptions::default())
        .map(|r| r.unwrap())
        .collect()
        .await;
    assert!(got.iter().zip(&s.records).all(|(a, b)| same(a, b)));
    assert_eq!(got.len(), s.records.len());
    let shards = ds.manifest().shards.len();
    assert_eq!(s.nginx.wait_for_requests(1 + shards), 1 + shards);
    let log = s.nginx.access_log();
    assert!(
        log[1..]
            .iter()
            .all(|l| l.range.is_none() && l.status == 200)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_shard_is_named_with_status() {
    let s = serve();
    let ds = open(&s).await;
    let shard = ds.manifest().shards[1].path.clone();
    std::fs::remove_file(s.nginx.root.join("ds").join(&shard)).unwrap();
    let results: Vec<_> = ds.stream(StreamOptions::default()).collect().await;
    let e = results.last().unwrap().as_ref().unwrap_err();
    let text = e.to_string();
    assert!(text.contains(&shard) && text.contains("404"), "{text}");
    assert!(!e.is_corruption());
}
