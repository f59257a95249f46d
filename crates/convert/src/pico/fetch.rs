//! Getting image bytes: from local files, from the download cache, or over HTTP.
//!
//! The HTTP side is built for Flickr's and CDNs' habits: a global limit (`--jobs`) and a
//! per-host limit (`--per-host`) on concurrent requests, an optional per-host request rate
//! (`--rate HOST=REQ/S`), timeouts on connect and on an idle body, and bounded retries with
//! exponential back-off and full jitter. A 429 or 503 waits for `Retry-After` when the server
//! sends one. A body shorter than its `Content-Length` (or cut by a reset) is retried, never
//! stored. Permits are released while waiting, so one throttled host does not hold the others
//! back.
//!
//! Nothing is held whole in memory: a response streams into its cache file (created
//! exclusively, renamed when complete), hashed and size-checked as it arrives, so a download
//! costs one chunk of memory however large or endless the response. What a caller gets is a
//! [`Fetched`]: where the bytes are on disk, their length and SHA-256, and their first
//! [`HEAD_BYTES`] for probing the image header.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use super::cache::Cache;
use super::resolve::Location;
use crate::kill::kill_point;

#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub jobs: usize,
    pub per_host: usize,
    /// `(host, requests per second)`; host `*` applies to every host without its own rule.
    pub rates: Vec<(String, f64)>,
    pub connect_timeout: Duration,
    /// Longest wait for the next body bytes (or the response head).
    pub idle_timeout: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured; longer ones are clamped to it.
    pub max_retry_after: Duration,
    pub max_image_bytes: u64,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            jobs: 16,
            per_host: 4,
            rates: Vec::new(),
            connect_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
            retries: 6,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(600),
            max_image_bytes: 256 << 20,
        }
    }
}

/// How many leading bytes of each image are kept in memory for probing its header.
pub const HEAD_BYTES: usize = 256 << 10;

/// Image bytes on disk, with what was learnt while they went past.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The cache entry, or the local file itself.
    pub path: PathBuf,
    pub len: u64,
    pub sha256: [u8; 32],
    /// The first [`HEAD_BYTES`] (all of a smaller file).
    pub head: Bytes,
    /// For a local file (not ours): its length and modification time when hashed, checked
    /// again when its bytes are read into the record ([`Stamp::check`]).
    pub stamp: Option<Stamp>,
}

/// A local file's length and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }

    /// Whether `path` is still the file that was hashed.
    pub fn check(&self, path: &Path) -> Result<(), String> {
        let now = std::fs::metadata(path)
            .map(|m| Stamp::of(&m))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if &now != self {
            return Err(format!(
                "{} changed while it was being converted",
                path.display()
            ));
        }
        Ok(())
    }
}

/// What is learnt of image bytes as they go past: their length, SHA-256 and head.
struct BytesSeen {
    hasher: Sha256,
    head: BytesMut,
    len: u64,
}

impl BytesSeen {
    fn new() -> BytesSeen {
        BytesSeen {
            hasher: Sha256::new(),
            head: BytesMut::new(),
            len: 0,
        }
    }

    fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        let room = HEAD_BYTES.saturating_sub(self.head.len());
        self.head.extend_from_slice(&chunk[..chunk.len().min(room)]);
        self.len += chunk.len() as u64;
    }

    fn fetched(self, path: PathBuf, stamp: Option<Stamp>) -> Fetched {
        Fetched {
            path,
            len: self.len,
            sha256: self.hasher.finalize().into(),
            head: self.head.freeze(),
            stamp,
        }
    }
}

/// Reads a whole file, hashing it and keeping its head; fails past `max` bytes.
fn hash_file(path: &Path, max: u64) -> Result<Fetched, FetchError> {
    let missing = |e: std::io::Error| FetchError::Missing(format!("{}: {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(missing)?;
    let meta = file.metadata().map_err(missing)?;
    if !meta.is_file() {
        return Err(FetchError::Missing(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    if meta.len() > max {
        return Err(FetchError::TooLarge(meta.len()));
    }
    let mut digest = BytesSeen::new();
    READ_BUFFER.with_borrow_mut(|buf| {
        if buf.is_empty() {
            buf.resize(READ_BUFFER_LEN, 0);
        }
        loop {
            let n = file.read(buf).map_err(missing)?;
            if n == 0 {
                return Ok(());
            }
            if digest.len + n as u64 > max {
                return Err(FetchError::TooLarge(digest.len + n as u64));
            }
            digest.update(&buf[..n]);
        }
    })?;
    Ok(digest.fetched(path.to_path_buf(), Some(Stamp::of(&meta))))
}

const READ_BUFFER_LEN: usize = 256 << 10;
thread_local! {
    /// [`hash_file`]'s read buffer, one per (blocking pool) thread and reused: a fresh
    /// zero-filled 256 KiB buffer for every file was a tenth of the time of converting a
    /// release of small images (`memset` at the top of its profile), and above glibc's mmap
    /// threshold each one was also mapped and unmapped.
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Why an image could not be had. `reason()` is the short form counted in the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// A final HTTP status (after retries for retryable ones).
    Status(u16),
    /// Connection, timeout or truncation errors that outlived the retries.
    Network(String),
    Missing(String),
    TooLarge(u64),
}

impl FetchError {
    pub fn reason(&self) -> String {
        match self {
            FetchError::Status(s) => format!("http-{s}"),
            FetchError::Network(_) => "network".into(),
            FetchError::Missing(_) => "missing-file".into(),
            FetchError::TooLarge(_) => "too-large".into(),
        }
    }
    pub fn detail(&self, max: u64) -> String {
        match self {
            FetchError::Status(s) => format!("HTTP status {s}"),
            FetchError::Network(m) => m.clone(),
            FetchError::Missing(m) => m.clone(),
            FetchError::TooLarge(n) => format!("{n} bytes; images over {max} bytes are refused"),
        }
    }
}

/// Counters for the summary (this run only).
#[derive(Debug, Default)]
pub struct FetchStats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub bytes_downloaded: AtomicU64,
    pub bytes_local: AtomicU64,
    pub cache_hits: AtomicU64,
}

struct Host {
    permits: Semaphore,
    /// Earliest start of the next request, when rate limited.
    next_slot: Mutex<Instant>,
    interval: Option<Duration>,
}

pub struct Fetcher {
    client: reqwest::Client,
    opts: FetchOptions,
    global: Semaphore,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    cache: Cache,
    pub stats: FetchStats,
    jitter: AtomicU64,
}

enum Attempt {
    Done(Fetched),
    Retry {
        why: String,
        after: Option<Duration>,
    },
    Fail(FetchError),
}

impl Fetcher {
    pub fn new(opts: FetchOptions, cache: Cache) -> editshard::Result<Fetcher> {
        editshard::net::ensure_tls_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.idle_timeout)
            .user_agent(concat!("editshard/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(opts.per_host.max(1))
            .redirect(editshard::net::download_redirects())
            .build()
            .map_err(|e| editshard::Error::invalid(format!("cannot build the HTTP client: {e}")))?;
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Ok(Fetcher {
            client,
            global: Semaphore::new(opts.jobs.max(1)),
            opts,
            hosts: Mutex::new(HashMap::new()),
            cache,
            stats: FetchStats::default(),
            jitter: AtomicU64::new(seed | 1),
        })
    }

    pub fn max_image_bytes(&self) -> u64 {
        self.opts.max_image_bytes
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The bytes at `loc`, on disk: a local file where it is (hashed in place), an HTTP
    /// response in the download cache (streamed there, or found there from an earlier run).
    pub async fn get(&self, loc: &Location) -> Result<Fetched, FetchError> {
        let max = self.opts.max_image_bytes;
        match loc {
            Location::Local(p) => {
                let p = p.clone();
                let fetched = blocking(move || hash_file(&p, max)).await?;
                self.stats
                    .bytes_local
                    .fetch_add(fetched.len, Ordering::Relaxed);
                Ok(fetched)
            }
            Location::Http(url) => {
                let path = self.cache.path(url);
                if self.cache.has(url, max) {
                    let p = path.clone();
                    if let Ok(mut fetched) = blocking(move || hash_file(&p, max)).await {
                        // Ours: nobody else writes the cache, so no stamp to check.
                        fetched.stamp = None;
                        self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                        return Ok(fetched);
                    }
                }
                self.cache
                    .prepare(url)
                    .map_err(|e| FetchError::Network(format!("cannot write the cache: {e}")))?;
                let fetched = self.download(url, max, &path).await?;
                kill_point("fetched");
                Ok(fetched)
            }
        }
    }

    /// GET with limits and retries into `dest` (written under a temporary name, renamed when
    /// the body is complete and no larger than `max`).
    pub async fn download(&self, url: &str, max: u64, dest: &Path) -> Result<Fetched, FetchError> {
        let host = self.host(url);
        let mut attempt = 0u32;
        loop {
            let result = {
                let _g = self.global.acquire().await.expect("never closed");
                let _h = host.permits.acquire().await.expect("never closed");
                self.wait_for_slot(&host).await;
                self.stats.requests.fetch_add(1, Ordering::Relaxed);
                self.attempt(url, max, dest).await
            };
            match result {
                Attempt::Done(fetched) => {
                    self.stats
                        .bytes_downloaded
                        .fetch_add(fetched.len, Ordering::Relaxed);
                    return Ok(fetched);
                }
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry { why, after } => {
                    if attempt >= self.opts.retries {
                        return Err(match why.strip_prefix("status ") {
                            Some(code) => code
                                .parse()
                                .map(FetchError::Status)
                                .unwrap_or(FetchError::Network(why)),
                            None => FetchError::Network(format!(
                                "{why} (gave up after {} attempts)",
                                attempt + 1
                            )),
                        });
                    }
                    let wait = match after {
                        Some(a) => a.min(self.opts.max_retry_after),
                        None => self.backoff(attempt),
                    };
                    attempt += 1;
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn attempt(&self, url: &str, max: u64, dest: &Path) -> Attempt {
        let mut resp = match self.client.get(url).send().await {
            Ok(r) => r,
            Err(e) => {
                if e.is_builder() {
                    return Attempt::Fail(FetchError::Network(format!("bad URL: {e}")));
                }
                return Attempt::Retry {
                    why: error_chain(&e),
                    after: None,
                };
            }
        };
        let status = resp.status().as_u16();
        if status != 200 {
            let retryable = matches!(status, 408 | 429 | 500 | 502 | 503 | 504);
            if !retryable {
                return Attempt::Fail(FetchError::Status(status));
            }
            let after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            return Attempt::Retry {
                why: format!("status {status}"),
                after,
            };
        }
        let declared = resp.content_length();
        if let Some(n) = declared.filter(|&n| n > max) {
            return Attempt::Fail(FetchError::TooLarge(n));
        }
        let partial = editshard::atomic::partial_path(dest);
        let file = match editshard::atomic::create_new(&partial) {
            Ok(f) => tokio::fs::File::from_std(f),
            Err(e) => {
                return Attempt::Fail(FetchError::Network(format!(
                    "cannot write the cache: {}: {e}",
                    partial.display()
                )));
            }
        };
        let mut sink = BodySink {
            file: tokio::io::BufWriter::with_capacity(256 << 10, file),
            digest: BytesSeen::new(),
        };
        let streamed = loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if sink.digest.len + chunk.len() as u64 > max {
                        break Err(Attempt::Fail(FetchError::TooLarge(
                            sink.digest.len + chunk.len() as u64,
                        )));
                    }
                    if let Err(e) = sink.write(&chunk).await {
                        break Err(Attempt::Fail(FetchError::Network(format!(
                            "cannot write the cache: {}: {e}",
                            partial.display()
                        ))));
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => {
                    break Err(Attempt::Retry {
                        why: format!(
                            "body cut after {} bytes: {}",
                            sink.digest.len,
                            error_chain(&e)
                        ),
                        after: None,
                    });
                }
            }
        };
        let streamed = match streamed {
            Ok(()) => match declared.filter(|&n| n != sink.digest.len) {
                Some(n) => Err(Attempt::Retry {
                    why: format!(
                        "body is {} bytes but Content-Length said {n}",
                        sink.digest.len
                    ),
                    after: None,
                }),
                None => sink.finish(&partial, dest).await.map_err(|e| {
                    Attempt::Fail(FetchError::Network(format!(
                        "cannot write the cache: {}: {e}",
                        dest.display()
                    )))
                }),
            },
            Err(a) => Err(a),
        };
        match streamed {
            Ok(fetched) => Attempt::Done(fetched),
            Err(a) => {
                let _ = std::fs::remove_file(&partial);
                a
            }
        }
    }

    fn host(&self, url: &str) -> Arc<Host> {
        let name = host_of(url).to_string();
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .entry(name.clone())
            .or_insert_with(|| {
                let rate = self
                    .opts
                    .rates
                    .iter()
                    .find(|(h, _)| *h == name)
                    .or_else(|| self.opts.rates.iter().find(|(h, _)| h == "*"))
                    .map(|(_, r)| *r);
                Arc::new(Host {
                    permits: Semaphore::new(self.opts.per_host.max(1)),
                    next_slot: Mutex::new(Instant::now()),
                    interval: rate
                        .filter(|r| *r > 0.0)
                        .map(|r| Duration::from_secs_f64(1.0 / r)),
                })
            })
            .clone()
    }

    async fn wait_for_slot(&self, host: &Host) {
        let Some(interval) = host.interval else {
            return;
        };
        let start = {
            let mut next = host.next_slot.lock().unwrap_or_else(|e| e.into_inner());
            let start = (*next).max(Instant::now());
            *next = start + interval;
            start
        };
        tokio::time::sleep_until(start.into()).await;
    }

    /// Full jitter: uniform in [d/2, d] where d = backoff * 2^attempt, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let d = self
            .opts
            .backoff
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.opts.max_backoff);
        // xorshift: jitter only spreads retries out, it needs no quality.
        let mut x = self.jitter.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.jitter.store(x, Ordering::Relaxed);
        let frac = (x % 1000) as f64 / 1000.0;
        d.mul_f64(0.5 + frac / 2.0)
    }
}

/// `host[:port]` of an http(s) URL, for per-host limits.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or("")
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Where a response body goes as it arrives: the file, and its [`BytesSeen`].
struct BodySink {
    file: tokio::io::BufWriter<tokio::fs::File>,
    digest: BytesSeen,
}

impl BodySink {
    async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.file.write_all(chunk).await?;
        self.digest.update(chunk);
        Ok(())
    }

    /// Flushes and renames the temporary file to `dest`. Not synced: a cache entry lost in a
    /// crash is only downloaded again, and one that survives was renamed whole.
    async fn finish(mut self, partial: &Path, dest: &Path) -> std::io::Result<Fetched> {
        self.file.flush().await?;
        drop(self.file);
        tokio::fs::rename(partial, dest).await?;
        Ok(self.digest.fetched(dest.to_path_buf(), None))
    }
}

/// Runs blocking file work off the runtime's worker threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FetchError> + Send + 'static,
) -> Result<T, FetchError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(FetchError::Network(format!("a file task failed: {e}"))))
}

/// `Retry-After`: delay-seconds or an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let parts: Vec<&str> = v.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let at = days * 86_400 + h * 3600 + m * 60 + s;
    let now = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(Duration::from_secs((at - now).max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn hosts() {
        assert_eq!(
            host_of("https://farm8.staticflickr.com/1/2.jpg"),
            "farm8.staticflickr.com"
        );
        assert_eq!(host_of("http://127.0.0.1:8080/x?y"), "127.0.0.1:8080");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let f = Fetcher::new(
            FetchOptions {
                backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                ..FetchOptions::default()
            },
            Cache::new(std::env::temp_dir()),
        )
        .unwrap();
        let b0 = f.backoff(0);
        assert!(b0 >= Duration::from_millis(50) && b0 <= Duration::from_millis(100));
        let b3 = f.backoff(3);
        assert!(b3 >= Duration::from_millis(400) && b3 <= Duration::from_millis(800));
        assert!(f.backoff(30) <= Duration::from_secs(1));
    }
}
