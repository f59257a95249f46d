//! Progress while converting and the summary table at the end.
//!
//! On a terminal: an indicatif bar with rows/s, MB/s and ETA. Otherwise (logs, CI, batch
//! jobs): one plain line every `--log-interval` seconds, so a cluster log shows progress
//! without carriage returns.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    failed: u64,
    bytes: u64,
    start: Instant,
    last_log: Instant,
    interval: Duration,
}

impl Progress {
    pub fn new(total: u64, already: u64, interval: Duration) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} rows  {per_sec}  {msg}  ETA {eta}",
                )
                .expect("valid template"),
            );
            bar.set_position(already);
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            total,
            done: already,
            failed: 0,
            bytes: 0,
            start: now,
            last_log: now,
            interval,
        }
    }

    /// One row handled: `bytes` of images (0 if it failed).
    pub fn row(&mut self, bytes: u64, failed: bool) {
        self.done += 1;
        self.bytes += bytes;
        self.failed += u64::from(failed);
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let mbs = self.bytes as f64 / 1e6 / secs;
        if let Some(bar) = &self.bar {
            bar.set_position(self.done);
            bar.set_message(format!("{mbs:.1} MB/s  {} failed", self.failed));
        } else if self.last_log.elapsed() >= self.interval {
            self.last_log = Instant::now();
            eprintln!(
                "editshard convert: {}/{} rows ({:.1}%), {:.1} MB/s of images, {} failed, {:.0} s elapsed",
                self.done,
                self.total,
                100.0 * self.done as f64 / self.total.max(1) as f64,
                mbs,
                self.failed,
                secs
            );
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
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
