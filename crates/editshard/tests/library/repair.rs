//! `repair` (the library's): a cut-short shard holding, inside an image, the bytes of a valid
//! frame of another record comes out without that record; what was lost is reported. The
//! destination is locked for the run.

use std::fs;
use std::path::Path;

use editshard::lock::{DestLock, LOCK_NAME};
use editshard::read::Dataset;
use editshard::read::verify::{VerifyOptions, verify};
use editshard::repair::repair;
use editshard::shard::RandomAccessShard;
use editshard::storage::Location;
use editshard::write::DatasetWriter;
use editshard_tools::smuggle;

/// A dataset of one shard holding [`smuggle::records_with_carrier`].
fn smuggling_dataset(dir: &Path) -> String {
    let mut w = DatasetWriter::create(dir).unwrap();
    for r in smuggle::records_with_carrier() {
        w.append(&r).unwrap();
    }
    let m = w.finish().unwrap();
    assert_eq!(m.shards.len(), 1);
    m.shards[0].path.clone()
}

async fn ids(dir: &Path) -> Vec<String> {
    let ds = Dataset::open(Location::local(dir)).await.unwrap();
    let mut out = Vec::new();
    for i in 0..ds.len() {
        out.push(ds.get(i).await.unwrap().id);
    }
    out
}

#[tokio::test]
async fn a_frame_inside_an_image_of_a_cut_short_shard_is_not_repaired_into_a_record() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    let shard = src.join(smuggling_dataset(&src));
    let bytes = fs::read(&shard).unwrap();
    let opened = RandomAccessShard::open(fs::File::open(&shard).unwrap(), "s").unwrap();
    let (image, frame) = smuggle::carrier_image_and_frame(&opened);
    // Cut just after the carrier's image: the smuggled frame is whole, its frame is not.
    fs::write(&shard, &bytes[..image.end as usize]).unwrap();

    let mut lost = Vec::new();
    let report = repair(&src, &dst, |l| lost.push(l.to_string())).unwrap();
    let got = ids(&dst).await;
    assert!(
        !got.iter().any(|id| id == smuggle::SMUGGLED_ID),
        "repair invented a record: {got:?}"
    );
    // The carrier's frame is the first: nothing before it, everything from it lost.
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(report.recovered, 0);
    assert!(
        lost.iter()
            .any(|l| l.contains(&format!("bytes {}..{}", frame.start, image.end))),
        "{lost:?}"
    );
    let listed = smuggle::records_with_carrier().len() as u64;
    assert_eq!(report.listed, Some(listed));
    // The repaired dataset is valid.
    let ds = Dataset::open(Location::local(&dst)).await.unwrap();
    let v = verify(&ds, VerifyOptions::default(), |_| {}).await.unwrap();
    assert!(v.is_ok(), "{:?}", v.problems);
}

/// A small dataset of three shards, intact.
fn three_shards(dir: &Path) {
    let mut w = DatasetWriter::create(dir).unwrap().target_shard_bytes(1);
    for r in editshard_tools::records::mixed() {
        w.append(&r).unwrap();
    }
    let m = w.finish().unwrap();
    assert!(m.shards.len() >= 3, "{} shards", m.shards.len());
}

/// A destination another run holds is refused, naming that run, and left as it was; once
/// released, the same repair runs.
#[tokio::test]
async fn a_destination_another_run_is_writing_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    three_shards(&src);
    let other = DestLock::acquire(&Location::local(&dst), "repair other --out dst", false)
        .await
        .unwrap();
    let e = repair(&src, &dst, |_| {}).unwrap_err().to_string();
    assert!(
        e.contains("locked") && e.contains("repair other --out dst"),
        "{e}"
    );
    let left: Vec<_> = fs::read_dir(&dst)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        left,
        [LOCK_NAME],
        "nothing written beside the other run's lock"
    );
    other.release_after(Ok(())).await.unwrap();

    let report = repair(&src, &dst, |_| {}).unwrap();
    assert!(report.is_clean());
    assert_eq!(
        ids(&dst).await.len(),
        editshard_tools::records::mixed().len()
    );
    assert!(!dst.join(LOCK_NAME).exists(), "the lock is released");
}
