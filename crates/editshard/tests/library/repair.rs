//! `repair` (the library's): a cut-short shard holding, inside an image, the bytes of a valid
//! frame of another record comes out without that record; what was lost is reported. The
//! destination is locked for the run, and a run killed with SIGKILL completes when run again.

use std::fs;
use std::path::Path;

use editshard::lock::{DestLock, LOCK_NAME};
use editshard::read::Dataset;
use editshard::read::verify::{VerifyOptions, verify};
use editshard::repair::{MARKER_NAME, repair};
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

/// The kill test's repair runs in a process of its own (this test binary, running
/// [`child_repair`]), killed with SIGKILL mid-run.
const CHILD_SRC: &str = "EDITSHARD_REPAIR_TEST_CHILD_SRC";
const CHILD_DST: &str = "EDITSHARD_REPAIR_TEST_CHILD_DST";

/// Repairs `$EDITSHARD_REPAIR_TEST_CHILD_SRC` into `$EDITSHARD_REPAIR_TEST_CHILD_DST`,
/// stopping (`PAUSED` on stdout, then asleep until killed) at the first loss; does nothing in
/// an ordinary test run.
#[test]
fn child_repair() {
    let (Ok(src), Ok(dst)) = (std::env::var(CHILD_SRC), std::env::var(CHILD_DST)) else {
        return;
    };
    let _ = repair(Path::new(&src), Path::new(&dst), |_| {
        use std::io::Write;
        println!("PAUSED");
        std::io::stdout().flush().unwrap();
        std::thread::sleep(std::time::Duration::from_secs(600));
    });
}

/// Three shards, the last with one image byte flipped (a loss once the records of the first
/// two are written).
fn damaged_three_shards(dir: &Path) {
    three_shards(dir);
    let m = editshard::manifest::Manifest::parse(&fs::read(dir.join("manifest.json")).unwrap())
        .unwrap();
    let last = dir.join(&m.shards.last().unwrap().path);
    let index = RandomAccessShard::open(fs::File::open(&last).unwrap(), "s")
        .unwrap()
        .index()
        .clone();
    let blob = index.blob(index.record_blobs(0)[0]);
    let mut bytes = fs::read(&last).unwrap();
    bytes[blob.offset as usize] ^= 0xff;
    fs::write(&last, bytes).unwrap();
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// A repair killed with SIGKILL mid-run is run again with the same command: it removes what
/// the killed run wrote (a shard being written, the marker) and completes, with the same
/// result as an uninterrupted run.
#[tokio::test]
async fn a_repair_killed_mid_run_completes_when_run_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst, fresh) = (
        tmp.path().join("src"),
        tmp.path().join("dst"),
        tmp.path().join("fresh"),
    );
    damaged_three_shards(&src);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["repair::child_repair", "--exact", "--nocapture"])
        .env(CHILD_SRC, &src)
        .env(CHILD_DST, &dst)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("PAUSED") {
        line.clear();
        let n = std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert!(n > 0, "the child repair ended before its first loss");
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let left = names(&dst);
    assert!(
        left.iter().any(|n| n.ends_with(".partial")) && left.contains(&MARKER_NAME.to_string()),
        "the killed run left its work: {left:?}"
    );

    let again = repair(&src, &dst, |_| {}).unwrap();
    let uninterrupted = repair(&src, &fresh, |_| {}).unwrap();
    assert_eq!(ids(&dst).await, ids(&fresh).await);
    assert_eq!(again.recovered, uninterrupted.recovered);
    assert_eq!(again.losses.len(), uninterrupted.losses.len());
    assert_eq!(names(&dst), names(&fresh));
    assert_eq!(
        names(&dst),
        ["manifest.json", "repair-report.json", "shard-00000.esd"]
    );
    // A finished repair's directory is a dataset: repairing into it again is refused.
    let e = repair(&src, &dst, |_| {}).unwrap_err().to_string();
    assert!(e.contains("not empty"), "{e}");
}
