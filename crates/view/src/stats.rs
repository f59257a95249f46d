//! The statistics: counts per kind, category and edit type straight from the manifest (no
//! record read at all), and score and image-size distributions from the metadata of a
//! seeded sample of records (no image bytes).

use std::collections::BTreeMap;
use std::fmt::Write;

use editshard::read::{Dataset, Filter, Images};

use crate::html::esc;
use crate::pick::Order;
use crate::svg::bars;

/// Records whose metadata the distributions are drawn from, unless asked otherwise.
pub const DEFAULT_SAMPLE: u64 = 500;
/// The most a request may ask for.
pub const MAX_SAMPLE: u64 = 50_000;
/// The sample's order seed (the same sample every time unless asked otherwise).
pub const DEFAULT_SEED: u64 = 0;

/// Distributions from a sample's metadata.
#[derive(Debug, Default, Clone)]
pub struct Sampled {
    pub records: u64,
    /// Records that could not be read (counted, with the first error).
    pub damaged: u64,
    pub first_error: Option<String>,
    /// Per score name: counts in ten bins of 0.1 over [0, 1] (values outside go to the ends).
    pub scores: BTreeMap<String, [u64; 10]>,
    pub source_sizes: BTreeMap<u32, u64>,
    pub edited_sizes: BTreeMap<u32, u64>,
    pub image_bytes: BTreeMap<u32, u64>,
}

/// The longer side, in buckets of powers of two (`<= 256`, `<= 512`, ...).
fn pow2_bucket(v: u64) -> u32 {
    v.max(1).next_power_of_two().trailing_zeros()
}

pub async fn sample(ds: &Dataset, n: u64, seed: u64) -> Sampled {
    let n = n.min(ds.len());
    let order = Order::new(ds, Some(seed));
    let mut out = Sampled::default();
    let positions: Vec<u64> = (0..n).map(|p| order.at(p)).collect();
    for chunk in positions.chunks(256) {
        let mut sorted = chunk.to_vec();
        sorted.sort_unstable();
        let records = match ds
            .select(&sorted, Images::None, &Filter::default(), None)
            .await
        {
            Ok(v) => v.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(_) => {
                let mut v = Vec::new();
                for &i in &sorted {
                    v.push(ds.get_with(i, Images::None).await.map(Some));
                }
                v
            }
        };
        for r in records {
            match r {
                Ok(Some(r)) => {
                    out.records += 1;
                    let long = |i: &editshard::record::Image| u64::from(i.width.max(i.height));
                    *out.source_sizes
                        .entry(pow2_bucket(long(&r.source)))
                        .or_default() += 1;
                    for img in r.images() {
                        *out.image_bytes.entry(pow2_bucket(img.len)).or_default() += 1;
                    }
                    for t in &r.turns {
                        for img in std::iter::once(&t.output).chain(&t.rejected) {
                            *out.edited_sizes.entry(pow2_bucket(long(img))).or_default() += 1;
                            for s in &img.scores {
                                let bin = (s.value * 10.0).floor().clamp(0.0, 9.0) as usize;
                                out.scores.entry(s.name.clone()).or_insert([0; 10])[bin] += 1;
                            }
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    out.damaged += 1;
                    out.first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
    out
}

fn size_rows(map: &BTreeMap<u32, u64>, unit: &str) -> Vec<(String, u64)> {
    map.iter()
        .map(|(&b, &n)| {
            let hi = 1u64 << b;
            let label = if unit == "bytes" {
                format!("≤ {}", editshard::units::human_bytes(hi))
            } else {
                format!("≤ {hi} {unit}")
            };
            (label, n)
        })
        .collect()
}

fn sorted_counts(map: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut rows: Vec<(String, u64)> = map.iter().map(|(k, v)| (k.clone(), *v)).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    rows
}

/// The statistics as HTML (charts inline), shared by the page and the static report.
pub fn stats_html(ds: &Dataset, s: &Sampled, seed: u64) -> String {
    let m = ds.manifest();
    let mut html = format!(
        "<h1>Statistics</h1><p class=\"summary\">{} records in {} shards, {} · {} images stored \
         ({} referenced)</p><h2>Counts (from the manifest)</h2><div class=\"charts\">",
        m.records,
        m.shards.len(),
        editshard::units::human_bytes(m.bytes),
        m.images.stored,
        m.images.referenced,
    );
    html.push_str(&bars("records per kind", &sorted_counts(&m.kinds)));
    html.push_str(&bars("turns per category", &sorted_counts(&m.categories)));
    html.push_str(&bars("turns per edit type", &sorted_counts(&m.edit_types)));
    let _ = write!(
        html,
        "</div><h2>Distributions</h2><p class=\"summary\">from the metadata of a random sample of \
         {} records (seed {seed})</p>",
        s.records
    );
    if s.damaged > 0 {
        let _ = write!(
            html,
            "<p class=\"problem\">{} records of the sample could not be read; the first: {}</p>",
            s.damaged,
            esc(s.first_error.as_deref().unwrap_or(""))
        );
    }
    html.push_str("<div class=\"charts\">");
    for (name, bins) in &s.scores {
        let rows: Vec<(String, u64)> = bins
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                (
                    format!("{:.1}–{:.1}", i as f32 / 10.0, (i + 1) as f32 / 10.0),
                    n,
                )
            })
            .collect();
        html.push_str(&bars(&format!("score {name} (edited images)"), &rows));
    }
    html.push_str(&bars(
        "source size (longer side)",
        &size_rows(&s.source_sizes, "px"),
    ));
    html.push_str(&bars(
        "edited size (longer side)",
        &size_rows(&s.edited_sizes, "px"),
    ));
    html.push_str(&bars("image bytes", &size_rows(&s.image_bytes, "bytes")));
    html.push_str("</div>");
    html
}
