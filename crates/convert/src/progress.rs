//! How a conversion reports progress, and the summary table at the end.
//!
//! The engine draws and prints nothing while it works: it calls a [`ConvertObserver`] the
//! caller provides, once per row handled. The `editshard` command turns these calls into a
//! progress bar on a terminal, or a plain line every `--log-interval` seconds otherwise; a
//! program (or the Python package) passes [`Quiet`], or an observer of its own.

use std::collections::BTreeMap;
use std::fmt;

/// Receives a conversion's progress. Every method has an empty default; the methods are
/// called from the thread that writes the records, one call at a time.
pub trait ConvertObserver: Send + Sync {
    /// The rows of this run are about to be written: `total` rows in the plan, of which an
    /// earlier run already handled `already`.
    fn start(&self, _total: u64, _already: u64) {}
    /// One more row handled: `image_bytes` of images in the record it became (0 when it
    /// failed, or was refused).
    fn row(&self, _image_bytes: u64, _failed: bool) {}
    /// Every row of the run is handled (the summary comes next).
    fn finish(&self) {}
}

/// An observer that ignores everything (library use, tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl ConvertObserver for Quiet {}

// Options holding an observer stay `Debug`.
impl fmt::Debug for dyn ConvertObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConvertObserver")
    }
}

/// What the summary table shows.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    pub dest: String,
    pub rows_read: BTreeMap<String, u64>,
    pub rows_in_part: u64,
    pub records: u64,
    pub shards: u64,
    pub shard_bytes: u64,
    pub failures: BTreeMap<String, u64>,
    pub unknown_edit_types: BTreeMap<String, u64>,
    pub images_referenced: u64,
    pub images_stored: u64,
    pub image_bytes_referenced: u64,
    pub image_bytes_stored: u64,
    pub requests: u64,
    pub retries: u64,
    pub bytes_downloaded: u64,
    pub bytes_local: u64,
    pub cache_hits: u64,
    /// `local_input_image` paths outside every `--local-images-root`, not opened.
    pub local_ignored: u64,
    pub resumed_at_row: u64,
    pub wall_secs: f64,
}

impl Summary {
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    pub fn table(&self) -> String {
        let mb = editshard::units::human_bytes;
        let mut rows: Vec<(String, String)> = Vec::new();
        let read: u64 = self.rows_read.values().sum();
        let per: Vec<String> = self
            .rows_read
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        rows.push(("rows read".into(), format!("{read} ({})", per.join(", "))));
        rows.push(("rows in this run".into(), self.rows_in_part.to_string()));
        rows.push(("records written".into(), self.records.to_string()));
        rows.push(("failed rows".into(), self.failed().to_string()));
        for (reason, n) in &self.failures {
            rows.push((format!("  {reason}"), n.to_string()));
        }
        let unknown: u64 = self.unknown_edit_types.values().sum();
        rows.push((
            "unknown edit types".into(),
            format!("{unknown} turns ({} types)", self.unknown_edit_types.len()),
        ));
        rows.push((
            "shards".into(),
            format!("{} ({})", self.shards, mb(self.shard_bytes)),
        ));
        rows.push((
            "images".into(),
            format!(
                "{} referenced, {} stored ({} deduplicated)",
                self.images_referenced,
                self.images_stored,
                self.images_referenced.saturating_sub(self.images_stored)
            ),
        ));
        rows.push((
            "image bytes".into(),
            format!(
                "{} referenced, {} stored",
                mb(self.image_bytes_referenced),
                mb(self.image_bytes_stored)
            ),
        ));
        rows.push((
            "fetched".into(),
            format!(
                "{} over HTTP ({} requests, {} retries, {} cache hits), {} from local files",
                mb(self.bytes_downloaded),
                self.requests,
                self.retries,
                self.cache_hits,
                mb(self.bytes_local)
            ),
        ));
        if self.local_ignored > 0 {
            rows.push((
                "local paths ignored".into(),
                format!(
                    "{} local_input_image paths outside --local-images-root (not opened; \
                     their sources were read from the URL)",
                    self.local_ignored
                ),
            ));
        }
        if self.resumed_at_row > 0 {
            rows.push(("resumed at row".into(), self.resumed_at_row.to_string()));
        }
        let rate =
            (self.bytes_downloaded + self.bytes_local) as f64 / 1e6 / self.wall_secs.max(1e-3);
        rows.push((
            "wall time".into(),
            format!("{:.1} s ({rate:.1} MB/s of images read)", self.wall_secs),
        ));
        rows.push(("destination".into(), self.dest.clone()));
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::from("editshard convert summary\n");
        for (k, v) in rows {
            out.push_str(&format!("  {k:<width$}  {v}\n"));
        }
        out
    }
}
