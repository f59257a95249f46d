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
