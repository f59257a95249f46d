//! Reading a dataset over HTTP while the server misbehaves (a real server on 127.0.0.1 that
//! injects faults): every operation either completes with every record intact or fails with an
//! error naming what failed, and none hangs.

use std::time::Duration;

use editshard::Record;
use editshard::read::{Dataset, StreamOptions};
use editshard::storage::{Location, StorageOptions};
use editshard_tools::fault_server::{Behavior, FaultServer};
use editshard_tools::fixtures::{mixed, write};
use futures_util::StreamExt;

/// A hang guard, not a speed assertion: every case finishes in a few seconds when correct.
const HANG: Duration = Duration::from_secs(60);

fn options() -> StorageOptions {
    StorageOptions {
        timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
        retries: 3,
        ..StorageOptions::default()
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    server: FaultServer,
    records: Vec<Record>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let records = mixed(12, Some(30_000));
    write(dir.path(), &records, 200 << 10, 4);
    let server = FaultServer::start(dir.path());
    Setup {
        _dir: dir,
        server,
        records,
    }
}

async fn read_all(url: &str) -> editshard::Result<(Vec<Record>, Vec<Record>)> {
    let ds = Dataset::open(Location::parse(url, &options())?).await?;
    let mut streamed = Vec::new();
    let mut stream = ds.stream(StreamOptions::default());
    while let Some(r) = stream.next().await {
        streamed.push(r?);
    }
    let mut random = Vec::new();
    for i in (0..ds.len()).rev() {
        random.push(ds.get(i).await?);
    }
    random.reverse();
    Ok((streamed, random))
}

async fn run(s: &Setup) -> editshard::Result<(Vec<Record>, Vec<Record>)> {
    tokio::time::timeout(HANG, read_all(&s.server.url()))
        .await
        .expect("reading hung")
}

fn assert_intact(s: &Setup, got: editshard::Result<(Vec<Record>, Vec<Record>)>, case: &str) {
    let (streamed, random) = got.unwrap_or_else(|e| panic!("{case}: {e}"));
    assert_eq!(streamed, s.records, "{case}: streamed records differ");
    assert_eq!(random, s.records, "{case}: random-access records differ");
}

/// Intact, or an error that names the shard and says what happened.
fn assert_intact_or_clear(
    s: &Setup,
    got: editshard::Result<(Vec<Record>, Vec<Record>)>,
    case: &str,
) {
    match got {
        Ok(_) => assert_intact(s, got, case),
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.contains("shard-") && text.len() > 40,
                "{case}: unclear error: {text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_server_errors_are_retried_and_nothing_is_lost() {
    let s = setup();
    let retry_after = || Behavior::Status(429, vec![("Retry-After".into(), "1".into())]);
    let unavailable = || Behavior::Status(503, vec![]);
    // Three failures in a row on the first shard request: within the three retries allowed.
    s.server
        .on("/shard-", [unavailable(), retry_after(), unavailable()]);
    s.server
        .on("/manifest.json", [unavailable(), retry_after()]);
    assert_intact(&s, run(&s).await, "5xx burst and 429 Retry-After");
    let manifest_gets = s
        .server
        .requests()
        .iter()
        .filter(|r| r.path == "/manifest.json")
        .count();
    assert_eq!(manifest_gets, 3, "two failures, then the manifest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_drip_completes_intact() {
    let s = setup();
    let drip = || Behavior::SlowDrip {
        bytes_per_tick: 16 << 10,
        tick: Duration::from_millis(20),
    };
    s.server.on("/shard-", [drip(), drip(), drip()]);
    assert_intact(&s, run(&s).await, "slow drip");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_bodies_are_retried_or_reported() {
    for (case, behavior) in [
        ("reset mid-body", Behavior::ResetMidBody),
        ("short body", Behavior::ShortBody),
    ] {
        let s = setup();
        s.server.on("/shard-", [behavior.clone(), behavior.clone()]);
        assert_intact_or_clear(&s, run(&s).await, case);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_server_times_out_with_a_clear_error() {
    let s = setup();
    s.server
        .always("/shard-", Behavior::Stall(Duration::from_secs(300)));
    let err = run(&s)
        .await
        .expect_err("a server that never sends cannot give records");
    let text = err.to_string();
    assert!(
        text.contains("shard-00000.esd"),
        "the error names the shard: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_keeps_failing_is_an_error_not_a_loop() {
    let s = setup();
    s.server.always("/shard-", Behavior::Status(500, vec![]));
    let err = run(&s).await.expect_err("every request fails");
    let text = err.to_string();
    assert!(text.contains("shard-") && text.contains("500"), "{text}");
    // Bounded retries: the first request and `retries` more, for the one shard it tried.
    let shard_gets = s
        .server
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/shard-"))
        .count();
    assert!(
        shard_gets <= 1 + options().retries * 2,
        "{shard_gets} requests"
    );
}

/// Redirects are followed within the origin and to other origins (README, Guarantees): a 302
/// to the same server works, and so does a 302 to another server holding the files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_within_and_across_origins() {
    let s = setup();
    let redirect = |to: String| Behavior::Status(302, vec![("Location".into(), to)]);
    // Same origin: every shard request is sent to a copy under /moved/.
    let moved = s._dir.path().join("moved");
    std::fs::create_dir_all(&moved).unwrap();
    for e in std::fs::read_dir(s._dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "esd") {
            std::fs::copy(&p, moved.join(p.file_name().unwrap())).unwrap();
        }
    }
    for shard in ["shard-00000.esd", "shard-00001.esd"] {
        s.server
            .always(&format!("/{shard}"), redirect(format!("/moved/{shard}")));
    }
    assert_intact(&s, run(&s).await, "same-origin redirect");
    assert!(
        s.server
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/moved/")),
        "the redirect was not exercised"
    );

    // Another origin: a second server holding the same dataset answers instead.
    let other = setup();
    s.server.clear_rules();
    s.server.always(
        "/manifest.json",
        redirect(format!("{}/manifest.json", other.server.url())),
    );
    assert_intact(&s, run(&s).await, "cross-origin redirect");
    let asked = other.server.requests();
    assert!(
        asked.iter().any(|r| r.path == "/manifest.json"),
        "the other origin was not asked: {asked:?}"
    );
}

/// Every shard's body sent in small writes of ever-changing sizes (1 to 64 bytes, then 8 KiB),
/// so the stream's chunk boundaries fall all over its frames: each frame is put together from
/// pieces, its CRC checked, and every record arrives intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_in_small_pieces_streams_intact() {
    let s = setup();
    let sizes: Vec<usize> = (1..=64).chain([8191]).collect();
    s.server.always("/shard-", Behavior::Pieces(sizes));
    assert_intact(&s, run(&s).await, "small pieces");
    assert!(
        s.server
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/shard-") && r.range.is_none()),
        "no shard was streamed whole"
    );
}
