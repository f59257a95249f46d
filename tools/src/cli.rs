//! Running the real `editshard` binary from integration tests, and reading what it left.
//!
//! The binary's path is a parameter: only the CLI's own test binary knows it
//! (`env!("CARGO_BIN_EXE_editshard")`).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

/// The binary under test (`bin`), with no arguments yet.
pub fn editshard_cmd(bin: &str) -> Command {
    Command::new(bin)
}

/// Runs the binary `bin` with `args` and waits for it.
pub fn editshard(bin: &str, args: &[&str]) -> Output {
    editshard_cmd(bin)
        .args(args)
        .output()
        .expect("run editshard")
}

/// Exit status and both output streams, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file under `dir` (relative path -> bytes), temporary files included.
pub fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// A path as the `&str` a command line wants.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}
