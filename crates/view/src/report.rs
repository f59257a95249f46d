//! The static report: one self-contained HTML file (statistics and a seeded random sample of
//! records with their thumbnails embedded as `data:` URIs) that can be mailed or archived and
//! opened with no server and no network.

use std::collections::HashMap;
use std::fmt::Write;

use base64::Engine;
use editshard::read::Dataset;

use crate::app::App;
use crate::cards::{card, error_card};
use crate::html::esc;
use crate::pick::pick;
use crate::query::Selection;
use crate::stats::{DEFAULT_SAMPLE, stats_html};

/// What goes into a report.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Records shown as cards (a random sample).
    pub records: usize,
    /// Seed of the sample (cards and statistics alike).
    pub seed: u64,
    /// Records whose metadata the distributions are drawn from.
    pub stats_sample: u64,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            records: 24,
            seed: 0,
            stats_sample: DEFAULT_SAMPLE,
        }
    }
}

/// Builds the report of `ds` (named `name` in its header).
pub async fn report_html(ds: &Dataset, name: &str, opts: &ReportOptions) -> String {
    let app = App::new(ds.clone(), name);
    let sel = Selection {
        seed: Some(opts.seed),
        per_page: opts.records.max(1),
        ..Selection::default()
    };
    let picked = pick(ds, &sel).await;
    // Every thumbnail of the sample, embedded; one that cannot be made is left out (its card
    // says "no thumbnail").
    let mut thumbs: HashMap<(u64, usize), String> = HashMap::new();
    for shown in &picked.shown {
        if let Ok(r) = &shown.record {
            for k in 0..r.images().count() {
                if let Ok(t) = app.thumb(shown.index, k).await {
                    let b64 = base64::engine::general_purpose::STANDARD.encode(&t);
                    thumbs.insert((shown.index, k), format!("data:image/jpeg;base64,{b64}"));
                }
            }
        }
    }
    let sampled = app.sampled(opts.stats_sample, opts.seed).await;
    let src = |index: u64, k: usize| thumbs.get(&(index, k)).cloned();
    let mut cards = String::new();
    for shown in &picked.shown {
        match &shown.record {
            Ok(r) => cards.push_str(&card(shown.index, r, &src, false)),
            Err(e) => cards.push_str(&error_card(shown.index, e)),
        }
    }
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\
         <title>editshard report · {name}</title><style>{style}</style></head>\n<body>\
         <header class=\"top\"><strong>editshard report</strong> <span class=\"dataset\">{name}</span></header><main>\
         {stats}<h2>Sample</h2><p class=\"summary\">{n} records drawn at random (seed {seed})</p>\
         <section class=\"grid\">{cards}</section></main></body></html>\n",
        name = esc(name),
        style = crate::server::style(),
        stats = stats_html(ds, &sampled, opts.seed),
        n = picked.shown.len(),
        seed = opts.seed,
    );
    html
}
