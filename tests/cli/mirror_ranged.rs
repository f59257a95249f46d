//! `editshard mirror` of a large shard from HTTP (the fault server) and S3 (s3s-fs behind the
//! fault proxy) to a local directory in ranged GETs at once: a range cut mid-way is asked
//! again from where it stopped and the file is exact; a range with damaged bytes is refused
//! by the SHA-256 and nothing is published; a server that ignores `Range` gets one plain
//! GET; a mirror killed inside a ranged download resumes and leaves no temporary file.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use editshard::manifest::Manifest;
use editshard::write::DatasetWriter;
use editshard_tools::cli::{s, text, tree};
use editshard_tools::fault_server::{Behavior, fault_server};
use editshard_tools::records;
use editshard_tools::servers::S3Server;

use crate::mirror_remote::{big_records, cmd, run};

/// Ranged from 1 MiB up, in 1 MiB ranges: the test's large shard (~6 MiB) takes 6-7 ranges.
const RANGED: [&str; 4] = ["--ranged-min", "1", "--range-size", "1"];

/// Small shards and one of about 6 MiB (two 3 MiB images).
fn build(dir: &Path) -> Manifest {
    let mut w = DatasetWriter::create(dir).unwrap().target_shard_bytes(1500);
    let mut all = records::mixed();
    all.extend(big_records());
    for r in &all {
        w.append(r).unwrap();
    }
    w.finish().unwrap()
}

/// Names under `dir` that are temporary files.
fn partials(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect()
}

/// The start of a `Range: bytes=A-B` header.
fn range_start(range: &str) -> u64 {
    let spec = range.strip_prefix("bytes=").unwrap();
    spec.split('-').next().unwrap().parse().unwrap()
}

#[test]
fn ranged_download_over_http_retries_a_cut_range_and_refuses_damaged_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let m = build(&src);
    let big = m.shards.iter().find(|sh| sh.bytes > 5 << 20).unwrap();
    let big_path = format!("/{}", big.path);
    let srv = fault_server(&src);
    let url = srv.url();
    let mirror = |dst: &Path| {
        let mut args = vec!["mirror", &url, s(dst), "--timeout", "5"];
        args.extend(RANGED);
        args.extend(["--range-streams", "3"]);
        run(&args)
    };

    // One range cut mid-body: asked again from where it stopped; the copy is exact.
    let dst = tmp.path().join("cut");
    srv.on(&big_path, [Behavior::ResetMidBody]);
    let o = mirror(&dst);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(tree(&dst), tree(&src));
    let gets: Vec<_> = srv
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == big_path)
        .collect();
    let ranges = big.bytes.div_ceil(1 << 20) as usize;
    assert!(
        gets.iter().all(|r| r.range.is_some()),
        "a GET without Range: {gets:?}"
    );
    assert_eq!(gets.len(), ranges + 1, "{gets:?}");
    assert!(
        gets.iter()
            .any(|r| range_start(r.range.as_deref().unwrap()) % (1 << 20) != 0),
        "no range was resumed mid-way: {gets:?}"
    );

    // One range with a byte flipped: refused by the SHA-256, nothing published, no
    // temporary file left; the re-run completes.
    let dst = tmp.path().join("damaged");
    srv.clear_requests();
    srv.on(&big_path, [Behavior::CorruptBody]);
    let o = mirror(&dst);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains(&format!("failed: {}", big.path))
            && out.contains("SHA-256")
            && out.contains("manifest.json NOT written"),
        "{out}"
    );
    assert!(!dst.join(&big.path).exists());
    assert!(!dst.join("manifest.json").exists());
    assert_eq!(partials(&dst), Vec::<String>::new());
    let o = mirror(&dst);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(tree(&dst), tree(&src));

    // A server that ignores Range: the shard comes in one plain GET instead.
    let dst = tmp.path().join("plain");
    srv.clear_requests();
    srv.on(&big_path, [Behavior::IgnoreRange]);
    let o = mirror(&dst);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(tree(&dst), tree(&src));
    assert!(
        srv.requests()
            .iter()
            .any(|r| r.method == "GET" && r.path == big_path && r.range.is_none()),
        "{:?}",
        srv.requests()
    );
}

#[test]
fn a_mirror_killed_inside_a_ranged_download_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    let m = build(&src);
    let big = m.shards.iter().find(|sh| sh.bytes > 5 << 20).unwrap();
    let big_path = format!("/{}", big.path);
    let srv = fault_server(&src);
    // The first range served, the second stalled: the mirror is inside the ranged download.
    srv.on(
        &big_path,
        [Behavior::Serve, Behavior::Stall(Duration::from_secs(60))],
    );
    let url = srv.url();
    let mut args = vec!["mirror", &url, s(&dst), "--timeout", "120"];
    args.extend(RANGED);
    let mut child = cmd(&args)
        .args(["--range-streams", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while srv.requests().iter().filter(|r| r.path == big_path).count() < 2 {
        assert!(
            Instant::now() < deadline,
            "the mirror never reached the big shard"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the mirror ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!dst.join(&big.path).exists(), "a partial shard is visible");

    srv.clear_rules();
    let mut args = vec!["mirror", &url, s(&dst)];
    args.extend(RANGED);
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o));
    // Exactly the source: the killed run's temporary file is gone too.
    assert_eq!(tree(&dst), tree(&src));
}

#[test]
fn ranged_download_from_s3_through_faults() {
    use editshard_tools::fault_proxy::{Fault, FaultProxy};
    let server = S3Server::start();
    server.create_bucket("ranged");
    let tmp = tempfile::tempdir().unwrap();
    let (src, back) = (tmp.path().join("src"), tmp.path().join("back"));
    let m = build(&src);
    let big = m.shards.iter().find(|sh| sh.bytes > 5 << 20).unwrap();
    let with_keys = |c: &mut Command, endpoint: &str| {
        c.args(["--s3-endpoint", endpoint])
            .env("AWS_ACCESS_KEY_ID", server.access_key)
            .env("AWS_SECRET_ACCESS_KEY", server.secret_key)
            .output()
            .expect("run editshard")
    };
    let o = with_keys(
        &mut cmd(&["mirror", s(&src), "s3://ranged/ds"]),
        &server.endpoint,
    );
    assert!(o.status.success(), "{}", text(&o));

    // Down through the proxy: a range cut mid-body, then throttled, then served.
    let proxy = FaultProxy::start(server.port);
    proxy.on("GET", &big.path, [Fault::ResetMidBody, Fault::slow_down()]);
    let mut args = vec!["mirror", "s3://ranged/ds", s(&back), "--timeout", "5"];
    args.extend(RANGED);
    let o = with_keys(&mut cmd(&args), &proxy.endpoint());
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(proxy.pending(), 0, "faults not reached: {:?}", proxy.seen());
    let got: BTreeMap<_, _> = tree(&back);
    assert_eq!(got, tree(&src));
    let big_gets = proxy
        .seen()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains(&big.path))
        .count();
    assert!(
        big_gets > big.bytes.div_ceil(1 << 20) as usize,
        "{:?}",
        proxy.seen()
    );
}

/// The manifest at `dir`, every shard's `crc64nvme` set by `crc` (`None` removes it).
fn set_crcs(dir: &Path, crc: impl Fn(&str) -> Option<String>) {
    let path = dir.join("manifest.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    for sh in doc["shards"].as_array_mut().unwrap() {
        let sh = sh.as_object_mut().unwrap();
        match crc(sh["path"].as_str().unwrap()) {
            Some(c) => sh.insert("crc64nvme".into(), c.into()),
            None => sh.remove("crc64nvme"),
        };
    }
    fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
}

#[test]
fn a_ranged_download_checks_and_learns_the_shards_crc() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let m = build(&src);
    let big = m.shards.iter().find(|sh| sh.bytes > 5 << 20).unwrap();
    let srv = fault_server(&src);
    let url = srv.url();
    let mirror = |dst: &Path| {
        let mut args = vec!["mirror", &url, s(dst), "--timeout", "5"];
        args.extend(RANGED);
        run(&args)
    };

    // A manifest that predates crc64nvme: the copy's manifest gains every shard's CRC,
    // the large shard's computed by the ranged download.
    set_crcs(&src, |_| None);
    let dst = tmp.path().join("older");
    let o = mirror(&dst);
    assert!(o.status.success(), "{}", text(&o));
    let copied = Manifest::parse(&fs::read(dst.join("manifest.json")).unwrap()).unwrap();
    let want: Vec<_> = m.shards.iter().map(|sh| sh.crc64nvme.clone()).collect();
    let got: Vec<_> = copied
        .shards
        .iter()
        .map(|sh| sh.crc64nvme.clone())
        .collect();
    assert!(want.iter().all(Option::is_some));
    assert_eq!(got, want);

    // A manifest whose CRC of the large shard disagrees with its (right) SHA-256: refused,
    // nothing published.
    let wrong = editshard::crc64::encode(0x0123_4567_89ab_cdef);
    set_crcs(&src, |path| {
        let sh = m.shards.iter().find(|sh| sh.path == path).unwrap();
        if sh.path == big.path {
            Some(wrong.clone())
        } else {
            sh.crc64nvme.clone()
        }
    });
    let dst = tmp.path().join("wrong-crc");
    let o = mirror(&dst);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains(&format!("failed: {}", big.path)) && out.contains("CRC-64/NVME"),
        "{out}"
    );
    assert!(!dst.join(&big.path).exists());
    assert_eq!(partials(&dst), Vec::<String>::new());
}
