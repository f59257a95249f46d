//! Every endpoint over real HTTP against the fixture on disk: pages, filters, images,
//! thumbnails, escaping, headers, paths that must not reach files, damaged records, the
//! static report.

use editshard::read::{Dataset, Images};
use editshard_tools::view_fixture::{HOSTILE_INDEX, HOSTILE_INSTRUCTION, records};
use editshard_view::CSP;
use editshard_view::{ReportOptions, report_html};

use crate::support::{
    card_indices, dataset_dir, every_endpoint_answers, get, img_srcs, open_local, start,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gallery_pages_through_the_dataset_with_thumbnails() {
    let dir = dataset_dir();
    let app = start(open_local(dir.path()).await).await;
    let page = get(&format!("{}/", app.url)).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-security-policy"), CSP);
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    let html = page.text();
    assert_eq!(card_indices(&html), (0..24).collect::<Vec<u64>>());
    // Each card: source and edit side by side with pixel sizes, labels, scores.
    assert!(html.contains("<b>source</b> · 320×240"), "{html}");
    assert!(html.contains("<b>chosen</b>") && html.contains("<b>rejected 2</b>"));
    assert!(html.contains("<b>turn 3</b>") && html.contains("Turn 2: make it a little warmer"));
    assert!(html.contains("<dd class=\"edit-type\">Remove an existing object</dd>"));
    assert!(html.contains("<span>overall</span>"));
    assert!(html.contains("<summary>full instruction</summary>"));
    assert!(html.contains("href=\"/?start=24\" rel=\"next\""), "{html}");

    // Every thumbnail is a JPEG that fits 256 px.
    let srcs = img_srcs(&html);
    let want: usize = records(24).iter().map(|r| r.images().count()).sum();
    assert_eq!(srcs.len(), want);
    for src in &srcs {
        let t = get(&format!("{}{src}", app.url)).await;
        assert_eq!(
            (t.status, t.header("content-type").as_str()),
            (200, "image/jpeg"),
            "{src}"
        );
        let img = image::load_from_memory(&t.body).unwrap();
        assert!(img.width() <= 256 && img.height() <= 256 && img.width() > 0);
    }
    assert_eq!(app.app.thumbs.len(), want, "every thumbnail is cached");

    let second = get(&format!("{}/?start=24", app.url)).await.text();
    assert_eq!(card_indices(&second), (24..40).collect::<Vec<u64>>());
    assert!(!second.contains("rel=\"next\""));
    assert!(second.contains("rel=\"first\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_in_the_url_select_records() {
    let dir = dataset_dir();
    let all = records(40);
    let app = start(open_local(dir.path()).await).await;
    let indices = |q: &str| {
        let url = format!("{}/?{q}&per_page=100", app.url);
        async move { card_indices(&get(&url).await.text()) }
    };
    let expect = |f: &dyn Fn(&editshard::Record) -> bool| -> Vec<u64> {
        (0..40u64).filter(|&i| f(&all[i as usize])).collect()
    };

    let prefs = indices("kind=preference").await;
    assert_eq!(prefs, expect(&|r| r.kind == editshard::Kind::Preference));
    assert_eq!(prefs.len(), 10);

    let edit = "Change overall color tone (warm ↔ cool)";
    let by_edit = indices(&format!("edit_type={}", editshard_view::url_encode(edit))).await;
    assert_eq!(
        by_edit,
        expect(&|r| r.turns.iter().any(|t| t.edit_type.as_deref() == Some(edit)))
    );
    assert!(!by_edit.is_empty());

    // As a form sends it ('+' for a space), any case and spacing.
    let by_cat = indices("category=pixel+%26++photometric").await;
    assert_eq!(
        by_cat,
        expect(&|r| r
            .turns
            .iter()
            .any(|t| t.category.as_deref() == Some("Pixel & Photometric")))
    );
    assert!(!by_cat.is_empty());

    let good = indices("score=overall&min=0.6").await;
    let want = expect(&|r| {
        r.turns.iter().any(|t| {
            t.output
                .scores
                .iter()
                .any(|s| s.name == "overall" && s.value >= 0.6)
        })
    });
    assert_eq!(good, want);
    assert!(!good.is_empty() && good.len() < 10);
    let band = indices("score=overall&min=0.3&max=0.55").await;
    assert!(band.iter().all(|i| !good.contains(i)) && !band.is_empty());

    let by_id = indices("id=MULTI-turn/images/multi-turn/1").await;
    assert_eq!(
        by_id,
        expect(&|r| r.id.starts_with("multi-turn/images/multi-turn/1"))
    );
    assert_eq!(by_id, vec![10, 14, 18]);

    // A seeded sample: a permutation, the same for the same seed, different for another.
    let a = indices("seed=7").await;
    let b = indices("seed=7").await;
    let c = indices("seed=8").await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_ne!(a, (0..40).collect::<Vec<u64>>());
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..40).collect::<Vec<u64>>());

    // Filters combine, and paging keeps them.
    let page = get(&format!("{}/?kind=sft&seed=3&per_page=4", app.url))
        .await
        .text();
    let first = card_indices(&page);
    assert_eq!(first.len(), 4);
    assert!(
        first
            .iter()
            .all(|&i| all[i as usize].kind == editshard::Kind::Sft)
    );
    let next = page.split("rel=\"first\"").next().unwrap();
    assert!(
        page.contains("kind=sft&amp;seed=3&amp;per_page=4&amp;start="),
        "{next}"
    );

    // A malformed value is reported on the page, never a failed request.
    let bad = get(&format!("{}/?min=high&kind=cats", app.url)).await;
    assert_eq!(bad.status, 200);
    assert!(bad.text().contains("min=&quot;high&quot; is not a number"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_page_json_images_and_downloads() {
    let dir = dataset_dir();
    let all = records(40);
    let app = start(open_local(dir.path()).await).await;
    let r = &all[1];
    let page = get(&format!("{}/record/1", app.url)).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    for img in r.images() {
        assert!(html.contains(&img.sha256_hex()), "every image's SHA-256");
        assert!(
            html.contains(&format!("<dd>{}</dd>", img.len)),
            "every image's bytes"
        );
    }
    for needle in [
        "<dd>image/jpeg</dd>",
        "<dd>image/png</dd>",
        "<dd>352×240 px</dd>",
        "<dd>CC BY-NC-ND 4.0</dd>",
        "<dd>https://farm8.staticflickr.com/2915/1_o.jpg</dd>",
        "<dd>images/negative-edit/1_1.png</dd>",
        "<dd>jsonl/preference.jsonl</dd>",
        "<dd>Warm up the colours of scene 1. Keep the sun.</dd>",
        "href=\"/image/1/3?download=1\"",
        "src=\"/image/1/0\"",
    ] {
        assert!(html.contains(needle), "{needle} missing");
    }
    let generic = get(&format!("{}/record/3", app.url)).await.text();
    assert!(
        generic.contains("&quot;from&quot;: &quot;view fixture&quot;"),
        "extras shown"
    );

    let json = get(&format!("{}/record/1/json", app.url)).await;
    assert!(json.header("content-disposition").starts_with("attachment"));
    let back: editshard::Record = serde_json::from_slice(&json.body).unwrap();
    let mut want = r.clone();
    want.strip_data();
    assert_eq!(back, want);

    for (k, img) in r.images().enumerate() {
        let got = get(&format!("{}/image/1/{k}", app.url)).await;
        assert_eq!(got.status, 200);
        assert_eq!(got.header("content-type"), img.media_type);
        assert_eq!(Some(&got.body), img.data.as_ref());
    }
    let dl = get(&format!("{}/image/1/0?download=1", app.url)).await;
    assert_eq!(
        dl.header("content-disposition"),
        "attachment; filename=\"record-1-image-0.jpg\""
    );

    let found = get(&format!(
        "{}/find?id={}",
        app.url,
        editshard_view::url_encode(&all[17].id)
    ))
    .await;
    assert_eq!(
        (found.status, found.url.ends_with("/record/17")),
        (200, true),
        "{}",
        found.url
    );
    let missing = get(&format!("{}/find?id=nope", app.url)).await;
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("no record has the id"));

    let stats = get(&format!("{}/stats", app.url)).await;
    assert_eq!(stats.status, 200);
    let s = stats.text();
    for needle in [
        "records per kind",
        "turns per category",
        "turns per edit type",
        "score overall",
        "source size",
        "<svg",
    ] {
        assert!(s.contains(needle), "{needle} missing from the statistics");
    }
    assert!(s.contains("sample of 40 records"));
    every_endpoint_answers(&app.url).await;
    let css = get(&format!("{}/static/style.css", app.url)).await;
    assert_eq!(
        (css.status, css.header("content-type").as_str()),
        (200, "text/css; charset=utf-8")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataset_strings_are_escaped_everywhere() {
    let dir = dataset_dir();
    let app = start(open_local(dir.path()).await).await;
    let escaped = "&lt;img src=x onerror=alert(1)&gt;";
    for path in [
        "/".to_string(),
        format!("/record/{HOSTILE_INDEX}"),
        "/?id=%3Cimg".to_string(),
    ] {
        let html = get(&format!("{}{path}", app.url)).await.text();
        assert!(
            !html.contains(HOSTILE_INSTRUCTION),
            "{path} has the raw instruction"
        );
        assert!(!html.contains("onerror=alert(1)>"), "{path}");
        assert!(!html.contains("<script"), "{path}");
        if path != "/?id=%3Cimg" {
            assert!(
                html.contains(escaped),
                "{path} shows the instruction as text"
            );
        }
    }
    // Hostile query values come back escaped too.
    let html = get(&format!(
        "{}/?id=%22%3E%3Cscript%3Ealert(1)%3C/script%3E",
        app.url
    ))
    .await
    .text();
    assert!(!html.contains("<script>") && html.contains("&quot;&gt;&lt;script&gt;"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_paths_cannot_reach_other_files() {
    let dir = dataset_dir();
    std::fs::write(dir.path().join("secret.txt"), "do not serve").unwrap();
    let app = start(open_local(dir.path()).await).await;
    for path in [
        "/static/../Cargo.toml",
        "/static/..%2F..%2FCargo.toml",
        "/static/%2e%2e%2f%2e%2e%2fCargo.toml",
        "/static/style.css/../../secret.txt",
        "/secret.txt",
        "/manifest.json",
        "/../../etc/passwd",
        "/image/0/99",
        // The largest image number: the error naming it must not overflow.
        "/image/0/18446744073709551615",
        "/thumb/0/18446744073709551615",
        "/record/999",
        "/thumb/..%2Fsecret.txt/0",
        "/image/0/..%2F..%2Fsecret.txt",
    ] {
        let r = get(&format!("{}{path}", app.url)).await;
        assert!(r.status >= 400, "{path} answered {}", r.status);
        let body = r.text();
        assert!(
            !body.contains("do not serve")
                && !body.contains("[package]")
                && !body.contains("root:x"),
            "{path}"
        );
        assert!(!body.contains("\"format\""), "{path} leaked the manifest");
    }
    // Read-only: nothing but GET (and HEAD) is routed.
    editshard::net::ensure_tls_provider();
    let client = reqwest::Client::new();
    let put = client
        .put(format!("{}/record/0", app.url))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 405);
}

/// Flips a byte inside the metadata block of global record `index` (in its shard file).
async fn damage_metadata(dir: &std::path::Path, ds: &Dataset, index: u64) {
    let (s, local) = ds.locate(index).unwrap();
    let shard = ds.shard(s).await.unwrap();
    let range = shard.view().metadata_range(local).unwrap();
    let path = dir.join(shard.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(range.start + range.end) as usize / 2] ^= 0x5a;
    std::fs::write(&path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_record_is_a_located_error_on_its_card() {
    let dir = dataset_dir();
    let ds = open_local(dir.path()).await;
    damage_metadata(dir.path(), &ds, 5).await;
    // An image of record 8 damaged too: its thumbnail says so (as an image), the rest shows.
    let (s, local) = ds.locate(8).unwrap();
    let shard = ds.shard(s).await.unwrap();
    let img = shard.view().image_range(local, 1).unwrap();
    let path = dir.path().join(shard.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[img.start as usize + 40] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();

    let app = start(open_local(dir.path()).await).await;
    let page = get(&format!("{}/", app.url)).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert_eq!(
        card_indices(&html),
        (0..24).collect::<Vec<u64>>(),
        "every other card still shows"
    );
    let card = html
        .split("data-index=\"5\"")
        .nth(1)
        .unwrap()
        .split("</article>")
        .next()
        .unwrap();
    assert!(html.contains("<article class=\"card damaged\" data-index=\"5\""));
    let shard_name = shard_file(&ds, 5).await;
    assert!(
        card.contains(&shard_name),
        "the error names the shard: {card}"
    );
    assert!(card.contains("record"), "{card}");
    assert!(card.contains("hint:"), "{card}");

    let record = get(&format!("{}/record/5", app.url)).await;
    assert_eq!(record.status, 422);
    assert!(record.text().contains(&shard_name));

    let thumb = get(&format!("{}/thumb/8/1", app.url)).await;
    assert_eq!(thumb.status, 422);
    assert_eq!(thumb.header("content-type"), "image/svg+xml");
    assert!(thumb.text().contains("cannot show this image"));
    assert_eq!(get(&format!("{}/thumb/8/0", app.url)).await.status, 200);
    assert_eq!(get(&format!("{}/image/8/1", app.url)).await.status, 422);

    // Statistics count it as damaged instead of failing.
    let stats = get(&format!("{}/stats", app.url)).await;
    assert_eq!(stats.status, 200);
    assert!(
        stats
            .text()
            .contains("1 records of the sample could not be read")
    );
}

async fn shard_file(ds: &Dataset, index: u64) -> String {
    let (s, _) = ds.locate(index).unwrap();
    ds.shard(s).await.unwrap().path().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_is_one_self_contained_file() {
    let dir = dataset_dir();
    let ds = open_local(dir.path()).await;
    let opts = ReportOptions {
        records: 40,
        seed: 5,
        ..ReportOptions::default()
    };
    let html = report_html(&ds, "fixture <b>", &opts).await;
    assert_eq!(card_indices(&html).len(), 40);
    let srcs = img_srcs(&html);
    let want: usize = records(40).iter().map(|r| r.images().count()).sum();
    assert_eq!(srcs.len(), want);
    assert!(
        srcs.iter()
            .all(|s| s.starts_with("data:image/jpeg;base64,"))
    );
    assert!(!html.contains("href=\"/") && !html.contains("<link") && !html.contains("<script"));
    assert!(html.contains(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:"
    ));
    assert!(html.contains("fixture &lt;b&gt;"));
    assert!(
        !html.contains(HOSTILE_INSTRUCTION) && html.contains("&lt;img src=x onerror=alert(1)&gt;")
    );
    assert!(html.contains("records per kind") && html.contains("score overall"));
    // Metadata only for the statistics; the same seed gives the same report.
    let again = report_html(&ds, "fixture <b>", &opts).await;
    assert_eq!(html, again);
    let _ = ds.get_with(0, Images::None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_dataset_has_pages_not_errors() {
    let dir = tempfile::tempdir().unwrap();
    editshard_tools::view_fixture::write(dir.path(), 0);
    let app = start(open_local(dir.path()).await).await;
    for path in [
        "/",
        "/?seed=3",
        "/?kind=sft&min=0.2",
        "/?start=99999999999",
        "/stats",
    ] {
        let r = get(&format!("{}{path}", app.url)).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(card_indices(&r.text()).is_empty());
    }
    assert!(
        get(&format!("{}/", app.url))
            .await
            .text()
            .contains("No record here matches")
    );
    assert_eq!(get(&format!("{}/record/0", app.url)).await.status, 404);
    assert_eq!(get(&format!("{}/image/0/0", app.url)).await.status, 404);
}
