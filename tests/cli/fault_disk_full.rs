//! Disk full while writing: `convert` and `mirror` into a tiny tmpfs fail with a clear error,
//! leave nothing corrupt under a final name, and, re-run once space is back, finish with
//! exactly the dataset an uninterrupted run gives.
//!
//! The tmpfs is mounted in a private user and mount namespace (`unshare -rm`), so the test needs
//! no privileges and leaves no mount behind; what the runs left is copied out for checking.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> &'static str {
    crate::BIN
}

fn sample() -> PathBuf {
    crate::workspace().join("examples/sample-release")
}

fn convert_args(out: &Path) -> Vec<String> {
    let s = sample();
    vec![
        "convert".into(),
        s.display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--openimages-csv".into(),
        s.join("openimages/train-images-boxable-with-rotation.csv")
            .display()
            .to_string(),
        "--openimages-dir".into(),
        s.join("openimages").display().to_string(),
        "--shard-size".into(),
        "16KiB".into(),
    ]
}

fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `script` in a private namespace with a `size`-byte tmpfs mounted at `mnt`.
fn in_small_fs(mnt: &Path, size: &str, script: &str) -> String {
    std::fs::create_dir_all(mnt).unwrap();
    let full = format!(
        "set -u\nmount -t tmpfs -o size={size} tmpfs '{}' || exit 99\n{script}",
        mnt.display()
    );
    let out = Command::new("unshare")
        .args(["-rm", "sh", "-c", &full])
        .output()
        .expect("unshare (util-linux) runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        out.status.code(),
        Some(99),
        "could not mount a tmpfs in a user namespace: {log}"
    );
    log
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// What a failed run may leave under final names: no manifest, and only complete shards.
fn assert_nothing_corrupt(dir: &Path, log: &str) {
    assert!(
        !dir.join("manifest.json").exists(),
        "a manifest after a failed run\n{log}"
    );
    for (name, bytes) in files(dir) {
        if name.ends_with(".esd") {
            let read: Result<Vec<_>, _> = editshard::shard::ShardReader::new(&bytes[..]).collect();
            assert!(
                read.is_ok(),
                "{name} is visible but damaged: {:?}\n{log}",
                read.err()
            );
        }
    }
}

#[test]
fn convert_and_mirror_survive_a_full_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    let status = Command::new(bin())
        .args(convert_args(&reference))
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let want = files(&reference);
    assert!(
        want.iter().filter(|(n, _)| n.ends_with(".esd")).count() >= 2,
        "several shards expected"
    );

    let mnt = tmp.path().join("mnt");
    let keep = tmp.path().join("keep");
    let out = mnt.join("out");
    let mirror_dst = mnt.join("mirror");
    let script = format!(
        "{bin} {convert} > '{keep}/convert1.log' 2>&1; echo \"convert1=$?\"
         mkdir -p '{keep}/after-convert'; cp -r '{out}/.' '{keep}/after-convert/' 2>/dev/null
         {bin} mirror '{reference}' '{mirror}' > '{keep}/mirror1.log' 2>&1; echo \"mirror1=$?\"
         mkdir -p '{keep}/after-mirror'; cp -r '{mirror}/.' '{keep}/after-mirror/' 2>/dev/null
         mount -o remount,size=64m '{mnt}'
         {bin} {convert} > '{keep}/convert2.log' 2>&1; echo \"convert2=$?\"
         {bin} mirror '{reference}' '{mirror}' > '{keep}/mirror2.log' 2>&1; echo \"mirror2=$?\"
         cp -r '{out}' '{keep}/final-convert'; cp -r '{mirror}' '{keep}/final-mirror'",
        bin = bin(),
        convert = shell_words(&convert_args(&out)),
        keep = keep.display(),
        out = out.display(),
        mirror = mirror_dst.display(),
        reference = reference.display(),
        mnt = mnt.display(),
    );
    std::fs::create_dir_all(&keep).unwrap();
    let log = in_small_fs(&mnt, "40k", &script);
    let read = |name: &str| std::fs::read_to_string(keep.join(name)).unwrap_or_default();
    let all = format!(
        "{log}\n--- convert1\n{}\n--- mirror1\n{}\n--- convert2\n{}\n--- mirror2\n{}",
        read("convert1.log"),
        read("mirror1.log"),
        read("convert2.log"),
        read("mirror2.log")
    );

    // Out of space: a non-zero exit and an error that says so.
    assert!(!log.contains("convert1=0"), "{all}");
    assert!(!log.contains("mirror1=0"), "{all}");
    for name in ["convert1.log", "mirror1.log"] {
        assert!(
            read(name).contains("No space left on device"),
            "{name} does not say the disk is full\n{all}"
        );
    }
    assert_nothing_corrupt(&keep.join("after-convert"), &all);
    assert_nothing_corrupt(&keep.join("after-mirror"), &all);

    // Space is back: the same commands finish, with exactly the uninterrupted result.
    assert!(
        log.contains("convert2=0") && log.contains("mirror2=0"),
        "{all}"
    );
    assert_eq!(
        files(&keep.join("final-convert")),
        want,
        "convert after a full disk differs\n{all}"
    );
    // A mirror copies the dataset (shards and manifest), not convert's failures.jsonl.
    let dataset: Vec<_> = want
        .iter()
        .filter(|(n, _)| n != "failures.jsonl")
        .cloned()
        .collect();
    assert_eq!(
        files(&keep.join("final-mirror")),
        dataset,
        "mirror after a full disk differs\n{all}"
    );
}
