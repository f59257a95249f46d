//! `editshard convert` over HTTP against real loopback servers: network faults (429 with
//! Retry-After, 503, reset mid-body, short body, stall, 404, HTML served as PNG),
//! `--retry-failed`, byte-identical output whatever `--jobs`, kill -9 at several points then
//! resume, S3 output against s3s-fs (killed, locked, and through a fault-injecting proxy), and
//! the lock on `--out`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use editshard_tools::convert_support::*;
use editshard_tools::fault_server::{Behavior, FaultServer, fault_server};
use editshard_tools::release::{Expect, GeneratedRelease, ReleaseSpec, Subset, generate_release};
use editshard_tools::servers::S3Server;
use sha2::{Digest, Sha256};

struct Served {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    rel: GeneratedRelease,
    server: FaultServer,
}

fn served(spec: ReleaseSpec) -> Served {
    let tmp = tempfile::tempdir().unwrap();
    let rel = generate_release(&tmp.path().join("rel"), &spec).unwrap();
    let server = fault_server(&rel.root);
    Served {
        dir: tmp.path().to_path_buf(),
        _tmp: tmp,
        rel,
        server,
    }
}

impl Served {
    /// Release and every source URL through the server.
    fn args(&self, out: &str) -> Vec<String> {
        let base = self.server.url();
        strings(&[
            &format!("{base}/"),
            "--out",
            out,
            "--map-url",
            &format!("https://={base}/flickr/"),
        ])
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Paths requested with GET (HTTP paths, e.g. `/images/positive-edit/3.png`).
    fn gets(&self) -> Vec<String> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.method == "GET")
            .map(|r| r.path)
            .collect()
    }
}

fn count(paths: &[String], p: &str) -> usize {
    paths.iter().filter(|x| *x == p).count()
}

fn flickr_path(url: &str) -> String {
    format!("/flickr/{}", url.strip_prefix("https://").unwrap())
}

fn reasons(dir: &Path) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for f in failures(dir) {
        *m.entry(f["reason"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    m
}

#[test]
fn network_faults_are_retried_or_reported_then_retry_failed_completes() {
    let s = served(ReleaseSpec {
        sft: 14,
        preference: 8,
        multi_turn: 8,
        seed: 21,
        image_px: 16,
        faults: true,
    });
    let rel = &s.rel;
    // A source with exactly one row goes missing (404).
    let dead = rel
        .rows
        .iter()
        .filter(|r| r.expect == Expect::Convert)
        .find(|r| rel.rows.iter().filter(|o| o.source == r.source).count() == 1)
        .expect("a source used once");
    let dead_file = rel.root.join(&rel.sources[dead.source].flickr_rel);
    fs::rename(&dead_file, dead_file.with_extension("bak")).unwrap();
    // Six other rows each get one misbehaving edited image (used by that row only).
    let mut picked: Vec<(String, &editshard_tools::release::GeneratedRow)> = Vec::new();
    for r in rel
        .rows
        .iter()
        .filter(|r| r.expect == Expect::Convert && r.source != dead.source)
    {
        let img = r.edited_images().into_iter().last().unwrap();
        let users = rel
            .rows
            .iter()
            .filter(|o| o.edited_images().contains(&img))
            .count();
        if users == 1 && picked.iter().all(|(_, p)| p.source != r.source) {
            picked.push((format!("/{img}"), r));
        }
        if picked.len() == 6 {
            break;
        }
    }
    assert_eq!(picked.len(), 6, "release too small for the scenario");
    let retry_after = vec![("Retry-After".to_string(), "1".to_string())];
    let behaviors = [
        Behavior::Status(429, retry_after),
        Behavior::Status(503, vec![]),
        Behavior::ResetMidBody,
        Behavior::ShortBody,
        Behavior::Stall(Duration::from_secs(30)),
        Behavior::Html200,
    ];
    for ((path, _), b) in picked.iter().zip(behaviors) {
        s.server.on(path, [b]);
    }

    let out = s.out("out");
    let o = convert(crate::BIN, &s.args(out.to_str().unwrap()));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let gets = s.gets();
    for (path, _) in &picked[..5] {
        assert_eq!(count(&gets, path), 2, "{path}: one failure, one retry");
    }
    assert_eq!(
        count(&gets, &picked[5].0),
        1,
        "an HTML page is invalid, not retried"
    );
    let dead_path = flickr_path(&dead.source_url);
    assert_eq!(count(&gets, &dead_path), 1, "404 is final");

    let recs: BTreeMap<String, _> = records(&out)
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    for (path, row) in &picked[..5] {
        let rec = &recs[&format!("{}/{}", row.subset.name(), row.key)];
        let img = rec
            .images()
            .find(|i| i.path.as_deref() == Some(&path[1..]))
            .unwrap();
        assert_eq!(
            img.sha256_hex(),
            rel.files[&path[1..]].sha256,
            "{path}: stored bytes are the file's"
        );
    }
    let f = failures(&out);
    let html = f
        .iter()
        .find(|x| x["reason"] == "invalid-image")
        .expect("html failure");
    assert_eq!(html["line"].as_u64(), Some(picked[5].1.line as u64));
    assert_eq!(
        html["url"].as_str().unwrap(),
        format!("{}{}", s.server.url(), picked[5].0)
    );
    assert!(
        html["detail"].as_str().unwrap().contains("not an image"),
        "{html}"
    );
    let nf = f
        .iter()
        .find(|x| x["reason"] == "http-404")
        .expect("404 failure");
    assert_eq!(
        nf["url"].as_str().unwrap(),
        format!("{}{dead_path}", s.server.url())
    );
    assert_eq!(
        nf["id"].as_str().unwrap(),
        format!("{}/{}", dead.subset.name(), dead.key)
    );
    let want: BTreeMap<String, usize> = [
        ("collision", 2),
        ("http-404", 1),
        ("invalid-image", 1),
        ("malformed-json", 3),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .into();
    assert_eq!(reasons(&out), want);

    // The source comes back; only the failed rows are converted again.
    fs::rename(dead_file.with_extension("bak"), &dead_file).unwrap();
    s.server.clear_requests();
    let mut args = s.args(out.to_str().unwrap());
    args.extend(strings(&["--retry-failed", "--allow-failures"]));
    let o = convert(crate::BIN, &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let gets = s.gets();
    assert_eq!(count(&gets, &dead_path), 1);
    assert_eq!(
        count(&gets, &picked[0].0),
        0,
        "converted rows are not fetched again"
    );
    let want: BTreeMap<String, usize> = [("collision", 2), ("malformed-json", 3)]
        .map(|(k, v)| (k.to_string(), v))
        .into();
    assert_eq!(reasons(&out), want);
    let m = manifest(&out);
    let expected: usize = Subset::ALL
        .iter()
        .map(|&s| rel.expected_to_convert(s).len())
        .sum();
    assert_eq!(m.records as usize, expected);
    assert!(m.shards.iter().any(|s| s.path.starts_with("retry-1/")));
    let ids: HashSet<String> = records(&out).into_iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), expected, "no record twice");
    assert!(ids.contains(&format!("{}/{}", dead.subset.name(), dead.key)));
}

fn small_release() -> Served {
    served(ReleaseSpec {
        sft: 20,
        preference: 10,
        multi_turn: 10,
        seed: 33,
        image_px: 24,
        faults: true,
    })
}

#[test]
fn shards_are_byte_identical_whatever_jobs_and_download_order() {
    let s = small_release();
    // Slow down a few early images so that later ones finish first in the parallel run.
    for r in s.rel.rows.iter().take(4) {
        let drip = Behavior::SlowDrip {
            bytes_per_tick: 256,
            tick: Duration::from_millis(15),
        };
        s.server.on(&flickr_path(&r.source_url), [drip]);
    }
    let mut dirs = Vec::new();
    for (name, jobs, per_host) in [("one", "1", "1"), ("many", "16", "8")] {
        let out = s.out(name);
        let mut args = s.args(out.to_str().unwrap());
        args.extend(strings(&[
            "--jobs",
            jobs,
            "--per-host",
            per_host,
            "--shard-size",
            "12kB",
            "--allow-failures",
        ]));
        let o = convert(crate::BIN, &args);
        assert!(o.status.success(), "{}", text(&o));
        dirs.push(out);
    }
    assert!(
        manifest(&dirs[0]).shards.len() >= 3,
        "rollover not exercised"
    );
    assert_same_tree(&dirs[0], &dirs[1]);
}

fn cache_path(work: &Path, url: &str) -> PathBuf {
    let h: String = Sha256::digest(url.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    work.join("cache").join(&h[..2]).join(h)
}

fn killed(o: &Output) -> bool {
    o.status.signal() == Some(9)
}

#[test]
fn killed_at_any_point_resumes_to_the_same_bytes_without_refetching() {
    let s = small_release();
    let shard = ["--shard-size", "12kB", "--allow-failures", "--jobs", "4"];
    let reference = s.out("reference");
    let mut args = s.args(reference.to_str().unwrap());
    args.extend(strings(&shard));
    assert!(convert(crate::BIN, &args).status.success());
    let full_gets = s.gets().len();

    for point in [
        "fetched:6",
        "appended:9",
        "published:1",
        "saved:2",
        "finishing:1",
    ] {
        s.server.clear_requests();
        let out = s.out(&format!("run-{}", point.replace(':', "-")));
        let mut args = s.args(out.to_str().unwrap());
        args.extend(strings(&shard));
        let mut cmd = editshard(crate::BIN);
        cmd.arg("convert").args(&args).args(["--log-interval", "0"]);
        let o = cmd.env("EDITSHARD_TEST_KILL_AT", point).output().unwrap();
        assert!(
            killed(&o),
            "{point}: expected death by SIGKILL: {}",
            text(&o)
        );
        assert!(
            !out.join("manifest.json").exists(),
            "{point}: a killed run must look unfinished"
        );
        let work = out.join(".editshard-work");
        let before: Vec<String> = s.gets();
        let cached: HashSet<String> = before
            .iter()
            .filter(|p| cache_path(&work, &format!("{}{p}", s.server.url())).exists())
            .cloned()
            .collect();

        s.server.clear_requests();
        let o = convert(crate::BIN, &args);
        assert!(o.status.success(), "{point}: resume failed: {}", text(&o));
        assert_same_tree(&reference, &out);
        let after = s.gets();
        for p in &after {
            assert!(
                !cached.contains(p),
                "{point}: {p} was downloaded before the kill and again after"
            );
        }
        assert!(
            after.len() < full_gets,
            "{point}: the resumed run fetched everything again"
        );
        if point.starts_with("fetched") {
            assert!(
                !cached.is_empty(),
                "{point}: nothing was cached before the kill"
            );
        }
    }
}

/// Killed after the manifest is written but before the clean-up: the dataset is finished, and
/// re-running the same command (a requeued cluster job) finishes the clean-up and exits 0,
/// fetching nothing. So does a run killed in the middle of removing the work directory.
#[test]
fn killed_after_the_manifest_a_rerun_finishes_the_clean_up() {
    let s = small_release();
    let shard = ["--shard-size", "12kB", "--allow-failures", "--jobs", "4"];
    let reference = s.out("reference");
    let mut args = s.args(reference.to_str().unwrap());
    args.extend(strings(&shard));
    assert!(convert(crate::BIN, &args).status.success());

    // Converts into `s.out(name)`, killed at `point`; the command's arguments for a re-run.
    let killed_at = |name: &str, point: &str| {
        let out = s.out(name);
        let mut args = s.args(out.to_str().unwrap());
        args.extend(strings(&shard));
        let mut cmd = editshard(crate::BIN);
        cmd.arg("convert").args(&args);
        let o = cmd.env("EDITSHARD_TEST_KILL_AT", point).output().unwrap();
        assert!(
            killed(&o),
            "{point}: expected death by SIGKILL: {}",
            text(&o)
        );
        (out, args)
    };
    let (out, args) = killed_at("killed", "manifest:1");
    let work = out.join(".editshard-work");
    assert!(out.join("manifest.json").exists() && work.exists());
    // As if the kill had also interrupted the removal: part of the work directory is gone.
    let _ = fs::remove_file(work.join("state.json"));
    // And temporary files of a kill while writing (local storage's own naming).
    fs::write(out.join("failures.jsonl.999-0.partial"), b"x").unwrap();
    fs::write(out.join("manifest.json.999-1.partial"), b"x").unwrap();

    s.server.clear_requests();
    for attempt in 1..=2 {
        let o = convert(crate::BIN, &args);
        assert!(o.status.success(), "re-run {attempt}: {}", text(&o));
        assert!(
            !work.exists(),
            "re-run {attempt}: the work directory is still there"
        );
        assert_same_tree(&reference, &out);
    }
    let images = s
        .gets()
        .into_iter()
        .filter(|p| !p.starts_with("/jsonl/"))
        .count();
    assert_eq!(images, 0, "the re-runs fetched images again");

    // Killed while writing the manifest: its temporary file is there, the manifest is not.
    let (out, args) = killed_at("killed-finishing", "finishing:1");
    fs::write(out.join("manifest.json.999-1.partial"), b"{").unwrap();
    let o = convert(crate::BIN, &args);
    assert!(o.status.success(), "{}", text(&o));
    assert_same_tree(&reference, &out);
}

#[test]
fn s3_destination_holds_the_same_bytes_as_a_local_one_even_after_a_kill() {
    let s = small_release();
    let s3 = S3Server::start();
    s3.create_bucket("data");
    let local = s.out("local");
    let common = ["--shard-size", "12kB", "--allow-failures"];
    let mut args = s.args(local.to_str().unwrap());
    args.extend(strings(&common));
    assert!(convert(crate::BIN, &args).status.success());

    let work = s.out("s3-work");
    let mut args = s.args("s3://data/converted/run1");
    args.extend(strings(&common));
    args.extend(strings(&[
        "--s3-endpoint",
        &s3.endpoint,
        "--work-dir",
        work.to_str().unwrap(),
    ]));
    let run = |args: &[String], kill: Option<&str>| {
        let mut cmd = editshard(crate::BIN);
        cmd.arg("convert")
            .args(args)
            .args(["--log-interval", "0", "--backoff", "0.02"])
            .env("AWS_ACCESS_KEY_ID", s3.access_key)
            .env("AWS_SECRET_ACCESS_KEY", s3.secret_key)
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_ENDPOINT_URL");
        if let Some(k) = kill {
            cmd.env("EDITSHARD_TEST_KILL_AT", k);
        }
        cmd.output().unwrap()
    };
    let o = run(&args, Some("saved:2"));
    assert!(killed(&o), "{}", text(&o));
    assert!(
        !s3.object_path("data", "converted/run1/manifest.json")
            .exists()
    );
    // The killed run's lock stays in S3: a re-run is refused, naming it and the way out.
    let o = run(&args, None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "s3://data/converted/run1 is locked by another run writing to it: convert --out"
        ) && err.contains("--break-lock")
            && err.contains("s3://data/converted/run1/.editshard-lock"),
        "{err}"
    );
    args.push("--break-lock".into());
    let o = run(&args, None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !s3.object_path("data", "converted/run1/.editshard-lock")
            .exists(),
        "lock not released"
    );
    let files = tree(&local);
    assert!(
        files.len() >= 4,
        "expected several shards: {:?}",
        files.keys()
    );
    for (rel, bytes) in &files {
        let obj =
            fs::read(s3.object_path("data", &format!("converted/run1/{rel}"))).unwrap_or_default();
        assert!(&obj == bytes, "{rel} differs in S3");
    }
    assert!(!work.exists(), "work directory left behind");
    let listed: BTreeSet<_> = manifest(&local)
        .shards
        .iter()
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(listed.len(), files.len() - 2);
}

/// Downloads stream to the cache and records take their bytes one at a time, so memory does
/// not grow with the images in flight (README, Guarantees: the memory bound of `convert`).
/// Five rows with 40 MiB images each, all fetched concurrently: the old in-memory download
/// held all 200 MiB at once; the bound is the writer's open group (one record here) plus the
/// record being read, about 80 MiB. Also an oversized response is cut off without being held.
#[test]
fn memory_stays_bounded_whatever_the_images_in_flight() {
    const BIG: usize = 40 << 20;
    let s = served(ReleaseSpec {
        sft: 5,
        preference: 0,
        multi_turn: 0,
        seed: 12,
        image_px: 16,
        faults: false,
    });
    for r in &s.rel.rows {
        let path = s.rel.path(r.output_image.as_ref().unwrap());
        let mut png = fs::read(&path).unwrap();
        // A valid header, then bulk: the header check accepts it; only its size matters here.
        png.resize(BIG, 0);
        fs::write(&path, png).unwrap();
    }
    // One more image, larger than --max-image-size: refused as it streams.
    let huge = s.rel.path(s.rel.rows[0].output_image.as_ref().unwrap());
    let mut big = fs::read(&huge).unwrap();
    big.resize(BIG * 3, 0);
    fs::write(s.rel.root.join("huge.png"), &big).unwrap();
    let jsonl = s.rel.jsonl(Subset::Sft);
    let mut lines = fs::read_to_string(&jsonl).unwrap();
    let mut extra: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    extra.insert("output_image".into(), "huge.png".into());
    lines.push_str(&serde_json::to_string(&extra).unwrap());
    lines.push('\n');
    fs::write(&jsonl, lines).unwrap();

    let out = s.out("big");
    let mut cmd = editshard(crate::BIN);
    cmd.arg("convert")
        .args(s.args(out.to_str().unwrap()))
        .args([
            "--subsets",
            "sft",
            "--allow-failures",
            "--max-image-size",
            "100MiB",
        ]);
    let (o, peak) = editshard_tools::cli::run_with_peak_rss(cmd, &s.out("stdout.txt"));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(records(&out).len(), 5);
    assert_eq!(
        reasons(&out).get("too-large"),
        Some(&1),
        "{:?}",
        reasons(&out)
    );
    let images = 5 * BIG as u64;
    eprintln!("convert peak RSS: {} MiB", peak >> 20);
    assert!(
        peak < 150 << 20,
        "peak RSS {} MiB while {} MiB of images were in flight",
        peak >> 20,
        images >> 20
    );
}

/// Two converts into one `--out`: the second is refused while the first runs, naming it, and
/// DEST is untouched; the first, killed with SIGKILL, needs nothing more than its re-run (the
/// OS released its lock), which completes.
#[test]
fn a_second_convert_into_a_locked_out_is_refused() {
    let s = small_release();
    let out = s.out("out");
    let mut args = s.args(out.to_str().unwrap());
    args.extend(strings(&[
        "--shard-size",
        "12kB",
        "--allow-failures",
        "--jobs",
        "1",
    ]));
    // Every image stalls: with one download at a time, the first run stops at its first.
    s.server
        .always("/", Behavior::Stall(Duration::from_secs(120)));
    s.server.always("/jsonl/", Behavior::Serve);
    let mut first = editshard(crate::BIN)
        .arg("convert")
        .args(&args)
        .args(["--idle-timeout", "300", "--log-interval", "0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // Stalled in its first image's body: the request made and the download's temporary file
    // in the cache, after which the first run writes nothing until it is killed.
    let stalled = || {
        s.gets().iter().any(|p| !p.starts_with("/jsonl/"))
            && tree(&out)
                .keys()
                .any(|p| p.contains("/cache/") && p.ends_with(".partial"))
    };
    while !stalled() {
        assert!(
            std::time::Instant::now() < deadline,
            "never reached an image"
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "the convert ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = tree(&out);

    let o = convert(crate::BIN, &args);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("is locked by another run writing to it: convert --out")
            && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );
    assert_eq!(tree(&out), before, "the refused convert wrote to DEST");

    first.kill().unwrap();
    first.wait().unwrap();
    s.server.clear_rules();
    let o = convert(crate::BIN, &args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!out.join(".editshard-lock").exists(), "lock not released");
    assert!(out.join("manifest.json").exists());
}

/// `convert --out s3://` through a fault-injecting proxy in front of s3s-fs: 5xx bursts,
/// 503 SlowDown and lost responses on the lock, the shards, `failures.jsonl` and the
/// manifest are retried, and the result is byte for byte the local conversion's. When the
/// store keeps failing, the run fails naming the object, and a re-run completes.
#[test]
fn s3_destination_through_faults_holds_the_same_bytes() {
    use editshard_tools::fault_proxy::{Fault, FaultProxy};
    let s = small_release();
    let s3 = S3Server::start();
    s3.create_bucket("data");
    let proxy = FaultProxy::start(s3.port);
    let common = ["--shard-size", "12kB", "--allow-failures"];
    let local = s.out("local");
    let mut args = s.args(local.to_str().unwrap());
    args.extend(strings(&common));
    assert!(convert(crate::BIN, &args).status.success());
    let files = tree(&local);
    assert!(files.len() >= 4, "want several shards: {:?}", files.keys());

    let run = |prefix: &str| {
        let mut args = s.args(&format!("s3://data/{prefix}"));
        args.extend(strings(&common));
        let work = s.out(&format!("work-{prefix}"));
        editshard(crate::BIN)
            .arg("convert")
            .args(&args)
            .args(["--s3-endpoint", &proxy.endpoint()])
            .args(["--work-dir", work.to_str().unwrap()])
            .args(["--log-interval", "0", "--backoff", "0.02"])
            .env("AWS_ACCESS_KEY_ID", s3.access_key)
            .env("AWS_SECRET_ACCESS_KEY", s3.secret_key)
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .unwrap()
    };
    let stored = |prefix: &str| -> BTreeMap<String, Vec<u8>> {
        tree(&s3.object_path("data", prefix))
            .into_iter()
            .filter(|(k, _)| !k.starts_with('.'))
            .collect()
    };

    proxy.on("GET", "/run1/manifest.json", [Fault::slow_down()]);
    proxy.on(
        "PUT",
        "/run1/.editshard-lock",
        [Fault::internal_error(), Fault::DropResponse],
    );
    proxy.on(
        "PUT",
        "/run1/shard-00000.esd",
        [Fault::slow_down(), Fault::slow_down()],
    );
    proxy.on(
        "PUT",
        "/run1/shard-00001.esd",
        [Fault::DropResponse, Fault::unavailable()],
    );
    proxy.on("PUT", "/run1/failures.jsonl", [Fault::internal_error()]);
    proxy.on(
        "PUT",
        "/run1/manifest.json",
        [Fault::DropResponse, Fault::slow_down()],
    );
    // The lock's release (object_store deletes with a bulk-delete POST).
    proxy.on("POST", "/data?delete", [Fault::unavailable()]);
    let o = run("run1");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(proxy.pending(), 0, "faults not reached: {:?}", proxy.seen());
    assert_eq!(stored("run1"), files);

    // The store keeps throttling one shard's upload: the run fails naming it; the re-run
    // (once the store recovers) completes to the same bytes.
    proxy.always("PUT", "/run2/shard-00001.esd", Fault::slow_down());
    let o = run("run2");
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("s3://data/run2/shard-00001.esd") && err.contains("503"),
        "{err}"
    );
    assert!(!s3.object_path("data", "run2/manifest.json").exists());
    proxy.clear_rules();
    let o = run("run2");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(stored("run2"), files);
}
