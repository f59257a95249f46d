//! `repair` (the library's): a cut-short shard holding, inside an image, the bytes of a valid
//! frame of another record comes out without that record; what was lost is reported.

use std::fs;
use std::path::Path;

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
