//! The app under load and from other origins: the statistics cache stays bounded whatever
//! seeds are asked for, and requests for other host names (DNS rebinding) are refused.

use std::time::Duration;

use editshard_view::app::SAMPLE_CACHE_ENTRIES;

use crate::support::{dataset_dir, open_local, start};

fn client() -> reqwest::Client {
    editshard::net::ensure_tls_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Every distinct seed makes a sample; thousands of them (any URL can ask) keep at most
/// [`SAMPLE_CACHE_ENTRIES`], and a seed asked for again is served from the cache or anew,
/// the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statistics_cache_stays_bounded_across_thousands_of_seeds() {
    let dir = dataset_dir();
    let app = start(open_local(dir.path()).await).await;
    let client = client();
    let page = |seed: u64| {
        let url = format!("{}/stats?sample=2&seed={seed}", app.url);
        let client = client.clone();
        async move {
            let r = client.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200, "{url}");
            r.text().await.unwrap()
        }
    };
    let first = page(0).await;
    for seed in 1..3000u64 {
        page(seed).await;
        assert!(
            app.app.samples_cached() <= SAMPLE_CACHE_ENTRIES,
            "after {seed} seeds: {} samples held",
            app.app.samples_cached()
        );
    }
    assert_eq!(app.app.samples_cached(), SAMPLE_CACHE_ENTRIES);
    assert_eq!(
        page(0).await,
        first,
        "an evicted seed is sampled again, the same"
    );
}

/// One raw HTTP/1.1 request (exactly these bytes: any `Host`, an absolute URI) and the reply's
/// status and body.
async fn raw(url: &str, request: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&reply).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    (status, text)
}

fn get_for(path: &str, host: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

/// A page of another site that rebinds its name to 127.0.0.1 sends its own name as `Host`:
/// refused with 403 and a message, on every route (the record JSON included); the names the
/// server was started under are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_servers_own_host_names_are_served() {
    let dir = dataset_dir();
    let app = start(open_local(dir.path()).await).await;
    let port = app.url.rsplit(':').next().unwrap().to_string();
    for path in [
        "/record/3/json",
        "/",
        "/image/3/0",
        "/thumb/3/0",
        "/stats",
        "/nowhere",
    ] {
        for host in [
            "evil.example".to_string(),
            format!("evil.example:{port}"),
            format!("127.0.0.1.nip.io:{port}"),
            format!("localhost.evil.example:{port}"),
            "10.1.2.3".to_string(),
        ] {
            let (status, text) = raw(&app.url, &get_for(path, &host)).await;
            assert_eq!(status, 403, "{path} for {host}: {text}");
            assert!(
                text.contains("--allow-host") && !text.contains("\"id\""),
                "{path} for {host}: {text}"
            );
        }
    }
    // An absolute URI names the host too.
    let (status, _) = raw(
        &app.url,
        "GET http://evil.example/record/3/json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 403);
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "LOCALHOST".to_string(),
        format!("[::1]:{port}"),
    ] {
        let (status, text) = raw(&app.url, &get_for("/record/3/json", &host)).await;
        assert_eq!(status, 200, "{host}: {text}");
        assert!(text.contains("\"id\""), "{host}: {text}");
    }
}

/// Names added with `allow_hosts` (`--allow-host`) are served as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_host_names_are_served() {
    let dir = dataset_dir();
    let options = editshard_view::ViewOptions {
        allow_hosts: vec!["Dataset-Box.lan".to_string()],
    };
    let viewer = editshard_view::Viewer::bind_with(
        open_local(dir.path()).await,
        "test-dataset",
        "127.0.0.1:0".parse().unwrap(),
        &options,
    )
    .await
    .unwrap();
    let url = format!("http://{}", viewer.local_addr());
    let task = tokio::spawn(async move { viewer.serve().await.unwrap() });
    let (status, _) = raw(&url, &get_for("/record/3/json", "dataset-box.lan:8080")).await;
    assert_eq!(status, 200);
    let (status, _) = raw(&url, &get_for("/record/3/json", "other-box.lan")).await;
    assert_eq!(status, 403);
    task.abort();
}
