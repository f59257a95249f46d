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

/// `bin ARGS` without the caller's S3 endpoint and session settings: tests name their own
/// endpoint and keys.
pub fn editshard_cmd_clean(bin: &str, args: &[&str]) -> Command {
    let mut c = editshard_cmd(bin);
    c.args(args);
    for v in [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_SESSION_TOKEN",
    ] {
        c.env_remove(v);
    }
    c
}

/// `bin ARGS` against the S3 `server` through `endpoint`: the server's own, or a proxy's in
/// front of it.
pub fn editshard_s3_cmd(
    bin: &str,
    endpoint: &str,
    server: &crate::servers::S3Server,
    args: &[&str],
) -> Command {
    let mut c = editshard_cmd_clean(bin, args);
    c.args(["--s3-endpoint", endpoint])
        .env("AWS_ACCESS_KEY_ID", server.access_key)
        .env("AWS_SECRET_ACCESS_KEY", server.secret_key);
    c
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
/// The command refused a symbolic link planted in its destination (exit 2, naming it) and
/// wrote nothing into `outside`, where the link points.
pub fn assert_refused_link(o: &Output, outside: &Path) {
    assert_eq!(o.status.code(), Some(2), "{}", text(o));
    assert!(text(o).contains("symbolic link"), "{}", text(o));
    let written = fs::read_dir(outside).unwrap().count();
    assert_eq!(written, 0, "written through the link: {}", text(o));
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// Runs `cmd` to completion and returns its output with its peak resident *anonymous* memory
/// in bytes (`RssAnon` of `/proc/PID/status`, polled every 5 ms until it exits): what the
/// process allocated. Not `VmHWM`, which also counts file pages mapped into it: local shards
/// are memory-mapped for reading, and their pages are the page cache (shared, reclaimable,
/// charged to a cgroup whether mapped or read), not memory the process holds. Standard output
/// goes to `stdout_file` (it may be large: base64 images) and is not returned.
pub fn run_with_peak_rss(mut cmd: Command, stdout_file: &Path) -> (Output, u64) {
    use std::io::Read;
    let mut child = cmd
        .stdout(fs::File::create(stdout_file).expect("stdout file"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run editshard");
    let status_path = format!("/proc/{}/status", child.id());
    let mut err = child.stderr.take().expect("piped");
    // Drained on a thread so the child never blocks on a full pipe.
    let err_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(s) = fs::read_to_string(&status_path) {
            let hwm = s
                .lines()
                .find_map(|l| l.strip_prefix("RssAnon:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            peak_kib = peak_kib.max(hwm.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let output = Output {
        status,
        stdout: Vec::new(),
        stderr: err_thread.join().unwrap_or_default(),
    };
    (output, peak_kib << 10)
}
