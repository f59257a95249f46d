//! The manifest's id filters stay out of a reader's memory until a lookup by id needs them:
//! then they are read again from the manifest's location (local or remote), once, and only
//! if the manifest there is still the one opened.

use editshard::read::Dataset;
use editshard::storage::{Location, StorageOptions};
use editshard_tools::fixtures::{mixed, same, write};
use editshard_tools::servers::Nginx;

/// 40 metadata-light records in several shards.
fn dataset(dir: &std::path::Path) -> (Vec<editshard::Record>, editshard::manifest::Manifest) {
    let records = mixed(40, Some(2_000));
    let m = write(dir, &records, 16 << 10, 4);
    assert!(m.shards.len() >= 3, "{} shards", m.shards.len());
    (records, m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_by_id_are_right_once_the_filters_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let (records, whole) = dataset(dir.path());
    let ds = Dataset::open(Location::local(dir.path())).await.unwrap();
    assert!(ds.manifest().filters_deferred());
    assert!(ds.manifest().heap_bytes() < whole.heap_bytes());
    // Concurrent first lookups share one read of the filters.
    let lookups = records.iter().map(|r| {
        let ds = ds.clone();
        let id = r.id.clone();
        tokio::spawn(async move { ds.get_by_id(&id).await })
    });
    let found = futures_util::future::join_all(lookups).await;
    for (r, got) in records.iter().zip(found) {
        let got = got.unwrap().unwrap().expect("a written id is found");
        assert!(same(&got, r), "{}", r.id);
    }
    assert_eq!(
        ds.get_by_id("no/such/id").await.unwrap().map(|r| r.id),
        None
    );
    // The filters read are exactly the manifest's; the whole manifest writes as it was.
    let filters = ds.id_filters().await.unwrap();
    for (s, shard) in whole.shards.iter().enumerate() {
        assert_eq!(filters.get(s), Some(&shard.id_filter), "shard {s}");
    }
    let again = ds.whole_manifest().await.unwrap();
    assert_eq!(
        again.to_json().unwrap(),
        std::fs::read(dir.path().join("manifest.json")).unwrap()
    );
    // A handle sharing the manifest (as after a fork) reads the filters for itself.
    let shared = Dataset::from_shared_manifest(
        ds.location().clone(),
        ds.shared_manifest(),
        ds.options().clone(),
    );
    let r = shared.get_by_id(&records[33].id).await.unwrap().unwrap();
    assert!(same(&r, &records[33]));
}

/// Another manifest at the location (the dataset rewritten between open and the first lookup
/// by id, even with the same shards and length) is refused, naming the manifest and the id;
/// reads by index, which need no filter, go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_replaced_before_the_first_lookup_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (records, whole) = dataset(dir.path());
    let ds = Dataset::open(Location::local(dir.path())).await.unwrap();
    let path = dir.path().join("manifest.json");
    let bytes = std::fs::read(&path).unwrap();
    // Two shards' filters swapped: a wrong filter would hide records or name other shards.
    let mut replaced = whole.clone();
    let first = replaced.shards[0].id_filter.clone();
    replaced.shards[0].id_filter = replaced.shards[1].id_filter.clone();
    replaced.shards[1].id_filter = first;
    let replaced = replaced.to_json().unwrap();
    std::fs::write(&path, &replaced).unwrap();

    let id = &records[0].id;
    let err = ds.get_by_id(id).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("changed since the dataset was opened"),
        "{text}"
    );
    assert!(err.shard().unwrap().ends_with("manifest.json"), "{text}");
    assert_eq!(err.id(), Some(id.as_str()), "{text}");
    assert!(text.contains("open the dataset again"), "{text}");
    assert!(ds.whole_manifest().await.is_err());
    // Reads by index do not use the filters.
    assert!(same(&ds.get(0).await.unwrap(), &records[0]));
    // The original manifest back: the lookup works (a failed load is not remembered).
    std::fs::write(&path, &bytes).unwrap();
    assert!(same(&ds.get_by_id(id).await.unwrap().unwrap(), &records[0]));
    // Once read, the filters are the dataset's: a later change does not touch them.
    std::fs::write(&path, &replaced).unwrap();
    assert!(same(
        &ds.get_by_id(&records[39].id).await.unwrap().unwrap(),
        &records[39]
    ));
}

/// Over HTTP (nginx): the first lookup by id reads the manifest a second time, then the
/// footer and the record; later lookups read no manifest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_the_filters_are_read_by_the_first_lookup_only() {
    let root = tempfile::tempdir().unwrap();
    let (records, _) = dataset(&root.path().join("ds"));
    let nginx = Nginx::start(root.path());
    let url = format!("{}/ds", nginx.url());
    let ds = Dataset::open(Location::parse(&url, &StorageOptions::default()).unwrap())
        .await
        .unwrap();
    assert_eq!(nginx.wait_for_requests(1), 1);
    assert!(ds.manifest().filters_deferred());
    nginx.clear_log();
    let r = ds.get_by_id(&records[25].id).await.unwrap().unwrap();
    assert!(same(&r, &records[25]));
    assert_eq!(nginx.wait_for_requests(3), 3);
    let log = nginx.access_log();
    assert_eq!(log[0].path, "/ds/manifest.json", "{log:#?}");
    assert!(log[0].range.is_none(), "{log:#?}");
    for (k, r) in records.iter().enumerate().step_by(7) {
        let got = ds.get_by_id(&r.id).await.unwrap().unwrap();
        assert!(same(&got, r), "record {k}");
    }
    let log = nginx.access_log();
    assert_eq!(
        log.iter()
            .filter(|l| l.path.ends_with("manifest.json"))
            .count(),
        1,
        "{log:#?}"
    );

    // Replaced over HTTP before a new handle's first lookup: refused, naming the URL.
    let ds = Dataset::open(Location::parse(&url, &StorageOptions::default()).unwrap())
        .await
        .unwrap();
    let path = root.path().join("ds/manifest.json");
    let mut m = editshard::manifest::Manifest::parse(&std::fs::read(&path).unwrap()).unwrap();
    m.extra
        .insert("note".into(), serde_json::json!("rewritten"));
    std::fs::write(&path, m.to_json().unwrap()).unwrap();
    let err = ds.get_by_id(&records[1].id).await.unwrap_err();
    assert!(err.to_string().contains("changed since"), "{err}");
    assert_eq!(
        err.shard(),
        Some(format!("{url}/manifest.json").as_str()),
        "{err}"
    );
}
