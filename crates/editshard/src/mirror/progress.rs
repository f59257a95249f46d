//! Progress of a mirror: a byte bar (bytes, rate, ETA) when stderr is a terminal; otherwise
//! one plain line per shard, so logs of batch jobs stay readable and greppable.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    bytes: AtomicU64,
    start: Instant,
}

impl Progress {
    /// About `total` bytes will pass (copied or read to verify); see [`Self::set_total`].
    pub fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {bytes}/{total_bytes}  {bytes_per_sec}  ETA {eta}  {msg}",
                )
                .expect("valid template"),
            );
            bar
        });
        Progress {
            bar,
            quiet: false,
            bytes: AtomicU64::new(0),
            start: Instant::now(),
        }
    }

    /// Prints nothing (library use, tests).
    pub fn quiet() -> Progress {
        Progress {
            bar: None,
            quiet: true,
            bytes: AtomicU64::new(0),
            start: Instant::now(),
        }
    }

    /// Sets the bytes expected in all (known once the manifest is read).
    pub fn set_total(&self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    pub fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// Bytes that passed so far.
    pub fn total(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn elapsed_secs(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// One line about a shard ("copied", "skipped", ...), with the running rate.
    pub fn event(&self, line: &str) {
        if self.quiet {
            return;
        }
        let mbs = self.total() as f64 / 1e6 / self.elapsed_secs().max(1e-3);
        let line = format!("editshard mirror: {line} [{mbs:.1} MB/s]");
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
