//! `convert --mapping` on hostile Parquet (tools' `parquet_bytes`): footers that claim more
//! than their bytes hold, schemas nested past any real dataset, row groups listing rows their
//! pages do not hold. Each is refused with an error naming the file, in a few MiB of memory,
//! leaving no lock behind in DEST, or its missing rows are reported.

use std::path::{Path, PathBuf};
use std::process::Output;

use editshard_tools::cli::{editshard_cmd, run_with_peak_rss, s, text};
use editshard_tools::convert_support::{failures, records};
use editshard_tools::hub_parquet::png;
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
    type Make = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Make, &[&str])> = vec![
        (
            "row-groups.parquet",
            Box::new(|p| pq::footer_claiming_row_groups(p, (1 << 31) - 1)),
            &["2147483647", "row_groups"],
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

/// One row group listing `listed` rows, whose chunks hold `held` (their metadata claiming
/// `chunk_values` values each).
fn lying_row_count(path: &Path, listed: i64, held: usize, chunk_values: Option<i64>) {
    let ids: Vec<String> = (0..held).map(|k| format!("r{k}")).collect();
    let ids: Vec<&[u8]> = ids.iter().map(|s| s.as_bytes()).collect();
    let imgs: Vec<Vec<u8>> = (0..held as u32).map(|k| png(k, 3, 3)).collect();
    let imgs: Vec<&[u8]> = imgs.iter().map(|v| &v[..]).collect();
    let chunk = |name: &str, values: &[&[u8]]| {
        let mut c = pq::Chunk::new(
            &[name],
            pq::BYTE_ARRAY,
            pq::UNCOMPRESSED,
            vec![pq::Page::data(held as i32, pq::PLAIN, pq::plain(values))],
        );
        c.num_values = chunk_values;
        c
    };
    pq::write(
        path,
        &[pq::text("id"), pq::binary("before"), pq::binary("after")],
        &[pq::RowGroup {
            num_rows: listed,
            columns: vec![
                chunk("id", &ids),
                chunk("before", &imgs),
                chunk("after", &imgs),
            ],
        }],
    );
}

#[test]
fn every_row_a_footer_lists_is_converted_or_reported() {
    let t = tempfile::tempdir().unwrap();
    let map = mapping(t.path());
    // 1000 rows listed (and 1000 values claimed by each chunk), 500 held.
    let src = t.path().join("half");
    lying_row_count(&src.join("a.parquet"), 1000, 500, Some(1000));
    let out = t.path().join("out-half");
    let (o, _) = convert_measured(&map, &src, &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(records(&out).len(), 500);
    let f = failures(&out);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["reason"], "missing-rows");
    assert_eq!(
        (
            f[0]["line"].as_u64(),
            f[0]["row"].as_u64(),
            f[0]["rows"].as_u64()
        ),
        (Some(501), Some(500), Some(500))
    );
    assert!(
        f[0]["detail"].as_str().unwrap().contains("lists 1000 rows"),
        "{f:?}"
    );
    assert!(text(&o).contains("failed rows         500"), "{}", text(&o));
    // The same, with chunks honest about their 500 values: the footer contradicts itself.
    let src = t.path().join("honest-chunks");
    lying_row_count(&src.join("a.parquet"), 1000, 500, None);
    let out = t.path().join("out-honest-chunks");
    let (o, peak) = convert_measured(&map, &src, &out, &[]);
    assert_refused(
        &o,
        peak,
        "a.parquet",
        &["lists 1000 rows", "500 values"],
        &out,
    );
    // 2^62 rows listed, claimed by every chunk, one held: more than the chunks' bytes hold.
    let src = t.path().join("huge");
    lying_row_count(&src.join("a.parquet"), 1 << 62, 1, Some(1 << 62));
    let out = t.path().join("out-huge");
    let (o, peak) = convert_measured(&map, &src, &out, &[]);
    assert_refused(
        &o,
        peak,
        "a.parquet",
        &["4611686018427387904", "cannot hold"],
        &out,
    );
}
