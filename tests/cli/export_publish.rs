//! What an export leaves in its directory: the files of a complete export or nothing new (a
//! failed export publishes no file under a final name, so a directory never holds a
//! complete-looking part of one), and after `--force` over an earlier export of the same
//! format none of that export's files that the new one did not write again (a loader would
//! read their stale records beside the new ones), and nothing else removed.

use std::collections::BTreeMap;
use std::path::Path;

use editshard::write::DatasetWriter;
use editshard_tools::cli::{editshard, s, text, tree};

use crate::export_roundtrip::{DAMAGES, FORMATS, damaged_dataset, sft_record};

fn export(ds: &Path, to: &Path, format: &str, force: bool) -> std::process::Output {
    let mut args = vec!["export", s(ds), "--to", s(to), "--format", format];
    if force {
        args.push("--force");
    }
    editshard(crate::BIN, &args)
}

/// The paths that differ between two trees: added, removed or changed.
fn changes(before: &BTreeMap<String, Vec<u8>>, after: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let mut out: Vec<String> = after
        .iter()
        .filter(|(p, b)| before.get(*p) != Some(b))
        .map(|(p, _)| format!("{p} (written)"))
        .collect();
    out.extend(
        before
            .keys()
            .filter(|p| !after.contains_key(*p))
            .map(|p| format!("{p} (removed)")),
    );
    out
}

/// Sft records `first..first + n` in shards of about 1500 bytes, exportable in every format.
fn sft_dataset(ds: &Path, first: u8, n: u8) {
    let mut w = DatasetWriter::create(ds).unwrap().target_shard_bytes(1500);
    for k in first..first + n {
        let path = format!("images/{k}.png");
        w.append(&sft_record(k, &path, &format!("https://h/{k}.jpg")))
            .unwrap();
    }
    w.finish().unwrap();
}

/// An export that fails, however late (the last shard cut short, or the first holding a
/// record more than its manifest lists: found only when every record of it was written),
/// publishes nothing: into a new directory it leaves no file at all, and with `--force` over
/// an earlier export it leaves that export byte for byte as it was.
#[test]
fn a_failed_export_publishes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let healthy = tmp.path().join("healthy");
    sft_dataset(&healthy, 20, 6);
    for (d, damage) in DAMAGES.iter().enumerate() {
        let ds = tmp.path().join(format!("damaged-{d}"));
        damaged_dataset(&ds, damage);
        for format in FORMATS {
            let fresh = tmp.path().join(format!("fresh-{format}-{d}"));
            let o = export(&ds, &fresh, format, false);
            assert!(!o.status.success(), "{format}, {damage}: {}", text(&o));
            let left: Vec<String> = tree(&fresh).into_keys().collect();
            assert!(
                left.is_empty(),
                "{format}, {damage}: the failed export published {left:?}"
            );

            let earlier = tmp.path().join(format!("earlier-{format}-{d}"));
            let o = export(&healthy, &earlier, format, false);
            assert!(o.status.success(), "{format}: {}", text(&o));
            let before = tree(&earlier);
            let o = export(&ds, &earlier, format, true);
            assert!(!o.status.success(), "{format}, {damage}: {}", text(&o));
            let changed = changes(&before, &tree(&earlier));
            assert!(
                changed.is_empty(),
                "{format}, {damage}: the failed export changed the earlier one: {changed:?}"
            );
        }
    }
}

/// Every file name under `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    tree(dir).into_keys().collect()
}

/// `--force` over an earlier, larger WebDataset export: the tars it wrote that the new export
/// does not write again are gone (a WebDataset reader globbing `shard-*.tar` would read their
/// stale samples), with its leftover temporary tars; files of other names stay, and a
/// directory of such a name is refused before anything is removed. A release export rewrites
/// its three JSONL files whole, so no earlier row survives in them.
#[test]
fn force_leaves_no_record_of_an_earlier_export() {
    let tmp = tempfile::tempdir().unwrap();
    let (large, small) = (tmp.path().join("large"), tmp.path().join("small"));
    sft_dataset(&large, 0, 8);
    sft_dataset(&small, 30, 1);

    let wds = tmp.path().join("wds");
    let o = export(&large, &wds, "webdataset", false);
    assert!(o.status.success(), "{}", text(&o));
    assert!(wds.join("shard-00001.tar").exists(), "{:?}", names(&wds));
    let others = [
        "notes.txt",
        "shard-x.tar",
        "shard-0001.tar",
        "shard-00001.tar.gz",
    ];
    for name in others {
        std::fs::write(wds.join(name), b"someone else's").unwrap();
    }
    std::fs::write(wds.join("shard-00007.tar.partial"), b"a killed run's").unwrap();
    let o = export(&small, &wds, "webdataset", true);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(
            "2 files of an earlier export removed (--force): shard-00001.tar, \
             shard-00007.tar.partial"
        ),
        "{}",
        text(&o)
    );
    let mut want: Vec<&str> = others.to_vec();
    want.push("shard-00000.tar");
    want.sort();
    assert_eq!(names(&wds), want);
    let mut tar = tar::Archive::new(std::fs::File::open(wds.join("shard-00000.tar")).unwrap());
    let members: Vec<String> = tar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        members,
        ["000000000.json", "000000000.src.png", "000000000.edit.png"]
    );

    // A directory of such a name is no export's file: refused before anything is removed.
    std::fs::create_dir(wds.join("shard-00009.tar")).unwrap();
    let before = tree(&wds);
    let o = export(&large, &wds, "webdataset", true);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("is a directory"), "{}", text(&o));
    assert_eq!(changes(&before, &tree(&wds)), Vec::<String>::new());

    let release = tmp.path().join("release");
    let o = export(&large, &release, "release", false);
    assert!(o.status.success(), "{}", text(&o));
    let o = export(&small, &release, "release", true);
    assert!(o.status.success(), "{}", text(&o));
    let sft = std::fs::read_to_string(release.join("jsonl/sft.jsonl")).unwrap();
    assert_eq!(sft.lines().count(), 1, "{sft}");
    assert!(sft.contains("images/30.png"), "{sft}");
}
