//! The app under load and from other origins: image memory stays within its budget whatever
//! the number of requests, the statistics cache stays bounded whatever seeds are asked for,
//! and requests for other host names (DNS rebinding) are refused.

use std::io::BufRead;
use std::path::Path;
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
        ..Default::default()
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

/// The server of the memory test runs in a process of its own (this test binary, running
/// [`child_server`]), so that its peak RSS is its own.
const CHILD_DIR: &str = "EDITSHARD_VIEW_TEST_CHILD_DIR";
const CHILD_MEMORY: &str = "EDITSHARD_VIEW_TEST_CHILD_IMAGE_MEMORY";

/// Serves the dataset in `$EDITSHARD_VIEW_TEST_CHILD_DIR` with the image memory in
/// `$EDITSHARD_VIEW_TEST_CHILD_IMAGE_MEMORY`, printing `LISTENING <addr>`, until killed; does
/// nothing in an ordinary test run.
#[test]
fn child_server() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let memory: u64 = std::env::var(CHILD_MEMORY).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let options = editshard_view::ViewOptions {
            image_memory: memory,
            ..Default::default()
        };
        let viewer = editshard_view::Viewer::bind_with(
            open_local(Path::new(&dir)).await,
            "huge",
            "127.0.0.1:0".parse().unwrap(),
            &options,
        )
        .await
        .unwrap();
        println!("LISTENING {}", viewer.local_addr());
        viewer.serve().await.unwrap();
    });
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A field of `/proc/PID/status`, in bytes.
fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// Side of the huge images: 8000 x 8000 RGB, 192 MB decoded, about 1.2 MB stored.
const HUGE_SIDE: u32 = 8000;
/// Records holding two huge images each (a source and an edit).
const HUGE_RECORDS: u64 = 6;
/// Thumbnail requests sent at once.
const PARALLEL: usize = 200;

/// `HUGE_RECORDS` records of two huge images each, then one with small images.
fn huge_dataset(dir: &Path) {
    use editshard::record::{Image, Kind, Record, Turn};
    let huge =
        Image::from_bytes(editshard_tools::huge_images::black_png(HUGE_SIDE, HUGE_SIDE).into())
            .unwrap();
    let small = Image::from_bytes(editshard_tools::huge_images::black_png(64, 48).into()).unwrap();
    let mut w = editshard::write::DatasetWriter::create(dir).unwrap();
    for i in 0..HUGE_RECORDS {
        w.append(&Record::new(
            format!("sft/huge-{i}"),
            Kind::Sft,
            huge.clone(),
            vec![Turn::new(huge.clone())],
        ))
        .unwrap();
    }
    w.append(&Record::new(
        "sft/small",
        Kind::Sft,
        small.clone(),
        vec![Turn::new(small)],
    ))
    .unwrap();
    w.finish().unwrap();
}

/// Hundreds of parallel thumbnail requests for images 192 MB decoded (1.2 MB stored): the
/// server's peak RSS grows by at most its image memory (256 MiB here) and a little; every
/// request is answered, 200 or 503 with `Retry-After`; and the server still serves after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_thumbnails_of_huge_images_stay_within_the_image_memory() {
    const BUDGET: u64 = 256 << 20;
    let dir = tempfile::tempdir().unwrap();
    huge_dataset(dir.path());
    let mut child = Child(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["hardening::child_server", "--exact", "--nocapture"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_MEMORY, BUDGET.to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    // Its output is read to the end (a closed pipe would end the child at its next line).
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = std::io::BufReader::new(child.0.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("LISTENING ") {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the child server starts");
    let url = format!("http://{addr}");
    editshard::net::ensure_tls_provider();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    // Warm up (pages, footers), then measure from there.
    assert_eq!(
        client.get(format!("{url}/")).send().await.unwrap().status(),
        200
    );
    let before = proc_status(pid, "VmRSS:");

    let requests = (0..PARALLEL).map(|n| {
        let (client, url) = (client.clone(), url.clone());
        let (index, k) = (n as u64 % HUGE_RECORDS, n / HUGE_RECORDS as usize % 2);
        tokio::spawn(async move {
            let r = client
                .get(format!("{url}/thumb/{index}/{k}"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("thumbnail {index}/{k} got no answer: {e}"));
            let status = r.status().as_u16();
            let retry = r.headers().get("retry-after").is_some();
            let body = r.bytes().await.unwrap();
            (status, retry, body)
        })
    });
    let mut answered = std::collections::BTreeMap::new();
    let requests: Vec<_> = requests.collect();
    for r in requests {
        let (status, retry, body) = r.await.unwrap();
        match status {
            200 => {
                let t = image::load_from_memory(&body).unwrap();
                assert_eq!((t.width(), t.height()), (256, 256));
            }
            503 => assert!(retry, "a 503 says when to retry"),
            other => panic!("status {other}: {}", String::from_utf8_lossy(&body)),
        }
        *answered.entry(status).or_insert(0) += 1;
    }
    let peak = proc_status(pid, "VmHWM:");
    eprintln!(
        "{PARALLEL} requests: {answered:?}; RSS {} MB before, peak {} MB",
        before >> 20,
        peak >> 20
    );
    assert!(answered.get(&200).is_some_and(|&n| n > 0), "{answered:?}");
    assert!(
        peak <= before + BUDGET + (48 << 20),
        "peak RSS {} MB: more than {} MB before and the {} MB image memory",
        peak >> 20,
        before >> 20,
        BUDGET >> 20
    );
    // Still serving: pages, a small thumbnail, a huge one (made now or cached).
    assert_eq!(
        client.get(format!("{url}/")).send().await.unwrap().status(),
        200
    );
    let small = client
        .get(format!("{url}/thumb/{HUGE_RECORDS}/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 200);
    let huge = client.get(format!("{url}/thumb/0/0")).send().await.unwrap();
    assert_eq!(huge.status(), 200, "a huge thumbnail after the burst");
}

/// Image and thumbnail requests give back all the image memory they held once answered (a
/// response body holds its image's share until it is sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_requests_give_their_image_memory_back() {
    let dir = dataset_dir();
    let app = start(open_local(dir.path()).await).await;
    let client = client();
    for path in [
        "/image/9/1",
        "/thumb/9/1",
        "/image/9/0?download=1",
        "/thumb/9/3",
    ] {
        let r = client
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(!r.bytes().await.unwrap().is_empty());
    }
    let memory = &app.app.image_memory;
    assert!(memory.peak() > 0, "the requests held memory");
    for _ in 0..100 {
        if memory.held() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(memory.held(), 0);
}
