//! Reading a dataset in S3 (s3s-fs) through a fault-injecting proxy: 500/503 bursts, 503
//! SlowDown with S3's XML body, connections cut mid-body and stalled responses are retried
//! (boundedly) to exactly the records written; once retries run out the error names the
//! object and the status, and the same read succeeds when the store recovers.

use std::time::Duration;

use editshard::advice::hint;
use editshard::manifest::MANIFEST_NAME;
use editshard::read::{Dataset, StreamOptions};
use editshard::storage::{Location, StorageOptions};
use editshard_tools::fault_proxy::{Fault, FaultProxy};
use editshard_tools::fixtures::{mixed, same, upload, write};
use editshard_tools::servers::S3Server;
use futures_util::StreamExt;

/// `url` on `server`, through `endpoint` (the server, or a proxy in front of it), with a
/// short timeout and `retries`.
fn location(server: &S3Server, endpoint: &str, url: &str, retries: usize) -> Location {
    let opts = StorageOptions {
        s3_endpoint: Some(endpoint.to_string()),
        timeout: Duration::from_secs(1),
        retries,
        ..StorageOptions::default()
    };
    server.location(url, opts)
}

/// s3s-fs with a dataset under `s3://faults/ds`, and a proxy in front of it.
async fn setup() -> (
    S3Server,
    FaultProxy,
    Vec<editshard::Record>,
    editshard::manifest::Manifest,
) {
    let server = S3Server::start();
    server.create_bucket("faults");
    let dir = tempfile::tempdir().unwrap();
    let records = mixed(24, Some(3_000));
    let manifest = write(dir.path(), &records, 16 << 10, 4);
    assert!(manifest.shards.len() >= 3, "want several shards");
    let direct = location(&server, &server.endpoint, "s3://faults/ds", 0);
    upload(&direct, dir.path(), &manifest).await;
    let proxy = FaultProxy::start(server.port);
    (server, proxy, records, manifest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_through_s3_faults_return_exactly_the_records() {
    let (server, proxy, records, manifest) = setup().await;
    let (s0, s1) = (&manifest.shards[0].path, &manifest.shards[1].path);
    proxy.on(
        "GET",
        MANIFEST_NAME,
        [Fault::slow_down(), Fault::internal_error()],
    );
    proxy.on(
        "GET",
        s0,
        [
            Fault::unavailable(),
            Fault::ResetMidBody,
            Fault::StallBody(Duration::from_secs(30)),
        ],
    );
    proxy.on(
        "GET",
        s1,
        [Fault::slow_down(), Fault::slow_down(), Fault::ResetMidBody],
    );
    let loc = location(&server, &proxy.endpoint(), "s3://faults/ds", 5);

    // Streaming (whole-shard GETs) meets the faults planned so far.
    let ds = Dataset::open(loc).await.unwrap();
    let streamed: Vec<_> = ds
        .stream(StreamOptions::default())
        .map(|r| r.unwrap())
        .collect()
        .await;
    assert_eq!(streamed.len(), records.len());
    assert!(streamed.iter().zip(&records).all(|(a, b)| same(a, b)));
    assert_eq!(
        proxy.pending(),
        0,
        "planned faults not reached: {:?}",
        proxy.seen()
    );
    assert_eq!(proxy.faults_injected(), 8);

    // Random access (footer and record ranges) meets these.
    let s2 = &manifest.shards[2].path;
    proxy.on(
        "GET",
        s2,
        [
            Fault::internal_error(),
            Fault::ResetMidBody,
            Fault::StallBody(Duration::from_secs(30)),
            Fault::slow_down(),
        ],
    );
    for (i, want) in records.iter().enumerate() {
        let got = ds.get(i as u64).await.unwrap();
        assert!(same(&got, want), "record {i}");
    }
    assert_eq!(
        proxy.pending(),
        0,
        "planned faults not reached: {:?}",
        proxy.seen()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_name_the_object_and_a_later_read_succeeds() {
    let (server, proxy, records, manifest) = setup().await;
    let loc = location(&server, &proxy.endpoint(), "s3://faults/ds", 2);
    let ds = Dataset::open(loc).await.unwrap();
    let victim = &manifest.shards[1].path;
    proxy.always("GET", victim, Fault::slow_down());
    let index = (0..records.len() as u64)
        .find(|&i| ds.locate(i).unwrap().0 == 1)
        .unwrap();
    let e = ds.get(index).await.unwrap_err();
    let msg = format!("{e} ({})", hint(&e));
    assert!(
        msg.contains(&format!("s3://faults/ds/{victim}")) && msg.contains("503"),
        "{msg}"
    );
    assert!(msg.contains("retries were exhausted"), "{msg}");
    // Three attempts (the first and two retries), then it gave up.
    let tries = proxy
        .seen()
        .iter()
        .filter(|s| s.path.contains(victim.as_str()) && s.fault.is_some())
        .count();
    assert_eq!(tries, 3, "{:?}", proxy.seen());

    proxy.clear_rules();
    let got = ds.get(index).await.unwrap();
    assert!(same(&got, &records[index as usize]));
}
