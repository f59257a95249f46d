//! A real headless Chromium (Debian's, over chromedriver) browses the app: the gallery's
//! cards and images render, a filter is applied through the form, a record page opens, the
//! statistics draw; a hostile instruction shows as text and never runs. Screenshots of each
//! page are saved as artifacts (`target/view-screenshots/`, or `$EDITSHARD_VIEW_SCREENSHOTS`).

use std::path::PathBuf;

use editshard_tools::view_fixture::{HOSTILE_INDEX, HOSTILE_INSTRUCTION, records};
use serde_json::json;

use crate::support::{dataset_dir, open_local, start};
use crate::webdriver::Driver;

fn screenshots() -> PathBuf {
    let dir = std::env::var_os("EDITSHARD_VIEW_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/view-screenshots")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const IMAGES_DONE: &str = "return Array.from(document.images).every(i => i.complete)";
/// [cards, images, images with a natural width]
const RENDERED: &str = "const imgs = Array.from(document.images); \
    return [document.querySelectorAll('article.card').length, imgs.length, \
            imgs.filter(i => i.naturalWidth > 0).length];";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_browses_the_gallery_filters_and_opens_a_record() {
    let dir = dataset_dir();
    let app = start(open_local(dir.path()).await).await;
    let all = records(40);
    let out = screenshots();
    let d = Driver::start().await;

    d.goto(&format!("{}/", app.url)).await;
    d.wait_for(IMAGES_DONE, "the gallery's images").await;
    let images: usize = all[..24].iter().map(|r| r.images().count()).sum();
    assert_eq!(
        d.exec(RENDERED).await,
        json!([24, images, images]),
        "every card and image renders"
    );
    let instruction = d
        .exec(&format!(
            "return document.querySelector('article[data-index=\"{HOSTILE_INDEX}\"] .instruction').textContent"
        ))
        .await;
    assert_eq!(
        instruction,
        json!(HOSTILE_INSTRUCTION),
        "the hostile instruction is text"
    );
    assert_eq!(
        d.exec("return document.querySelectorAll('img[src=\"x\"]').length")
            .await,
        json!(0)
    );
    assert!(!d.alert_open().await, "no script from the dataset ran");
    d.screenshot(&out.join("gallery.png")).await;

    // A filter through the form: kind = preference, Apply.
    d.click("#f-kind").await;
    d.click("#f-kind option[value=\"preference\"]").await;
    d.click("#f-apply").await;
    d.wait_for(
        "return location.search.includes('kind=preference')",
        "the filtered URL",
    )
    .await;
    d.wait_for(IMAGES_DONE, "the filtered gallery's images")
        .await;
    let prefs = all
        .iter()
        .filter(|r| r.kind == editshard::Kind::Preference)
        .count();
    let pref_images: usize = all
        .iter()
        .filter(|r| r.kind == editshard::Kind::Preference)
        .map(|r| r.images().count())
        .sum();
    assert_eq!(
        d.exec(RENDERED).await,
        json!([prefs, pref_images, pref_images])
    );
    assert_eq!(
        d.exec("return document.querySelectorAll('article.card:not(.kind-preference)').length")
            .await,
        json!(0)
    );
    d.screenshot(&out.join("gallery-filtered.png")).await;

    // The first card's record page.
    d.click("article.card a.id").await;
    d.wait_for(
        "return location.pathname === '/record/1'",
        "the record page",
    )
    .await;
    d.wait_for(IMAGES_DONE, "the record's images").await;
    let full = d
        .exec("const imgs = Array.from(document.images); return [imgs.length, imgs.filter(i => i.naturalWidth > 0).length];")
        .await;
    let n = all[1].images().count();
    assert_eq!(full, json!([n, n]), "every full-size image renders");
    assert_eq!(
        d.exec("return document.querySelector('h1.record-id').textContent")
            .await,
        json!(all[1].id)
    );
    d.screenshot(&out.join("record.png")).await;

    d.goto(&format!("{}/stats", app.url)).await;
    let charts = d
        .exec("return document.querySelectorAll('figure.chart svg rect.bar').length")
        .await;
    assert!(charts.as_u64().unwrap() > 10, "{charts}");
    d.screenshot(&out.join("stats.png")).await;

    // The hostile record's own page, for the record.
    d.goto(&format!("{}/record/{HOSTILE_INDEX}", app.url)).await;
    assert!(!d.alert_open().await);
    d.quit().await;
    for name in [
        "gallery.png",
        "gallery-filtered.png",
        "record.png",
        "stats.png",
    ] {
        assert!(
            std::fs::metadata(out.join(name)).unwrap().len() > 10_000,
            "{name}"
        );
    }
}
