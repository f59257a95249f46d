//! Helpers shared by the `convert_*` integration tests: running the real binary and reading
//! what it wrote.

use std::fs;
use std::path::Path;
use std::process::Output;

pub use crate::cli::editshard_cmd as editshard;
pub use crate::cli::{text, tree};

use editshard::manifest::Manifest;
use editshard::record::Record;
use editshard::shard::ShardReader;

/// Runs `editshard convert ARGS` (the binary at `bin`) with short network timeouts suited to
/// loopback tests.
pub fn convert(bin: &str, args: &[String]) -> Output {
    let mut cmd = editshard(bin);
    cmd.arg("convert")
        .args(args)
        .args(["--connect-timeout", "2", "--idle-timeout", "2"])
        .args([
            "--backoff",
            "0.02",
            "--max-backoff",
            "0.2",
            "--retries",
            "3",
        ])
        .args(["--log-interval", "0"]);
    cmd.output().expect("run editshard")
}

pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

pub fn manifest(dir: &Path) -> Manifest {
    Manifest::parse(&fs::read(dir.join("manifest.json")).expect("manifest.json")).unwrap()
}

/// Every record of a dataset, in manifest order.
pub fn records(dir: &Path) -> Vec<Record> {
    let m = manifest(dir);
    let mut out = Vec::new();
    for s in &m.shards {
        let f = fs::File::open(dir.join(&s.path)).unwrap();
        for r in ShardReader::new(std::io::BufReader::new(f)) {
            out.push(r.unwrap());
        }
    }
    out
}

/// The failures file as JSON objects.
pub fn failures(dir: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(dir.join("failures.jsonl"))
        .expect("failures.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Asserts two trees are byte-identical, naming the first difference.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let (ta, tb) = (tree(a), tree(b));
    assert_eq!(
        ta.keys().collect::<Vec<_>>(),
        tb.keys().collect::<Vec<_>>(),
        "file lists differ"
    );
    for (k, v) in &ta {
        assert!(
            v == &tb[k],
            "{k} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}
