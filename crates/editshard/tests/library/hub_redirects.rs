//! Reading datasets where they are hosted: the Hugging Face Hub (`hf://`), whose `resolve/`
//! URLs redirect to a CDN, and any origin that redirects elsewhere. Real servers on
//! 127.0.0.1: two nginx (a hub that wants a bearer token and a CDN that refuses one), the
//! fault server, and s3s-fs behind the fault proxy.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use editshard::Record;
use editshard::manifest::MANIFEST_NAME;
use editshard::read::{Dataset, StreamOptions};
use editshard::storage::{Location, StorageOptions};
use editshard_tools::fault_proxy::{Fault, FaultProxy};
use editshard_tools::fault_server::{Behavior, FaultServer};
use editshard_tools::fixtures::{mixed, write};
use editshard_tools::hub_cdn::{HubCdn, TOKEN};
use editshard_tools::servers::{Nginx, S3Server};
use futures_util::StreamExt;

/// A hang guard, not a speed assertion.
const HANG: Duration = Duration::from_secs(60);

fn options() -> StorageOptions {
    StorageOptions {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        retries: 2,
        ..StorageOptions::default()
    }
}

fn env_of(vars: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    }
}

/// Every record, streamed in order and then fetched one by one (ranged reads).
async fn read_all(loc: Location) -> editshard::Result<(Vec<Record>, Vec<Record>)> {
    let read = async {
        let ds = Dataset::open(loc).await?;
        let mut streamed = Vec::new();
        let mut stream = ds.stream(StreamOptions::default());
        while let Some(r) = stream.next().await {
            streamed.push(r?);
        }
        let mut random = Vec::new();
        for i in 0..ds.len() {
            random.push(ds.get(i).await?);
        }
        Ok((streamed, random))
    };
    tokio::time::timeout(HANG, read)
        .await
        .expect("reading hung")
}

/// Requests per path (query left off).
fn per_path<'a>(paths: impl Iterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for p in paths {
        *out.entry(p.split('?').next().unwrap_or(p).to_string())
            .or_default() += 1;
    }
    out
}

fn dataset(dir: &Path) -> Vec<Record> {
    let records = mixed(12, Some(30_000));
    write(dir, &records, 200 << 10, 4);
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_dataset_is_read_through_its_cdn_and_no_credential_reaches_the_cdn() {
    let dir = tempfile::tempdir().unwrap();
    let records = dataset(dir.path());
    let servers = HubCdn::start(dir.path());
    let no_home = tempfile::tempdir().unwrap();
    let env = env_of(servers.env(no_home.path()));
    let loc = Location::parse_with_env(&servers.location(), &options(), &env).unwrap();
    assert_eq!(loc.display(), "hf://datasets/editshard-test/pico");

    let (streamed, random) = read_all(loc.clone()).await.unwrap();
    assert_eq!(streamed, records);
    assert_eq!(random, records);

    let (hub, cdn) = servers.settled_logs();
    assert!(!hub.is_empty() && !cdn.is_empty());
    for line in &hub {
        assert_eq!(
            line.authorization.as_deref(),
            Some(&*format!("Bearer {TOKEN}"))
        );
        assert_eq!(line.status, 302, "{line:?}");
    }
    for line in &cdn {
        assert_eq!(
            line.authorization, None,
            "a credential reached the CDN: {line:?}"
        );
        assert!(matches!(line.status, 200 | 206), "{line:?}");
        assert!(line.path.starts_with("/blobs/") && line.path.contains("X-Amz-Signature="));
    }
    assert!(
        cdn.iter().filter(|l| l.range.is_some()).count() >= 3,
        "records are read with ranged requests: {cdn:?}"
    );
    // Each object's redirect is remembered: the hub is asked far less often than the CDN.
    let hub_gets = per_path(hub.iter().map(|l| l.path.as_str()));
    let cdn_gets = per_path(cdn.iter().map(|l| l.path.as_str()));
    let shard = "/blobs/shard-00000.esd";
    assert!(cdn_gets[shard] >= 3, "{cdn_gets:?}");
    let hub_shard = "/datasets/editshard-test/pico/resolve/main/shard-00000.esd";
    assert!(
        hub_gets[hub_shard] < cdn_gets[shard],
        "{hub_gets:?} {cdn_gets:?}"
    );

    // A second reader on the same location: every read goes straight to the CDN.
    servers.hub.clear_log();
    servers.cdn.clear_log();
    let ds = Dataset::open(loc.clone()).await.unwrap();
    for i in (0..ds.len()).rev() {
        assert_eq!(ds.get(i).await.unwrap(), records[i as usize]);
    }
    let (hub, cdn) = servers.settled_logs();
    assert_eq!(hub.len(), 0, "resolved again: {hub:?}");
    assert!(cdn.len() > records.len() / 2, "{cdn:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_option_is_sent_and_without_one_the_hub_refuses_saying_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let records = dataset(dir.path());
    let servers = HubCdn::start(dir.path());
    let no_home = tempfile::tempdir().unwrap();
    let base_env = vec![
        ("HF_ENDPOINT", servers.endpoint()),
        ("HF_HOME", no_home.path().display().to_string()),
    ];

    // No token anywhere: the hub answers 401 and the error says to set HF_TOKEN.
    let loc = Location::parse_with_env(&servers.location(), &options(), env_of(base_env.clone()))
        .unwrap();
    let err = Dataset::open(loc)
        .await
        .err()
        .expect("the hub wants a token");
    assert_eq!(err.http_status(), Some(401), "{err:#}");
    assert!(
        err.to_string()
            .contains("hf://datasets/editshard-test/pico/manifest.json"),
        "{err}"
    );
    assert!(err.hint().contains("HF_TOKEN"), "{}", err.hint());
    assert_eq!(servers.cdn.request_count(), 0);

    // The option, with no HF_TOKEN in the environment.
    let opts = StorageOptions {
        hf_token: Some(TOKEN.to_string()),
        ..options()
    };
    let loc =
        Location::parse_with_env(&servers.location(), &opts, env_of(base_env.clone())).unwrap();
    let (streamed, _) = read_all(loc).await.unwrap();
    assert_eq!(streamed, records);

    // The token file `hf auth login` writes, under HF_HOME.
    std::fs::write(no_home.path().join("token"), format!("{TOKEN}\n")).unwrap();
    let loc = Location::parse_with_env(&servers.location(), &options(), env_of(base_env)).unwrap();
    assert_eq!(
        Dataset::open(loc).await.unwrap().len(),
        records.len() as u64
    );
}

/// The fault server as a "hub" redirecting each file to a second fault server, the "CDN".
struct Redirected {
    _dir: tempfile::TempDir,
    records: Vec<Record>,
    hub: FaultServer,
    cdn: FaultServer,
}

fn redirected() -> Redirected {
    let dir = tempfile::tempdir().unwrap();
    let records = dataset(dir.path());
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let hub = FaultServer::start(&empty);
    let cdn = FaultServer::start(dir.path());
    let files = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".esd") || n == MANIFEST_NAME);
    for name in files {
        let to = format!("{}/{name}?sig=x", cdn.url());
        hub.always(
            &format!("/{name}"),
            Behavior::Status(302, vec![("Location".into(), to)]),
        );
    }
    Redirected {
        _dir: dir,
        records,
        hub,
        cdn,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_target_is_resolved_again_from_the_url_the_user_named() {
    let s = redirected();
    let shard = "/shard-00000.esd";
    // The second request for the shard at the CDN finds its signed URL expired.
    s.cdn
        .on(shard, [Behavior::Serve, Behavior::Status(403, vec![])]);
    let loc = Location::parse(&s.hub.url(), &options()).unwrap();
    let (streamed, random) = read_all(loc).await.unwrap();
    assert_eq!(streamed, s.records);
    assert_eq!(random, s.records);
    let at_hub = s.hub.requests().iter().filter(|r| r.path == shard).count();
    assert_eq!(at_hub, 2, "resolved once, then once more after the 403");

    // A target that keeps refusing is an error after one more resolution per read, not a
    // loop.
    let s = redirected();
    s.cdn.always(shard, Behavior::Status(403, vec![]));
    let loc = Location::parse(&s.hub.url(), &options()).unwrap();
    let err = read_all(loc).await.expect_err("the CDN refuses");
    assert_eq!(err.http_status(), Some(403), "{err:#}");
    let at_hub = s.hub.requests().iter().filter(|r| r.path == shard).count();
    assert!((1..=4).contains(&at_hub), "{at_hub} resolutions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_redirects_are_followed_and_a_sixth_is_refused_naming_it() {
    let s = redirected();
    let hop = |to: String| Behavior::Status(302, vec![("Location".into(), to)]);
    // manifest.json -> /hop-1 -> ... -> /hop-4 -> the CDN: 5 redirects.
    s.hub.always("/manifest.json", hop("/hop-1".into()));
    for i in 1..4 {
        s.hub
            .always(&format!("/hop-{i}"), hop(format!("/hop-{}", i + 1)));
    }
    let cdn_manifest = format!("{}/manifest.json", s.cdn.url());
    s.hub.always("/hop-4", hop(cdn_manifest.clone()));
    let loc = Location::parse(&s.hub.url(), &options()).unwrap();
    let ds = Dataset::open(loc).await.expect("5 redirects are followed");
    assert_eq!(ds.len(), s.records.len() as u64);

    // One more hop: refused, naming where from and where to, and what to do.
    s.hub.always("/hop-4", hop("/hop-5".into()));
    s.hub.always("/hop-5", hop(cdn_manifest.clone()));
    s.cdn.clear_requests();
    let loc = Location::parse(&s.hub.url(), &options()).unwrap();
    let err = Dataset::open(loc).await.err().expect("a sixth redirect");
    let text = err.to_string();
    let from = format!("{}/hop-5", s.hub.url());
    assert!(text.contains("refused the redirect"), "{text}");
    assert!(
        text.contains(&format!("from {from} to {cdn_manifest}")),
        "{text}"
    );
    assert!(text.contains("more than 5 redirects"), "{text}");
    assert!(err.hint().contains("curl"), "{}", err.hint());
    assert_eq!(s.cdn.request_count(), 0, "the sixth target was contacted");
    // Not retried: a refusal is not a transient failure.
    let asks = s
        .hub
        .requests()
        .iter()
        .filter(|r| r.path == "/hop-5")
        .count();
    assert_eq!(asks, 1, "a refused redirect was retried");
}

/// Shards written to s3s-fs through the fault proxy, which then redirects every GET of a
/// shard to nginx serving the same files (as S3 in front of a CDN would).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_signatures_never_reach_the_origin_a_redirect_names() {
    let s3 = S3Server::start();
    s3.create_bucket("bucket");
    let proxy = FaultProxy::start(s3.port);
    let opts = StorageOptions {
        s3_endpoint: Some(proxy.endpoint()),
        ..options()
    };
    let env = env_of(vec![
        ("AWS_ACCESS_KEY_ID", s3.access_key.to_string()),
        ("AWS_SECRET_ACCESS_KEY", s3.secret_key.to_string()),
    ]);
    let loc = Location::parse_with_env("s3://bucket/ds", &opts, env).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let records = dataset(dir.path());
    let manifest: editshard::manifest::Manifest =
        serde_json::from_slice(&std::fs::read(dir.path().join(MANIFEST_NAME)).unwrap()).unwrap();
    for shard in &manifest.shards {
        loc.put_file(&shard.path, &dir.path().join(&shard.path))
            .await
            .unwrap();
    }
    loc.put_file(MANIFEST_NAME, &dir.path().join(MANIFEST_NAME))
        .await
        .unwrap();

    // The CDN serves the bucket's files under the same paths.
    let cdn_root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(cdn_root.path().join("bucket")).unwrap();
    std::os::unix::fs::symlink(dir.path(), cdn_root.path().join("bucket/ds")).unwrap();
    let cdn = Nginx::start(cdn_root.path());
    proxy.always("GET", "/shard-", Fault::Redirect(307, cdn.url()));
    proxy.always("HEAD", "/shard-", Fault::Redirect(307, cdn.url()));

    let (streamed, random) = read_all(loc.clone()).await.unwrap();
    assert_eq!(streamed, records);
    assert_eq!(random, records);
    let redirected = proxy
        .seen()
        .iter()
        .filter(|s| matches!(s.fault, Some(Fault::Redirect(..))))
        .count();
    assert!(redirected > 0, "the redirect was not exercised");
    cdn.wait_for_requests(1);
    let log = cdn.access_log();
    assert!(!log.is_empty());
    for line in &log {
        assert!(matches!(line.status, 200 | 206), "{line:?}");
        assert_eq!(
            line.authorization, None,
            "a signature reached the CDN: {line:?}"
        );
        assert_eq!(line.amz_date, None, "{line:?}");
        assert_eq!(line.amz_security_token, None, "{line:?}");
    }

    // A write is never sent to another origin.
    proxy.always("PUT", "/other", Fault::Redirect(307, cdn.url()));
    cdn.clear_log();
    let err = loc
        .put("other", bytes::Bytes::from_static(b"data"))
        .await
        .expect_err("a PUT redirected elsewhere");
    let text = err.to_string();
    assert!(
        text.contains("never redirected to another origin"),
        "{text}"
    );
    assert!(
        err.hint().contains("writes only to the origin"),
        "{}",
        err.hint()
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(cdn.request_count(), 0, "the PUT reached the other origin");
}

/// Set in the child process that runs [`a_redirect_from_https_to_plain_http_is_refused`].
const TLS_CHILD: &str = "EDITSHARD_TEST_TLS_CHILD";

/// The hub over https (the test CA of `tools/tls/`) redirects to the CDN over plain http: the
/// reader refuses, naming both URLs, and the CDN is never asked. The client trusts the test CA
/// through `SSL_CERT_FILE`, which is read from the process environment: the test runs itself
/// again in a child process of this binary with it set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_from_https_to_plain_http_is_refused() {
    const NAME: &str = "hub_redirects::a_redirect_from_https_to_plain_http_is_refused";
    if std::env::var_os(TLS_CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(TLS_CHILD, "1")
            .env("SSL_CERT_FILE", editshard_tools::servers::tls_ca_path())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "the child ran no test: {text}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path());
    let servers = HubCdn::start_https_hub(dir.path());
    assert!(servers.endpoint().starts_with("https://"));
    let no_home = tempfile::tempdir().unwrap();
    let loc = Location::parse_with_env(
        &servers.location(),
        &options(),
        env_of(servers.env(no_home.path())),
    )
    .unwrap();
    let err = Dataset::open(loc).await.err().expect("https to http");
    let text = err.to_string();
    let from = format!(
        "{}/datasets/editshard-test/pico/resolve/main/manifest.json",
        servers.endpoint()
    );
    let to = format!("{}/blobs/manifest.json?…", servers.cdn.url());
    assert!(
        text.contains(&format!("refused the redirect from {from} to {to}")),
        "{text}"
    );
    assert!(text.contains("from https to plain http"), "{text}");
    assert!(err.hint().contains("https"), "{}", err.hint());
    // The hub was reached over TLS with the token; the CDN never.
    let (hub, cdn) = servers.settled_logs();
    assert_eq!(hub.len(), 1, "{hub:?}");
    assert_eq!(hub[0].status, 302);
    assert_eq!(cdn.len(), 0, "{cdn:?}");
}
