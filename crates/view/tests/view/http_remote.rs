//! The app over a dataset behind nginx (request counts from its access log) and in s3s-fs.

use editshard::manifest::MANIFEST_NAME;
use editshard::read::Dataset;
use editshard::storage::{Location, StorageOptions};
use editshard_tools::servers::{Nginx, S3Server};
use editshard_tools::view_fixture::records;

use crate::support::{card_indices, every_endpoint_answers, get, img_srcs, start};

/// The cost of the gallery's first page (24 cards) of a remote dataset, from a server just
/// started (only `manifest.json` read):
/// - the page itself: one footer read per shard its records are in, plus at most one
///   metadata read per record shown (neighbours whose metadata lie within 4 KiB share one
///   ranged read); never an image byte;
/// - its thumbnails: one ranged read per image shown, and none when shown again (cached);
/// - the page shown again: its metadata reads only (footers are cached).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_gallery_page_over_http_costs_a_bounded_number_of_requests() {
    let root = tempfile::tempdir().unwrap();
    let m = editshard_tools::view_fixture::write(&root.path().join("ds"), 40);
    let nginx = Nginx::start(root.path());
    let url = format!("{}/ds", nginx.url());
    let ds = Dataset::open(Location::parse(&url, &StorageOptions::default()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        nginx.wait_for_requests(1),
        1,
        "opening reads manifest.json only"
    );
    let shards_touched = {
        let mut s: Vec<usize> = (0..24).map(|i| ds.locate(i).unwrap().0).collect();
        s.dedup();
        s.len()
    };
    assert!(shards_touched >= 3 && m.shards.len() > shards_touched);
    let app = start(ds).await;
    nginx.clear_log();

    let html = get(&format!("{}/", app.url)).await.text();
    assert_eq!(card_indices(&html), (0..24).collect::<Vec<u64>>());
    let page_log = settled(&nginx);
    let footers = page_log.iter().filter(|l| is_footer(l, &m)).count();
    assert_eq!(
        footers, shards_touched,
        "one footer read per shard touched: {page_log:#?}"
    );
    let metadata = page_log.len() - footers;
    assert!(
        (1..=24).contains(&metadata),
        "{metadata} metadata reads: {page_log:#?}"
    );
    let image_bytes: u64 = page_log.iter().map(|l| l.bytes).sum();
    assert!(
        image_bytes < 64 << 10,
        "the page read {image_bytes} bytes: metadata only"
    );
    assert!(
        page_log
            .iter()
            .all(|l| l.method == "GET" && l.range.is_some() && l.status == 206)
    );
    // The bound the README states: at most (shards touched) + (records shown) requests.
    assert!(page_log.len() <= shards_touched + 24);

    nginx.clear_log();
    let srcs = img_srcs(&html);
    let images: usize = records(24).iter().map(|r| r.images().count()).sum();
    assert_eq!(srcs.len(), images);
    for src in &srcs {
        assert_eq!(get(&format!("{}{src}", app.url)).await.status, 200);
    }
    let thumbs_log = settled(&nginx);
    assert_eq!(thumbs_log.len(), images, "one ranged read per image shown");

    // Shown again: metadata reads only, no footer, no image.
    nginx.clear_log();
    let again = get(&format!("{}/", app.url)).await.text();
    for src in img_srcs(&again) {
        assert_eq!(get(&format!("{}{src}", app.url)).await.status, 200);
    }
    let again_log = settled(&nginx);
    assert_eq!(
        again_log.len(),
        metadata,
        "thumbnails and footers are cached: {again_log:#?}"
    );
    every_endpoint_answers(&app.url).await;
    println!(
        "first page over HTTP: {footers} footer + {metadata} metadata requests, then {images} thumbnails"
    );
}

/// The access log once nginx has written every line (it logs just after replying).
fn settled(nginx: &Nginx) -> Vec<editshard_tools::servers::LogLine> {
    let mut n = nginx.request_count();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = nginx.request_count();
        if now == n {
            return nginx.access_log();
        }
        n = now;
    }
}

fn is_footer(line: &editshard_tools::servers::LogLine, m: &editshard::manifest::Manifest) -> bool {
    m.shards.iter().any(|s| {
        line.path.ends_with(&s.path)
            && line.range.as_deref()
                == Some(
                    format!(
                        "bytes={}-{}",
                        s.footer_offset,
                        s.footer_offset + s.footer_length - 1
                    )
                    .as_str(),
                )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_works_over_s3() {
    let server = S3Server::start();
    server.create_bucket("datasets");
    let dir = tempfile::tempdir().unwrap();
    let manifest = editshard_tools::view_fixture::write(dir.path(), 40);
    let opts = StorageOptions {
        s3_endpoint: Some(server.endpoint.clone()),
        ..StorageOptions::default()
    };
    let (key, secret) = (server.access_key, server.secret_key);
    let loc = Location::parse_with_env("s3://datasets/view/v1", &opts, move |name| match name {
        "AWS_ACCESS_KEY_ID" => Some(key.to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some(secret.to_string()),
        _ => None,
    })
    .unwrap();
    for s in &manifest.shards {
        loc.put_file(&s.path, &dir.path().join(&s.path))
            .await
            .unwrap();
    }
    loc.put_file(MANIFEST_NAME, &dir.path().join(MANIFEST_NAME))
        .await
        .unwrap();

    let app = start(Dataset::open(loc).await.unwrap()).await;
    let all = records(40);
    let html = get(&format!("{}/?kind=multi-turn", app.url)).await.text();
    let shown = card_indices(&html);
    assert_eq!(shown.len(), 10);
    for src in img_srcs(&html).iter().take(6) {
        let t = get(&format!("{}{src}", app.url)).await;
        assert_eq!(t.status, 200);
        assert!(image::load_from_memory(&t.body).unwrap().width() > 0);
    }
    let record = get(&format!("{}/record/{}", app.url, shown[0])).await;
    assert_eq!(record.status, 200);
    assert!(
        record
            .text()
            .contains(&all[shown[0] as usize].source.sha256_hex())
    );
    let img = get(&format!("{}/image/{}/2", app.url, shown[0])).await;
    let want = all[shown[0] as usize]
        .images()
        .nth(2)
        .unwrap()
        .data
        .clone()
        .unwrap();
    assert_eq!(img.body, want);
    let stats = get(&format!("{}/stats", app.url)).await;
    assert!(stats.status == 200 && stats.text().contains("sample of 40 records"));
    every_endpoint_answers(&app.url).await;
}

/// `view` over a dataset on the Hub (`hf://`), whose answers redirect to a CDN (two nginx,
/// `editshard_tools::hub_cdn`): pages and thumbnails come from the CDN by ranged reads, and
/// the token reaches the hub only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_dataset_is_browsed_through_its_cdn() {
    use editshard_tools::hub_cdn::{HubCdn, TOKEN};
    let root = tempfile::tempdir().unwrap();
    editshard_tools::view_fixture::write(&root.path().join("ds"), 30);
    let servers = HubCdn::start(&root.path().join("ds"));
    let no_home = tempfile::tempdir().unwrap();
    let env = servers.env(no_home.path());
    let loc = Location::parse_with_env(&servers.location(), &StorageOptions::default(), |k| {
        env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })
    .unwrap();
    let app = start(Dataset::open(loc).await.unwrap()).await;
    let html = get(&format!("{}/", app.url)).await.text();
    assert_eq!(card_indices(&html), (0..24).collect::<Vec<u64>>());
    let srcs = img_srcs(&html);
    assert!(!srcs.is_empty());
    for src in &srcs {
        assert_eq!(get(&format!("{}{src}", app.url)).await.status, 200);
    }
    every_endpoint_answers(&app.url).await;

    let (hub, cdn) = servers.settled_logs();
    assert!(!hub.is_empty());
    for line in &hub {
        assert_eq!(line.status, 302, "{line:?}");
        assert_eq!(
            line.authorization.as_deref(),
            Some(&*format!("Bearer {TOKEN}"))
        );
    }
    assert!(
        cdn.iter()
            .all(|l| l.authorization.is_none() && matches!(l.status, 200 | 206)),
        "{cdn:#?}"
    );
    let ranged = cdn.iter().filter(|l| l.range.is_some()).count();
    assert!(ranged >= srcs.len(), "{ranged} ranged reads: {cdn:#?}");
    // Each object is resolved at the hub once or so, not once per read.
    assert!(
        hub.len() * 4 < cdn.len(),
        "{} at the hub, {} at the CDN",
        hub.len(),
        cdn.len()
    );
}
