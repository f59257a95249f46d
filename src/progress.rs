//! What the command shows while it works: the library reports progress through observer
//! traits and the `log` facade; this module draws it. A byte bar (bytes, rate, ETA) when
//! stderr is a terminal, otherwise one plain line per event, so logs of batch jobs stay
//! readable and greppable.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use editshard::mirror::{MirrorObserver, Outcome, ShardEvent};
use editshard_convert::progress::ConvertObserver;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use editshard::units::human_bytes;

/// Draws a mirror's progress on stderr.
pub struct MirrorBar {
    bar: Option<ProgressBar>,
}

impl MirrorBar {
    pub fn new() -> MirrorBar {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {bytes}/{total_bytes}  {bytes_per_sec}  ETA {eta}  {msg}",
                )
                .expect("valid template"),
            );
            bar
        });
        MirrorBar { bar }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl MirrorObserver for MirrorBar {
    fn total(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(bytes);
        }
    }

    fn bytes(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn shard(&self, e: &ShardEvent<'_>) {
        let (path, size) = (e.path, human_bytes(e.bytes));
        let line = match e.outcome {
            Outcome::Copied => format!("copied {path} ({size}), verified"),
            Outcome::Replaced => format!("replaced {path} ({size}) at DST (--force), verified"),
            Outcome::Skipped => format!("skipped {path}: already at DST and verified"),
            Outcome::Missing => format!("MISSING {path}: not at DST"),
            Outcome::Empty => format!("dropped {path}: no record passes the subset"),
            Outcome::Differs(what) => format!(
                "DIFFERS {}: {what}; not overwritten. Check which copy is right (`editshard \
                 verify`), then re-run with --force to replace it",
                e.dst
            ),
            Outcome::Failed(err) => format!("FAILED {path}: {err}"),
        };
        let mbs = e.moved as f64 / 1e6 / e.secs.max(1e-3);
        let line = format!("editshard mirror: {line} [{mbs:.1} MB/s]");
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}

/// Draws a conversion's progress on stderr: on a terminal, a bar with rows/s, MB/s and ETA;
/// otherwise (logs, CI, batch jobs) one plain line every `interval`, so a cluster log shows
/// progress without carriage returns.
pub struct ConvertBar {
    interval: Duration,
    state: Mutex<ConvertCounts>,
}

/// What a [`ConvertBar`] has been told so far.
struct ConvertCounts {
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    failed: u64,
    bytes: u64,
    start: Instant,
    last_log: Instant,
}

impl ConvertBar {
    pub fn new(interval: Duration) -> ConvertBar {
        let now = Instant::now();
        ConvertBar {
            interval,
            state: Mutex::new(ConvertCounts {
                bar: None,
                total: 0,
                done: 0,
                failed: 0,
                bytes: 0,
                start: now,
                last_log: now,
            }),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, ConvertCounts> {
        // A panic while drawing leaves counts that are still counts.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ConvertObserver for ConvertBar {
    fn start(&self, total: u64, already: u64) {
        let mut c = self.counts();
        c.bar = std::io::stderr().is_terminal().then(|| {
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
        (c.total, c.done, c.start, c.last_log) = (total, already, now, now);
    }

    fn row(&self, image_bytes: u64, failed: bool) {
        let mut c = self.counts();
        c.done += 1;
        c.bytes += image_bytes;
        c.failed += u64::from(failed);
        let secs = c.start.elapsed().as_secs_f64().max(1e-3);
        let mbs = c.bytes as f64 / 1e6 / secs;
        if let Some(bar) = &c.bar {
            bar.set_position(c.done);
            bar.set_message(format!("{mbs:.1} MB/s  {} failed", c.failed));
        } else if c.last_log.elapsed() >= self.interval {
            c.last_log = Instant::now();
            eprintln!(
                "editshard convert: {}/{} rows ({:.1}%), {:.1} MB/s of images, {} failed, {:.0} s elapsed",
                c.done,
                c.total,
                100.0 * c.done as f64 / c.total.max(1) as f64,
                mbs,
                c.failed,
                secs
            );
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.counts().bar {
            bar.finish_and_clear();
        }
    }
}

/// Prints the library's warnings (`log` records at `warn` and above, e.g. a damaged record
/// skipped with `--skip-corrupt`) on stderr as `editshard: ...`.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("editshard: {}", record.args());
        }
    }
    fn flush(&self) {}
}

/// Routes the library's `log` records to stderr; call once at start-up.
pub fn init_log() {
    static LOGGER: StderrLog = StderrLog;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}
