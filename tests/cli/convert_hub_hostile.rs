//! `convert --mapping` on hostile Parquet (tools' `parquet_bytes`): footers that claim more
//! than their bytes hold, schemas nested past any real dataset. Each is refused with an error
//! naming the file, in a few MiB of memory, and leaves no lock behind in DEST.

use std::path::{Path, PathBuf};
use std::process::Output;

use editshard_tools::cli::{editshard_cmd, run_with_peak_rss, s, text};
use editshard_tools::parquet_bytes as pq;

use crate::BIN;

/// A mapping for files of `id` (string), `before` and `after` (binary images).
pub fn mapping(dir: &Path) -> PathBuf {
    let path = dir.join("hostile.toml");
    std::fs::write(
        &path,
        "name = \"hostile\"\nfiles = [\"*.parquet\"]\nid = \"id\"\nsource = \"before\"\n\
         output = \"after\"\n",
    )
    .unwrap();
    path
}

/// `convert --mapping MAPPING SRC --out OUT EXTRA`, with its peak resident memory.
pub fn convert_measured(mapping: &Path, src: &Path, out: &Path, extra: &[&str]) -> (Output, u64) {
    let mut cmd = editshard_cmd(BIN);
    cmd.args(["convert", "--mapping", s(mapping), s(src), "--out", s(out)])
        .args(extra)
        .args(["--log-interval", "0"]);
    let stdout = out.with_extension("stdout");
    let (mut o, peak) = run_with_peak_rss(cmd, &stdout);
    o.stdout = std::fs::read(&stdout).unwrap_or_default();
    (o, peak)
}

fn assert_refused(o: &Output, peak: u64, file: &str, words: &[&str], out: &Path) {
    let e = text(o);
    assert_eq!(o.status.code(), Some(2), "{file}: {:?}\n{e}", o.status);
    assert!(e.contains(file), "{file}: the error names the file\n{e}");
    for w in words {
        assert!(e.contains(w), "{file}: the error says {w:?}\n{e}");
    }
    assert!(
        !out.join(".editshard-lock").exists(),
        "{file}: a lock file is left in DEST"
    );
    assert!(
        peak < 64 << 20,
        "{file}: peak RSS {} MiB reading a footer of a few bytes",
        peak >> 20
    );
}

#[test]
fn a_footer_claiming_more_than_its_bytes_hold_is_refused_before_allocating() {
    let t = tempfile::tempdir().unwrap();
    let map = mapping(t.path());
    let cases: Vec<(&str, Box<dyn Fn(&Path)>, &[&str])> = vec![
        (
            "row-groups.parquet",
            Box::new(|p| pq::footer_claiming_row_groups(p, (1 << 31) - 1)),
            &["2147483647", "row group"],
        ),
        (
            "schema.parquet",
            Box::new(|p| pq::footer_claiming_schema_elements(p, 1 << 40)),
            &["1099511627776"],
        ),
        (
            "string.parquet",
            Box::new(|p| pq::footer_claiming_a_long_string(p, 1 << 40)),
            &["1099511627776"],
        ),
        (
            "length.parquet",
            Box::new(|p| pq::footer_length_claiming(p, u32::MAX)),
            &["4294967295"],
        ),
    ];
    for (name, make, words) in cases {
        let src = t.path().join(name.replace('.', "-"));
        make(&src.join(name));
        let out = t.path().join(format!("out-{name}"));
        let (o, peak) = convert_measured(&map, &src, &out, &[]);
        assert_refused(&o, peak, name, words, &out);
    }
}

#[test]
fn a_schema_nested_past_the_depth_limit_is_refused_without_recursing() {
    let t = tempfile::tempdir().unwrap();
    let map = mapping(t.path());
    let src = t.path().join("deep");
    pq::deeply_nested_schema(&src.join("deep.parquet"), 100_000);
    let out = t.path().join("out");
    let (o, peak) = convert_measured(&map, &src, &out, &[]);
    assert_refused(&o, peak, "deep.parquet", &["nested", "deep"], &out);
}
