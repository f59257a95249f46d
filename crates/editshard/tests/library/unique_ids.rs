//! Ids are unique in a dataset (spec section 5.1): the writer refuses a repeated id in any
//! shard, a resumed writer included, and `verify` finds one written by another writer.

use editshard::ErrorKind;
use editshard::read::Dataset;
use editshard::read::verify::{VerifyOptions, verify};
use editshard::record::{Image, Kind, Record, Turn};
use editshard::storage::Location;
use editshard::write::DatasetWriter;

/// A real PNG `width` pixels wide (verify probes every image).
fn png(width: u32) -> Image {
    let mut v = Vec::new();
    image::RgbImage::new(width, 1)
        .write_to(&mut std::io::Cursor::new(&mut v), image::ImageFormat::Png)
        .unwrap();
    Image::from_bytes(v.into()).unwrap()
}

fn record(id: &str, seed: u32) -> Record {
    Record::new(id, Kind::Sft, png(seed), vec![Turn::new(png(seed + 1))])
}

#[test]
fn the_dataset_writer_refuses_an_id_an_earlier_shard_holds() {
    let dir = tempfile::tempdir().unwrap();
    // One record per shard.
    let mut w = DatasetWriter::create(dir.path())
        .unwrap()
        .target_shard_bytes(1);
    w.append(&record("a", 1)).unwrap();
    w.append(&record("b", 3)).unwrap();
    let err = w.append(&record("a", 5)).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Rejected(_)), "{err}");
    assert_eq!(err.id(), Some("a"), "{err}");
    assert!(err.to_string().contains("shard-00000.esd"), "{err}");
    // The writer goes on: the refused record left nothing behind.
    w.append(&record("c", 7)).unwrap();
    let m = w.finish().unwrap();
    assert_eq!(m.records, 3);
}

#[test]
fn a_resumed_dataset_writer_knows_the_ids_of_its_finished_shards() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = DatasetWriter::create(dir.path()).unwrap();
    w.append(&record("a", 1)).unwrap();
    w.finish_shard().unwrap();
    let manifest = w.manifest().clone();
    drop(w); // interrupted before the manifest was written
    let mut w = DatasetWriter::create(dir.path())
        .unwrap()
        .resume_after(manifest);
    let err = w.append(&record("a", 5)).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Rejected(_)), "{err}");
    w.append(&record("b", 3)).unwrap();
    assert_eq!(w.finish().unwrap().records, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_an_id_repeated_across_shards() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = DatasetWriter::create(dir.path())
        .unwrap()
        .target_shard_bytes(1);
    for (id, seed) in [("a", 1), ("b", 3), ("c", 5)] {
        w.append(&record(id, seed)).unwrap();
    }
    assert_eq!(w.finish().unwrap().shards.len(), 3);
    // Shard 2 now holds "a" too, every CRC and the manifest's hash valid.
    editshard_tools::tamper::replace_shard(dir.path(), 2, |bytes| {
        editshard_tools::tamper::rename_record(&bytes, "c", "a")
    });
    let ds = Dataset::open(Location::local(dir.path())).await.unwrap();
    let report = verify(&ds, VerifyOptions::default(), |_| {}).await.unwrap();
    assert!(!report.is_ok(), "a repeated id passed verify");
    let p = &report.problems[0];
    assert_eq!(p.id(), Some("a"), "{p}");
    assert_eq!(p.record(), Some(0), "{p}");
    assert!(p.shard().unwrap().ends_with("shard-00002.esd"), "{p}");
    assert!(p.to_string().contains("shard-00000.esd"), "{p}");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
}

/// A manifest whose id filter misses a shard's ids (a read by id would say "no such record")
/// does not pass `verify`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_an_id_filter_that_misses_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = DatasetWriter::create(dir.path()).unwrap();
    for (id, seed) in [("a", 1), ("b", 3)] {
        w.append(&record(id, seed)).unwrap();
    }
    w.finish().unwrap();
    let path = dir.path().join("manifest.json");
    let mut m = editshard::manifest::Manifest::parse(&std::fs::read(&path).unwrap()).unwrap();
    m.shards[0].id_filter = editshard::manifest::IdFilter::build(["z"].into_iter());
    std::fs::write(&path, m.to_json().unwrap()).unwrap();
    let ds = Dataset::open(Location::local(dir.path())).await.unwrap();
    assert_eq!(
        ds.find("a").await.unwrap(),
        None,
        "the lie is not exercised"
    );
    let report = verify(&ds, VerifyOptions::default(), |_| {}).await.unwrap();
    let ids: Vec<Option<&str>> = report.problems.iter().map(|p| p.id()).collect();
    assert_eq!(ids, [Some("a"), Some("b")], "{:?}", report.problems);
    assert!(report.problems[0].to_string().contains("id filter"));
}
