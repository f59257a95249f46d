//! What the command shows while it works: the library reports progress through observer
//! traits and the `log` facade; this module draws it. A byte bar (bytes, rate, ETA) when
//! stderr is a terminal, otherwise one plain line per event, so logs of batch jobs stay
//! readable and greppable.

use std::io::IsTerminal;

use editshard::mirror::{MirrorObserver, Outcome, ShardEvent};
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
