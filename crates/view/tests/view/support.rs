//! Running the app on a loopback port and talking to it over real HTTP.

use std::sync::Arc;
use std::time::Duration;

use editshard::read::Dataset;
use editshard::storage::Location;
use editshard_view::{App, Viewer};

/// The app serving `ds` on 127.0.0.1 (a port the OS picked), stopped on drop.
pub struct Running {
    pub url: String,
    pub app: Arc<App>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(ds: Dataset) -> Running {
    let viewer = Viewer::bind(ds, "test-dataset", "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = format!("http://{}", viewer.local_addr());
    let app = viewer.app();
    let task = tokio::spawn(async move {
        viewer.serve().await.unwrap();
    });
    Running { url, app, task }
}

/// The fixture (40 records, 7 shards) written to a fresh directory.
pub fn dataset_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    editshard_tools::view_fixture::write(dir.path(), 40);
    dir
}

pub async fn open_local(dir: &std::path::Path) -> Dataset {
    Dataset::open(Location::local(dir)).await.unwrap()
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: bytes::Bytes,
    pub url: String,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }
}

pub async fn get(url: &str) -> Reply {
    editshard::net::ensure_tls_provider();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let res = client.get(url).send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let url = res.url().to_string();
    let body = res.bytes().await.unwrap();
    Reply {
        status,
        headers,
        body,
        url,
    }
}

/// The `data-index` of each card of a gallery page, in order.
pub fn card_indices(html: &str) -> Vec<u64> {
    html.split("<article class=\"card")
        .skip(1)
        .map(|c| {
            let at = c.find("data-index=\"").unwrap() + "data-index=\"".len();
            c[at..].split('"').next().unwrap().parse().unwrap()
        })
        .collect()
}

/// Every `src="..."` of an `<img>` in `html`.
pub fn img_srcs(html: &str) -> Vec<String> {
    html.split("<img src=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

/// Every endpoint of the app answers for the fixture (40 records): pages, JSON, images,
/// thumbnails, statistics, the stylesheet.
pub async fn every_endpoint_answers(base: &str) {
    let all = editshard_tools::view_fixture::records(40);
    let find = format!("/find?id={}", editshard_view::url_encode(&all[9].id));
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        (
            "/?kind=preference&min=0.5&seed=1",
            "text/html; charset=utf-8",
        ),
        ("/record/9", "text/html; charset=utf-8"),
        (find.as_str(), "text/html; charset=utf-8"),
        ("/record/9/json", "application/json"),
        ("/image/9/1", "image/png"),
        ("/image/9/0?download=1", "image/jpeg"),
        ("/thumb/9/3", "image/jpeg"),
        ("/stats?sample=20&seed=2", "text/html; charset=utf-8"),
        ("/static/style.css", "text/css; charset=utf-8"),
    ] {
        let r = get(&format!("{base}{path}")).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.header("content-type"), content_type, "{path}");
    }
    let img = get(&format!("{base}/image/9/1")).await;
    assert_eq!(
        Some(&img.body),
        all[9].images().nth(1).unwrap().data.as_ref()
    );
}
