//! `editshard mirror` against real servers on 127.0.0.1: local -> S3 (s3s-fs, multipart) ->
//! local, HTTP (nginx) -> local with request counts, a mirror killed with SIGKILL part way
//! through a shard, then resumed without fetching the finished shards again, the lock on DST
//! (local and S3), and S3 faults from a proxy in front of s3s-fs.

use editshard_tools::records;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use editshard::manifest::{Manifest, ShardEntry};
use editshard::record::Record;
use editshard::write::DatasetWriter;
use editshard_tools::cli::{s, text, tree};
use editshard_tools::fault_server::{Behavior, fault_server};
use editshard_tools::servers::{Nginx, S3Server};

/// The objects s3s-fs holds under `bucket/prefix`, by key (without its own dot-files).
fn stored_objects(server: &S3Server, bucket: &str, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    tree(&server.object_path(bucket, prefix))
        .into_iter()
        .filter(|(k, _)| !k.starts_with('.'))
        .collect()
}

/// `editshard ARGS` without the caller's S3 endpoint settings (tests name their own).
pub(crate) fn cmd(args: &[&str]) -> Command {
    editshard_tools::cli::editshard_cmd_clean(crate::BIN, args)
}

pub(crate) fn run(args: &[&str]) -> Output {
    cmd(args).output().expect("run editshard")
}

fn run_s3(server: &S3Server, args: &[&str]) -> Output {
    editshard_tools::cli::editshard_s3_cmd(crate::BIN, &server.endpoint, server, args)
        .output()
        .expect("run editshard")
}

/// Whether `sh` is the test datasets' shard over 5 MiB (see [`big_records`]), which an
/// upload in 5 MiB parts sends as a multipart upload.
pub(crate) fn multipart(sh: &ShardEntry) -> bool {
    sh.bytes > 5 << 20
}

/// The bytes of the shards over 5 MiB.
pub(crate) fn multipart_bytes(m: &Manifest) -> u64 {
    m.shards
        .iter()
        .filter(|sh| multipart(sh))
        .map(|sh| sh.bytes)
        .sum()
}

/// A record of two 3 MiB images, and a small one after it: in datasets of 1500-byte target
/// shards, a shard of about 6 MiB of its own.
pub(crate) fn big_records() -> [Record; 2] {
    let mut r = records::sft(99, 99);
    r.source = records::image(7, "image/jpeg", 2000, 1500, 3 << 20);
    r.turns[0].output = records::image(8, "image/png", 2000, 1500, 3 << 20);
    [r, records::sft(100, 100)]
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
        all.extend(big_records());
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
    let stored = stored_objects(&server, "mirror", "pico/v1");
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

    // An object at DST replaced by other bytes of the same length (through the store, which
    // keeps their CRC) is reported by name, by the store's CRC, and kept.
    let victim = &m.shards[1].path;
    let obj = server.object_path("mirror", &format!("pico/v1/{victim}"));
    let mut bytes = fs::read(&obj).unwrap();
    bytes[20] ^= 1;
    put_through_store(&server, url, victim, &bytes);
    let o = run_s3(&server, &["mirror", s(&src), url]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("differs at DST: {victim}: CRC-64/NVME")),
        "{}",
        text(&o)
    );
    assert_eq!(fs::read(&obj).unwrap(), bytes);
}

/// Stores `bytes` under `rel` of `url` on `server` by a PUT (the store computes and keeps
/// their checksum, as for any upload).
fn put_through_store(server: &S3Server, url: &str, rel: &str, bytes: &[u8]) {
    let loc = server.location(url, Default::default());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(loc.put(rel, bytes.to_vec().into()))
        .unwrap();
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

/// Another dataset than [`build`]'s, under the same shard names.
fn build_other(dir: &Path) -> Manifest {
    let mut w = DatasetWriter::create(dir).unwrap().target_shard_bytes(1500);
    for n in 200..230 {
        w.append(&records::sft(n, n + 1)).unwrap();
    }
    w.finish().unwrap()
}

/// Starts `editshard mirror SRC DST` from a fault server whose `stalled` shard never
/// arrives (so the mirror holds DST for as long as the test wants) and waits until it is
/// inside that shard's copy.
fn start_stalled_mirror(
    srv: &editshard_tools::fault_server::FaultServer,
    stalled: &str,
    dst: &str,
    s3: Option<&S3Server>,
) -> std::process::Child {
    srv.on(stalled, [Behavior::Stall(Duration::from_secs(120))]);
    let mut c = cmd(&["mirror", &srv.url(), dst, "--jobs", "1", "--timeout", "300"]);
    if let Some(server) = s3 {
        c.args(["--s3-endpoint", &server.endpoint])
            .env("AWS_ACCESS_KEY_ID", server.access_key)
            .env("AWS_SECRET_ACCESS_KEY", server.secret_key);
    }
    let mut child = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !srv.requests().iter().any(|r| r.path == stalled) {
        assert!(
            Instant::now() < deadline,
            "the mirror never reached {stalled}"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the mirror ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Two mirrors of different datasets into one local directory: the second is refused while
/// the first runs, naming it, and writes nothing; the first, killed with SIGKILL, leaves a
/// lock the OS has released: its re-run takes the lock over and completes.
#[test]
fn a_second_mirror_into_a_locked_local_dst_is_refused_and_a_killed_holder_frees_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, other, dst) = (
        tmp.path().join("src"),
        tmp.path().join("other"),
        tmp.path().join("dst"),
    );
    let m = build(&src, false);
    build_other(&other);
    let srv = fault_server(&src);
    let stalled = format!("/{}", m.shards[3].path);
    let mut first = start_stalled_mirror(&srv, &stalled, s(&dst), None);
    // The server logs the stalled GET before the first mirror has its answer's headers and
    // creates that shard's temporary file: wait for the file, or the snapshot races it.
    let name = Path::new(&m.shards[3].path)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !tree(&dst)
        .keys()
        .any(|k| k.contains(&name) && k.ends_with(".partial"))
    {
        assert!(
            Instant::now() < deadline,
            "the first mirror never began {name}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = tree(&dst);
    assert!(dst.join(".editshard-lock").is_file());

    let o = run(&["mirror", s(&other), s(&dst)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("is locked by another run")
            && err.contains(&format!("pid {}", first.id()))
            && err.contains(&format!("mirror {}", srv.url())),
        "{err}"
    );
    assert_eq!(tree(&dst), before, "the refused mirror wrote to DST");

    first.kill().unwrap(); // SIGKILL: the lock file stays, the OS lock goes
    first.wait().unwrap();
    assert!(dst.join(".editshard-lock").is_file());
    srv.clear_rules();
    let o = run(&["mirror", &srv.url(), s(&dst)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no longer running: taken over"),
        "{}",
        text(&o)
    );
    assert_eq!(tree(&dst), tree(&src), "lock file left or shards wrong");
}

/// The same on S3 (a conditional PUT of `DST/.editshard-lock` on s3s-fs): the second mirror
/// is refused, naming the holder; once the holder is killed its lock stays (S3 cannot tell),
/// a re-run is refused with advice to use `--break-lock`, and `--break-lock` completes.
#[test]
fn a_second_mirror_into_a_locked_s3_prefix_is_refused_and_break_lock_frees_it() {
    let server = S3Server::start();
    server.create_bucket("locks");
    let tmp = tempfile::tempdir().unwrap();
    let (src, other) = (tmp.path().join("src"), tmp.path().join("other"));
    let m = build(&src, false);
    build_other(&other);
    let url = "s3://locks/data";
    let srv = fault_server(&src);
    let stalled = format!("/{}", m.shards[3].path);
    let mut first = start_stalled_mirror(&srv, &stalled, url, Some(&server));
    let lock = server.object_path("locks", "data/.editshard-lock");
    assert!(lock.is_file());
    let objects = |server: &S3Server| stored_objects(server, "locks", "data");
    let before = objects(&server);

    let o = run_s3(&server, &["mirror", s(&other), url]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("s3://locks/data is locked by another run")
            && err.contains(&format!("pid {}", first.id()))
            && err.contains("--break-lock")
            && err.contains("s3://locks/data/.editshard-lock"),
        "{err}"
    );
    assert_eq!(objects(&server), before, "the refused mirror wrote to DST");

    first.kill().unwrap();
    first.wait().unwrap();
    srv.clear_rules();
    let o = run_s3(&server, &["mirror", &srv.url(), url]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--break-lock"),
        "{}",
        text(&o)
    );
    let o = run_s3(&server, &["mirror", &srv.url(), url, "--break-lock"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!lock.exists(), "lock not released");
    assert_eq!(objects(&server), tree(&src));
}

/// `mirror` to and from S3 through a fault-injecting proxy in front of s3s-fs: 5xx bursts,
/// 503 SlowDown, a PUT whose response is lost after s3s-fs stored it, faults inside a
/// multipart upload, resets mid-body and stalls. Retried faults end in exactly the source's
/// bytes; retries run out on a shard: the shard is named, the manifest not written, and a
/// re-run completes.
#[test]
fn mirror_to_and_from_s3_through_faults() {
    use editshard_tools::fault_proxy::{Fault, FaultProxy};
    let server = S3Server::start();
    server.create_bucket("faulty");
    let proxy = FaultProxy::start(server.port);
    let tmp = tempfile::tempdir().unwrap();
    let (src, back) = (tmp.path().join("src"), tmp.path().join("back"));
    let m = build(&src, true);
    let big = m.shards.iter().find(|sh| sh.bytes > 5 << 20).unwrap();
    let url = "s3://faulty/ds";
    let run_proxy = |args: &[&str]| {
        cmd(args)
            .args(["--s3-endpoint", &proxy.endpoint(), "--timeout", "1"])
            .env("AWS_ACCESS_KEY_ID", server.access_key)
            .env("AWS_SECRET_ACCESS_KEY", server.secret_key)
            .output()
            .expect("run editshard")
    };
    let objects = || stored_objects(&server, "faulty", "ds");

    // Up: every fault is retried.
    let shard = |i: usize| format!("/ds/{}", m.shards[i].path);
    // A lost response to the lock's conditional PUT: the retry finds the lock this run took.
    proxy.on(
        "PUT",
        ".editshard-lock",
        [Fault::DropResponse, Fault::slow_down()],
    );
    proxy.on(
        "PUT",
        &shard(0),
        [
            Fault::slow_down(),
            Fault::DropResponse,
            Fault::internal_error(),
        ],
    );
    proxy.on("PUT", &shard(1), [Fault::unavailable()]);
    proxy.on("HEAD", &shard(2), [Fault::internal_error()]);
    proxy.on("PUT", "partNumber=2", [Fault::internal_error()]);
    proxy.on(
        "POST",
        &format!("{}?uploadId", big.path),
        [Fault::slow_down()],
    );
    proxy.on(
        "PUT",
        "manifest.json",
        [
            Fault::unavailable(),
            Fault::DropResponse,
            Fault::slow_down(),
        ],
    );
    let o = run_proxy(&["mirror", s(&src), url, "--part-size", "5", "--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(proxy.pending(), 0, "faults not reached: {:?}", proxy.seen());
    assert_eq!(objects(), tree(&src));

    // Down: resets mid-body, stalls and throttling on GETs are retried.
    proxy.on("GET", &shard(0), [Fault::ResetMidBody, Fault::slow_down()]);
    proxy.on(
        "GET",
        &shard(1),
        [Fault::StallBody(Duration::from_secs(30))],
    );
    proxy.on("GET", &big.path, [Fault::ResetMidBody]);
    proxy.on("GET", "manifest.json", [Fault::internal_error()]);
    let o = run_proxy(&["mirror", url, s(&back), "--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(proxy.pending(), 0, "faults not reached: {:?}", proxy.seen());
    assert_eq!(tree(&back), tree(&src));

    // Retries run out on one shard: named, manifest not written; the re-run completes.
    let again = tmp.path().join("again");
    proxy.always("GET", &shard(3), Fault::slow_down());
    let o = run_proxy(&["mirror", url, s(&again), "--retries", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains(&format!("failed: {}", m.shards[3].path))
            && out.contains("503")
            && out.contains("manifest.json NOT written"),
        "{out}"
    );
    assert!(!again.join("manifest.json").exists());
    proxy.clear_rules();
    let o = run_proxy(&["mirror", url, s(&again)]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(tree(&again), tree(&src));

    // The response to completing a multipart upload is lost (s3s-fs did complete it): the
    // shard is reported failed by name, nothing claims success, and the re-run finds the
    // shard intact and completes.
    let url2 = "s3://faulty/ds2";
    proxy.on(
        "POST",
        &format!("{}?uploadId", big.path),
        [Fault::DropResponse],
    );
    let o = run_proxy(&["mirror", s(&src), url2, "--part-size", "5"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "failed: {}: s3://faulty/ds2/{}",
            big.path, big.path
        )),
        "{}",
        text(&o)
    );
    // ... and says what is known, not the refused abort's 403 (which would send the user to
    // check credentials).
    assert!(
        text(&o).contains("unconfirmed") && !text(&o).contains("HTTP 403"),
        "{}",
        text(&o)
    );
    assert_eq!(proxy.pending(), 0);
    assert!(!server.object_path("faulty", "ds2/manifest.json").exists());
    let o = run_proxy(&["mirror", s(&src), url2, "--part-size", "5"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run_proxy(&["mirror", s(&src), url2, "--verify-only"]);
    assert!(o.status.success(), "{}", text(&o));

    // Without retries, the lock's conditional PUT lands but its answer is lost: the run reads
    // the lock back, finds its own token, and goes on (no stale lock of its own is left).
    proxy.on("PUT", "/ds3/.editshard-lock", [Fault::DropResponse]);
    let o = run_proxy(&["mirror", s(&src), "s3://faulty/ds3", "--retries", "0"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(proxy.pending(), 0);
    assert!(!server.object_path("faulty", "ds3/.editshard-lock").exists());
}

#[test]
fn an_upload_damaged_in_flight_is_refused_by_the_store_and_sent_again() {
    use editshard_tools::fault_proxy::{Fault, FaultProxy};
    let server = S3Server::start();
    server.create_bucket("damaged");
    let proxy = FaultProxy::start(server.port);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let m = build(&src, true);
    let big = m.shards.iter().find(|sh| sh.bytes > 5 << 20).unwrap();
    // One byte flipped on the way: in a one-PUT shard, in the second part of the multipart
    // one, and in the manifest.
    let small = format!("/damaged/ds/{}", m.shards[0].path);
    proxy.on("PUT", &small, [Fault::DamageRequestBody]);
    proxy.on(
        "PUT",
        &format!("{}?partNumber=2", big.path),
        [Fault::DamageRequestBody],
    );
    proxy.on("PUT", "/ds/manifest.json", [Fault::DamageRequestBody]);
    let o = cmd(&["mirror", s(&src), "s3://damaged/ds", "--part-size", "5"])
        .args(["--s3-endpoint", &proxy.endpoint()])
        .env("AWS_ACCESS_KEY_ID", server.access_key)
        .env("AWS_SECRET_ACCESS_KEY", server.secret_key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(proxy.pending(), 0, "faults not reached: {:?}", proxy.seen());
    // Each damaged request was refused and sent again: the same request follows it.
    let seen = proxy.seen();
    for (i, damaged) in seen.iter().enumerate() {
        if damaged.fault.is_none() {
            continue;
        }
        assert!(
            seen[i + 1..]
                .iter()
                .any(|r| r.method == "PUT" && r.path == damaged.path && r.fault.is_none()),
            "{} was not sent again: {seen:?}",
            damaged.path
        );
    }
    // The store holds exactly the source's bytes.
    let stored = stored_objects(&server, "damaged", "ds");
    assert_eq!(stored, tree(&src));
}

#[test]
fn s3_to_s3_on_one_endpoint_is_copied_by_the_store_without_moving_bytes_through_the_client() {
    use editshard_tools::fault_proxy::FaultProxy;
    let server = S3Server::start();
    server.create_bucket("both");
    server.create_bucket("other");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let m = build(&src, true);
    let o = run_s3(
        &server,
        &["mirror", s(&src), "s3://both/a", "--part-size", "5"],
    );
    assert!(o.status.success(), "{}", text(&o));

    // Within the bucket (object_store's copy), then into another bucket (signed here).
    for (dst, bucket, prefix) in [("s3://both/b", "both", "b"), ("s3://other/c", "other", "c")] {
        let proxy = FaultProxy::start(server.port);
        let o = cmd(&["mirror", "s3://both/a", dst, "--trust-store-copy"])
            .args(["--s3-endpoint", &proxy.endpoint()])
            .env("AWS_ACCESS_KEY_ID", server.access_key)
            .env("AWS_SECRET_ACCESS_KEY", server.secret_key)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let stored = stored_objects(&server, bucket, prefix);
        assert_eq!(stored, tree(&src), "{dst}");

        // No shard was read or sent by the client: each is one bodiless PUT (CopyObject)
        // and HEADs; what passed through is the manifest, the lock and the store's short
        // answers.
        let seen = proxy.seen();
        let copy_path = |sh: &str| format!("/{bucket}/{prefix}/{sh}");
        for sh in &m.shards {
            let of_shard: Vec<_> = seen.iter().filter(|r| r.path.contains(&sh.path)).collect();
            assert!(
                of_shard
                    .iter()
                    .all(|r| r.method != "GET" && r.request_body == 0),
                "{dst} {}: {of_shard:?}",
                sh.path
            );
            assert!(
                of_shard
                    .iter()
                    .any(|r| r.method == "PUT" && r.path == copy_path(&sh.path)),
                "{dst} {}: {of_shard:?}",
                sh.path
            );
        }
        let (sent, received) = proxy.body_bytes();
        let shard_bytes: u64 = m.shards.iter().map(|sh| sh.bytes).sum();
        assert!(
            ((sent + received) as u64) < (64 << 10) && shard_bytes > 6 << 20,
            "{dst}: {sent} bytes sent, {received} received, for {shard_bytes} bytes of shards"
        );
    }

    // By default each copy the store made is checked by the CRC-64/NVME the store reports
    // for it, compared with the manifest's (the source object was not read here): one HEAD,
    // no GET. s3s-fs keeps no checksum for a multipart upload (the big shard): that copy is
    // read back and hashed instead, and the run says so once.
    let proxy = FaultProxy::start(server.port);
    let o = cmd(&["mirror", "s3://both/a", "s3://other/d"])
        .args(["--s3-endpoint", &proxy.endpoint()])
        .env("AWS_ACCESS_KEY_ID", server.access_key)
        .env("AWS_SECRET_ACCESS_KEY", server.secret_key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        text(&o).matches("note: 1 shard(s) were read back").count(),
        1,
        "{}",
        text(&o)
    );
    let seen = proxy.seen();
    for sh in &m.shards {
        let of_shard: Vec<_> = seen.iter().filter(|r| r.path.contains(&sh.path)).collect();
        assert!(
            of_shard.iter().all(|r| r.request_body == 0),
            "{}: {of_shard:?}",
            sh.path
        );
        let read_back = of_shard
            .iter()
            .any(|r| r.method == "GET" && r.path == format!("/other/d/{}", sh.path));
        assert_eq!(read_back, multipart(sh), "{}: {of_shard:?}", sh.path);
    }
    let (_, received) = proxy.body_bytes();
    let big = multipart_bytes(&m);
    assert!(
        (received as u64) < big + (64 << 10),
        "{received} bytes received"
    );

    // A source object replaced at rest by other bytes of its length: the store's CRC of the
    // copy differs from the manifest's, and nothing is published as the shard.
    let victim = m.shards.iter().find(|sh| !multipart(sh)).unwrap();
    let mut bytes = fs::read(server.object_path("both", &format!("a/{}", victim.path))).unwrap();
    bytes[30] ^= 1;
    put_through_store(&server, "s3://both/a", &victim.path, &bytes);
    let o = run_s3(&server, &["mirror", "s3://both/a", "s3://other/e"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("failed: {}: after copying", victim.path))
            && text(&o).contains("CRC-64/NVME"),
        "{}",
        text(&o)
    );
    assert!(!server.object_path("other", "e/manifest.json").exists());
    assert!(
        !server
            .object_path("other", &format!("e/{}", victim.path))
            .exists()
    );
}

#[test]
fn a_shard_goes_up_in_one_streamed_put_and_a_damaged_source_never_becomes_an_object() {
    use editshard_tools::fault_proxy::FaultProxy;
    let server = S3Server::start();
    server.create_bucket("one");
    let proxy = FaultProxy::start(server.port);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let m = build(&src, true);
    let big = m.shards.iter().find(|sh| sh.bytes > 5 << 20).unwrap();
    let big_file = src.join(&big.path);
    let good = fs::read(&big_file).unwrap();
    // Damaged at SRC after its manifest was written, same length: the last byte.
    let mut bad = good.clone();
    *bad.last_mut().unwrap() ^= 1;
    fs::write(&big_file, &bad).unwrap();
    let mirror = || {
        cmd(&["mirror", s(&src), "s3://one/ds", "--jobs", "2"])
            .args(["--s3-endpoint", &proxy.endpoint()])
            .env("AWS_ACCESS_KEY_ID", server.access_key)
            .env("AWS_SECRET_ACCESS_KEY", server.secret_key)
            .output()
            .unwrap()
    };
    let o = mirror();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&big.path) && text(&o).contains("does not match its manifest"),
        "{}",
        text(&o)
    );
    // The streamed PUT was cut short before its last bytes: no object under the name.
    let big_object = server.object_path("one", &format!("ds/{}", big.path));
    assert!(!big_object.exists(), "a damaged shard was published");
    let puts = |path: &str| -> Vec<usize> {
        proxy
            .seen()
            .iter()
            .filter(|r| r.method == "PUT" && r.path.ends_with(&format!("/ds/{path}")))
            .map(|r| r.request_body)
            .collect()
    };
    assert!(
        puts(&big.path).iter().all(|&n| n < good.len()),
        "{:?}",
        puts(&big.path)
    );

    // Repaired: every shard, the one over 5 MiB too, went up in one PUT of its whole length
    // (by default, shards up to 128 MiB are not split into parts).
    fs::write(&big_file, &good).unwrap();
    let o = mirror();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(fs::read(&big_object).unwrap(), good);
    assert!(
        proxy.seen().iter().all(|r| !r.path.contains("uploadId")),
        "a multipart upload: {:?}",
        proxy.seen()
    );
    for sh in m.shards.iter().filter(|sh| sh.path != big.path) {
        assert_eq!(puts(&sh.path), vec![sh.bytes as usize], "{}", sh.path);
    }
    assert_eq!(puts(&big.path).last(), Some(&good.len()));
    let stored = stored_objects(&server, "one", "ds");
    assert_eq!(stored, tree(&src));
}

#[test]
fn an_upload_whose_answer_stalls_is_given_up_after_the_timeout_and_sent_again() {
    use editshard_tools::fault_proxy::{Fault, FaultProxy};
    let server = S3Server::start();
    server.create_bucket("stall");
    let proxy = FaultProxy::start(server.port);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let m = build(&src, false);
    let stalled = format!("/stall/ds/{}", m.shards[0].path);
    // The store takes the body and then answers nothing for ten minutes.
    proxy.on(
        "PUT",
        &stalled,
        [Fault::StallAnswer(Duration::from_secs(600))],
    );
    let mut child = cmd(&["mirror", s(&src), "s3://stall/ds", "--timeout", "1"])
        .args(["--s3-endpoint", &proxy.endpoint()])
        .env("AWS_ACCESS_KEY_ID", server.access_key)
        .env("AWS_SECRET_ACCESS_KEY", server.secret_key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Far below the stall: the PUT was given up after --timeout, not waited out.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "the mirror waited for the stalled answer: {:?}",
                proxy.seen()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let puts: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path == stalled)
        .collect();
    assert!(
        puts.len() == 2 && puts[0].fault.is_some() && puts[1].fault.is_none(),
        "{puts:?}"
    );
    let stored = stored_objects(&server, "stall", "ds");
    assert_eq!(stored, tree(&src));
}
