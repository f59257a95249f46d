//! `editshard mirror` against real servers on 127.0.0.1: local -> S3 (s3s-fs, multipart) ->
//! local, HTTP (nginx) -> local with request counts, and a mirror killed with SIGKILL part
//! way through a shard, then resumed without fetching the finished shards again.

use editshard_tools::records;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use editshard::manifest::Manifest;
use editshard::write::DatasetWriter;
use editshard_tools::cli::{s, text, tree};
use editshard_tools::fault_server::{Behavior, fault_server};
use editshard_tools::servers::{Nginx, S3Server};

fn cmd(args: &[&str]) -> Command {
    let mut c = editshard_tools::cli::editshard_cmd(crate::BIN);
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

fn run(args: &[&str]) -> Output {
    cmd(args).output().expect("run editshard")
}

fn run_s3(server: &S3Server, args: &[&str]) -> Output {
    cmd(args)
        .args(["--s3-endpoint", &server.endpoint])
        .env("AWS_ACCESS_KEY_ID", server.access_key)
        .env("AWS_SECRET_ACCESS_KEY", server.secret_key)
        .output()
        .expect("run editshard")
}

/// A dataset of several small shards; with `big`, one more shard over 5 MiB (two 3 MiB
/// images) so that an upload with 5 MiB parts is a multipart upload.
fn build(dir: &Path, big: bool) -> Manifest {
    let mut w = DatasetWriter::create(dir).unwrap().target_shard_bytes(1500);
    let mut all = records::mixed();
    for n in 20..36 {
        all.push(records::sft(n, n));
    }
    if big {
        let mut r = records::sft(99, 99);
        r.source = records::image(7, "image/jpeg", 2000, 1500, 3 << 20);
        r.turns[0].output = records::image(8, "image/png", 2000, 1500, 3 << 20);
        all.push(r);
        all.push(records::sft(100, 100));
    }
    for r in &all {
        w.append(r).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn local_to_s3_to_local() {
    let server = S3Server::start();
    server.create_bucket("mirror");
    let tmp = tempfile::tempdir().unwrap();
    let (src, back) = (tmp.path().join("src"), tmp.path().join("back"));
    let m = build(&src, true);
    assert!(
        m.shards.iter().any(|sh| sh.bytes > 5 << 20),
        "no multipart-sized shard"
    );
    let url = "s3://mirror/pico/v1";

    let o = run_s3(
        &server,
        &["mirror", s(&src), url, "--part-size", "5", "--jobs", "3"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("{} copied", m.shards.len())),
        "{}",
        text(&o)
    );
    // What s3s-fs stored is exactly the source, and nothing else is under the prefix.
    let stored = tree(&server.object_path("mirror", "pico/v1"));
    let stored: BTreeMap<_, _> = stored
        .into_iter()
        .filter(|(k, _)| !k.starts_with('.'))
        .collect();
    assert_eq!(stored, tree(&src));

    // Incremental: a second mirror copies nothing.
    let o = run_s3(&server, &["mirror", s(&src), url]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains(" 0 copied") && out.contains(&format!("{} skipped", m.shards.len())),
        "{out}"
    );

    // And back: byte-identical to the original, and --verify-only agrees.
    let o = run_s3(&server, &["mirror", url, s(&back), "--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(tree(&back), tree(&src));
    let o = run_s3(&server, &["mirror", url, s(&back), "--verify-only"]);
    assert!(o.status.success(), "{}", text(&o));

    // A damaged object at DST (S3) is reported by name and kept.
    let victim = &m.shards[1].path;
    let obj = server.object_path("mirror", &format!("pico/v1/{victim}"));
    let mut bytes = fs::read(&obj).unwrap();
    bytes[20] ^= 1;
    fs::write(&obj, &bytes).unwrap();
    let o = run_s3(&server, &["mirror", s(&src), url]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("differs at DST: {victim}")),
        "{}",
        text(&o)
    );
    assert_eq!(fs::read(&obj).unwrap(), bytes);
}

#[test]
fn http_to_local_fetches_each_shard_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    let m = build(&src, false);
    let nginx = Nginx::start(&src);
    let o = run(&[
        "mirror",
        &format!("{}/", nginx.url()),
        s(&dst),
        "--jobs",
        "3",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(tree(&dst), tree(&src));
    let n = nginx.wait_for_requests(m.shards.len() + 1);
    let log = nginx.access_log();
    assert_eq!(n, m.shards.len() + 1, "{log:?}");
    for sh in &m.shards {
        let gets = log
            .iter()
            .filter(|l| l.method == "GET" && l.path == format!("/{}", sh.path) && l.status == 200)
            .count();
        assert_eq!(gets, 1, "{}: {log:?}", sh.path);
    }
    // HTTP is a source only.
    let o = run(&["mirror", s(&src), &nginx.url()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("read-only"), "{}", text(&o));
}

#[test]
fn killed_mirror_resumes_without_refetching() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    let m = build(&src, false);
    assert!(m.shards.len() >= 5);
    let stalled = format!("/{}", m.shards[3].path);
    let srv = fault_server(&src);
    // Headers, then silence: the mirror is inside shard 3's copy when it is killed.
    srv.on(&stalled, [Behavior::Stall(Duration::from_secs(60))]);
    let mut child = cmd(&[
        "mirror",
        &srv.url(),
        s(&dst),
        "--jobs",
        "1",
        "--timeout",
        "120",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !srv.requests().iter().any(|r| r.path == stalled) {
        assert!(
            Instant::now() < deadline,
            "the mirror never reached shard 3"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the mirror ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // Finished shards are complete; the interrupted one and the manifest are not visible.
    for sh in &m.shards[..3] {
        assert_eq!(
            fs::read(dst.join(&sh.path)).unwrap(),
            fs::read(src.join(&sh.path)).unwrap()
        );
    }
    for sh in &m.shards[3..] {
        assert!(!dst.join(&sh.path).exists(), "{} visible", sh.path);
    }
    assert!(!dst.join("manifest.json").exists());

    srv.clear_rules();
    srv.clear_requests();
    let o = run(&["mirror", &srv.url(), s(&dst), "--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let gets: Vec<String> = srv
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path)
        .collect();
    for (i, sh) in m.shards.iter().enumerate() {
        let n = gets
            .iter()
            .filter(|p| **p == format!("/{}", sh.path))
            .count();
        assert_eq!(n, usize::from(i >= 3), "{}: {gets:?}", sh.path);
    }
    let out = text(&o);
    for sh in &m.shards[..3] {
        assert!(out.contains(&format!("skipped {}", sh.path)), "{out}");
    }
    // The result is the source exactly, the killed run's temporary file included: gone.
    assert_eq!(tree(&dst), tree(&src));
    let o = run(&["mirror", &srv.url(), s(&dst), "--verify-only"]);
    assert!(o.status.success(), "{}", text(&o));
}
