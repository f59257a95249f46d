//! `spec/walk_shard.py`, a reader written from spec/FORMAT.md alone, accepts every golden
//! vector and what the writer produces, and rejects a damaged shard: the spec describes the
//! bytes the code writes.

use editshard_tools::records;

use std::path::Path;
use std::process::Command;

/// The test venv's Python when there (it has `zstandard`, so the walker decompresses metadata
/// and checks image counts), else the machine's `python3` (CRCs, lengths and headers only).
fn python() -> std::path::PathBuf {
    let tools = std::env::var_os("EDITSHARD_TOOLS").map_or_else(
        || Path::new(&std::env::var_os("HOME").unwrap_or_default()).join(".cache/editshard-tools"),
        std::path::PathBuf::from,
    );
    let venv = tools.join("pyenv/bin/python");
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}

fn walk(files: &[&Path]) -> (bool, String) {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(python())
        .arg(workspace.join("spec/walk_shard.py"))
        .arg("--quiet")
        .args(files)
        .output()
        .expect("python3 runs (it is on every machine of this kind)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_independent_walker_accepts_the_vectors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let files: Vec<_> = ["empty", "sft-one", "mixed", "editing-1.1"]
        .iter()
        .map(|n| dir.join(format!("{n}.esd")))
        .collect();
    let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let (ok, out) = walk(&refs);
    assert!(ok, "{out}");
    assert!(out.contains("mixed.esd: ok, 6 records"), "{out}");
    assert!(out.contains("editing-1.1.esd: ok, 80 records"), "{out}");
}

#[test]
fn the_independent_walker_agrees_on_stored_metadata_and_rejects_damage() {
    let dir = tempfile::tempdir().unwrap();
    let options = editshard_format::shard::WriterOptions {
        compression_level: 0,
        max_group_records: 2,
        ..Default::default()
    };
    let mut w = editshard_format::shard::ShardWriter::with_options(Vec::new(), options).unwrap();
    for r in records::mixed() {
        w.append(&r).unwrap();
    }
    let bytes = w.finish().unwrap().0;
    let good = dir.path().join("good.esd");
    std::fs::write(&good, &bytes).unwrap();
    let (ok, out) = walk(&[&good]);
    assert!(ok, "{out}");

    let mut bad = bytes.clone();
    let at = bytes.len() - 40; // inside the index frame
    bad[at] ^= 0x10;
    let bad_path = dir.path().join("bad.esd");
    std::fs::write(&bad_path, &bad).unwrap();
    let (ok, out) = walk(&[&bad_path]);
    assert!(!ok && out.contains("DAMAGED"), "{out}");
}
