//! `verify` holds a manifest to its shards: summaries that add up but lie (what `ls` and
//! `stats` print without reading a shard) are reported, naming the manifest.

use editshard::manifest::Manifest;
use editshard::read::Dataset;
use editshard::read::verify::{VerifyOptions, verify};
use editshard::storage::Location;

/// A named way to make a manifest lie.
type Lie = (&'static str, fn(&mut Manifest));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn believable_but_false_summaries_do_not_pass_verify() {
    let lies: [Lie; 4] = [
        ("kinds moved", |m| {
            let total = m.records;
            m.kinds.clear();
            m.kinds.insert("sft".into(), total);
        }),
        ("a category inflated", |m| {
            *m.categories.values_mut().next().unwrap() += 1000;
        }),
        ("an edit type renamed", |m| {
            let (k, n) = m.edit_types.pop_first().unwrap();
            m.edit_types.insert(format!("{k}!"), n);
        }),
        ("references inflated", |m| m.images.referenced = u64::MAX),
    ];
    for (what, lie) in lies {
        let dir = tempfile::tempdir().unwrap();
        let mut m = editshard_tools::view_fixture::write(dir.path(), 12);
        assert!(!m.categories.is_empty() && !m.edit_types.is_empty());
        let ds = Dataset::open(Location::local(dir.path())).await.unwrap();
        let clean = verify(&ds, VerifyOptions::default(), |_| {}).await.unwrap();
        assert!(clean.is_ok(), "{:?}", clean.problems);
        lie(&mut m);
        std::fs::write(dir.path().join("manifest.json"), m.to_json().unwrap()).unwrap();
        let ds = Dataset::open(Location::local(dir.path())).await.unwrap();
        let report = verify(&ds, VerifyOptions::default(), |_| {}).await.unwrap();
        assert_eq!(report.problems.len(), 1, "{what}: {:?}", report.problems);
        let p = &report.problems[0];
        assert!(p.to_string().contains("manifest.json"), "{what}: {p}");
        assert!(
            p.to_string().contains("does not match its shards"),
            "{what}: {p}"
        );
    }
}

/// The manifest's CRC-64/NVME of a shard is checked where its SHA-256 is: a manifest whose
/// CRC alone is wrong is reported at that shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_crc64nvme_that_does_not_match_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = editshard_tools::view_fixture::write(dir.path(), 12);
    let crc = m.shards[0].crc64nvme_value().expect("writers record it");
    m.shards[0].crc64nvme = Some(editshard::crc64::encode(crc ^ 1));
    std::fs::write(dir.path().join("manifest.json"), m.to_json().unwrap()).unwrap();
    let ds = Dataset::open(Location::local(dir.path())).await.unwrap();
    let report = verify(&ds, VerifyOptions::default(), |_| {}).await.unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let p = report.problems[0].to_string();
    assert!(
        p.contains("CRC-64/NVME") && p.contains(&m.shards[0].path),
        "{p}"
    );
}
