//! The app under load and from other origins: the statistics cache stays bounded whatever
//! seeds are asked for.

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
