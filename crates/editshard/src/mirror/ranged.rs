//! One large shard from a remote SRC (S3, HTTP) into a local DST with ranged GETs in
//! parallel, written in place and hashed as the bytes arrive.
//!
//! - A shard of at least [`RangedDownload::min_bytes`] is cut into ranges of
//!   `range_bytes`; up to `streams` ranged GETs of it run at once (on top of `--jobs` shards
//!   at once). Each chunk of a response is written at its offset into the shard's temporary
//!   file ([`PartialFile`], positioned writes) by one blocking "sink" thread per shard.
//! - SHA-256 is sequential: the manifest's digest can only be computed front to back. The
//!   sink hashes the contiguous prefix as it grows: a chunk that lands at the end of that
//!   prefix is hashed at once, while still in cache, and so are the chunks held after it; a
//!   chunk further ahead is held in memory (a reference to the response's buffer, not a copy)
//!   until the prefix reaches it, up to [`HOLD_BYTES`]; past that it is only written, and read
//!   back from the file (the page cache) when the prefix reaches it. Memory is bounded by
//!   `HOLD_BYTES` plus the chunks on their way to the sink ([`IN_FLIGHT_BYTES`], a semaphore
//!   the range tasks wait on), whatever the ranges' speeds.
//! - A range that fails or is cut short is asked again from where it stopped
//!   ([`RANGE_RETRIES`] times, with back-off, on top of the client's own retries); a request
//!   the server refuses for good (4xx) is not. The shard is published (renamed under its
//!   name, synced) only when every range arrived and the whole file's length and SHA-256 are
//!   the manifest's: a damaged range is refused, and the temporary file removed.
//! - A run killed part way leaves the temporary file, which the next run removes and
//!   downloads again ([`super::shard::remove_stale_partials`]), like a streamed copy's.
//! - A server that ignores `Range` (answers 200 with the whole object) makes the download
//!   [`Downloaded::Unsupported`]: the caller streams the shard in one GET instead.

use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::progress::Progress;
use super::shard::{Expected, damaged};
use crate::crc64::Crc64Nvme;
use crate::error::{Error, ErrorKind, Result};
use crate::storage::Location;

/// When and how a shard is downloaded with ranged GETs (see the module's text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangedDownload {
    /// Shards of at least this many bytes are downloaded in ranges (`u64::MAX`: never).
    pub min_bytes: u64,
    /// Bytes per ranged GET.
    pub range_bytes: u64,
    /// Ranged GETs of one shard at once.
    pub streams: usize,
}

impl Default for RangedDownload {
    /// 32 MiB and up in 8 MiB ranges, 2 at once: 8-16 MiB is what S3 advises for ranged
    /// GETs, and a smaller shard gains little against the `--jobs` shards that already
    /// download at once. 2 streams a shard were as fast as 4 at `--jobs 4` (bench/mirror.sh,
    /// 3.08 against 3.11 s for 765 MB) at half the memory (78 against 150 MB): the other
    /// shards' GETs already fill the link.
    fn default() -> Self {
        RangedDownload {
            min_bytes: 32 << 20,
            range_bytes: 8 << 20,
            streams: 2,
        }
    }
}

/// Chunks on their way from the range tasks to the sink, at most (per shard).
pub const IN_FLIGHT_BYTES: usize = 8 << 20;
/// Chunks ahead of the hashed prefix held in memory, at most (per shard); more are read
/// back from the file (the page cache) when the prefix reaches them. With 4 streams of
/// 8 MiB progressing alike, the three ranges after the first hold up to 24 MiB by the time it
/// is done: a third of that is read back (with the default 2 streams, none is). Peak RSS at
/// `--jobs 4` and 4 streams measured 150-160 MB (170-185 MB holding 32 MiB): held chunks pin
/// the whole read buffers they were cut from.
pub const HOLD_BYTES: usize = 16 << 20;
/// Further requests of a range that failed or was cut short (from where it stopped).
pub const RANGE_RETRIES: u32 = 3;
/// A range task hands its chunks to the sink in runs of about this many bytes.
const SEND_BYTES: usize = 1 << 20;
/// Most chunks written with one `pwritev` (Linux takes up to 1024).
const WRITE_CHUNKS: usize = 1024;
/// Read size when hashing a part of the file that was not held in memory.
const READ_BACK: usize = 1 << 20;
/// Permits of the in-flight semaphore are KiB.
const PERMIT_UNIT: usize = 1024;

/// How a ranged download ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Downloaded {
    /// Published under its name, checked.
    Done,
    /// The source answers ranged GETs with the whole object, or DST is not local: nothing
    /// was written; copy the shard another way.
    Unsupported,
}

/// Downloads `rel` from `src` into the local `dst` in ranges (see the module's text).
pub(crate) async fn download(
    src: &Location,
    dst: &Location,
    rel: &str,
    want: &Expected,
    how: &RangedDownload,
    progress: &Arc<Progress>,
) -> Result<Downloaded> {
    let Some(partial) = dst.create_partial(rel).await? else {
        return Ok(Downloaded::Unsupported);
    };
    let shown = partial.shown().to_string();
    let (tx, rx) = mpsc::unbounded_channel();
    let sink = Sink::new(partial.file(), shown.clone(), HOLD_BYTES);
    let hashing = tokio::task::spawn_blocking(move || sink.run(rx));
    let budget = Arc::new(Semaphore::new(IN_FLIGHT_BYTES / PERMIT_UNIT));
    let step = how.range_bytes.max(1);
    let ranges =
        (0..want.bytes.div_ceil(step)).map(|i| Ok(i * step..((i + 1) * step).min(want.bytes)));
    let job = RangeJob {
        src,
        rel,
        want,
        tx: &tx,
        budget: &budget,
        progress,
    };
    let fetched = futures_util::stream::iter(ranges)
        .try_for_each_concurrent(how.streams.max(1), |range| job.fetch(range))
        .await;
    drop(tx);
    let hashed = hashing
        .await
        .map_err(|e| Error::from(std::io::Error::other(e)).in_shard(shown.clone()));
    // A sink that failed (a full disk) ends every range task: its error is the cause.
    let (bytes, sha, crc) = match (fetched, hashed) {
        (_, Err(e)) | (_, Ok(Err(e))) => return Err(e),
        (Err(e), _) if crate::storage::ranges_unsupported(&e) => {
            return Ok(Downloaded::Unsupported);
        }
        (Err(e), _) => return Err(e),
        (Ok(()), Ok(Ok(done))) => done,
    };
    let what = src.display_of(rel);
    if bytes != want.bytes {
        let detail = format!("{bytes} bytes where the manifest says {}", want.bytes);
        return Err(damaged(&what, detail));
    }
    if let Err(detail) = want.check_digests(&crate::hex::hex(&sha), crc) {
        return Err(damaged(&what, detail));
    }
    progress.learn(rel, crc);
    partial.commit().await?;
    Ok(Downloaded::Done)
}

/// What every range task of one shard shares.
struct RangeJob<'a> {
    src: &'a Location,
    rel: &'a str,
    want: &'a Expected,
    tx: &'a mpsc::UnboundedSender<Piece>,
    budget: &'a Arc<Semaphore>,
    progress: &'a Arc<Progress>,
}

impl RangeJob<'_> {
    /// Fetches `range` into the sink, asking again from where it stopped after a failure.
    async fn fetch(&self, range: Range<u64>) -> Result<()> {
        let mut at = range.start;
        let mut retries = 0;
        loop {
            let e = match self.stream(at..range.end, &mut at).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if retries >= RANGE_RETRIES || !worth_retrying(&e) || self.tx.is_closed() {
                return Err(e);
            }
            retries += 1;
            tokio::time::sleep(Duration::from_millis(200 << retries)).await;
        }
    }

    /// One ranged GET of `range`; `at` follows the bytes handed to the sink.
    async fn stream(&self, range: Range<u64>, at: &mut u64) -> Result<()> {
        let what = self.src.display_of(self.rel);
        let (size, mut body) = self.src.get_range_stream(self.rel, range.clone()).await?;
        if size != self.want.bytes {
            let detail = format!("{size} bytes where the manifest says {}", self.want.bytes);
            return Err(damaged(&what, detail));
        }
        // Chunks go to the sink a run of about SEND_BYTES at a time: one hand-over (and one
        // wake-up of its thread) per chunk of a few KiB was a fifth of the download's time
        // in context switches.
        let mut run = Run::default();
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    // What arrived before the failure is good: a retry starts after it.
                    self.send(&mut run, at, &what).await?;
                    return Err(e);
                }
            };
            if (run.bytes + chunk.len()) as u64 > range.end - *at {
                return Err(Error::malformed(format!(
                    "the server sent more than the {} bytes of the range asked for",
                    range.end - range.start
                ))
                .in_shard(what)
                .at_offset(range.start));
            }
            run.bytes += chunk.len();
            run.chunks.push(chunk);
            if run.bytes >= SEND_BYTES {
                self.send(&mut run, at, &what).await?;
            }
        }
        self.send(&mut run, at, &what).await?;
        if *at != range.end {
            return Err(Error::truncated(format!(
                "the response ended after {} of the range's {} bytes",
                *at - range.start,
                range.end - range.start
            ))
            .in_shard(what)
            .at_offset(*at));
        }
        Ok(())
    }

    /// Hands `run` (the chunks from `*at` on) to the sink and moves `at` past them.
    async fn send(&self, run: &mut Run, at: &mut u64, what: &str) -> Result<()> {
        if run.chunks.is_empty() {
            return Ok(());
        }
        let permits = run
            .bytes
            .div_ceil(PERMIT_UNIT)
            .clamp(1, IN_FLIGHT_BYTES / PERMIT_UNIT) as u32;
        let Ok(permit) = self.budget.clone().acquire_many_owned(permits).await else {
            return Err(sink_gone(what));
        };
        let n = std::mem::take(&mut run.bytes) as u64;
        let piece = Piece {
            at: *at,
            chunks: std::mem::take(&mut run.chunks),
            _permit: permit,
        };
        if self.tx.send(piece).is_err() {
            return Err(sink_gone(what));
        }
        *at += n;
        self.progress.bytes(n);
        Ok(())
    }
}

/// Chunks of one response not yet handed to the sink.
#[derive(Default)]
struct Run {
    chunks: Vec<Bytes>,
    bytes: usize,
}

/// Failures another request may get past: connections cut, bodies ended early, timeouts,
/// 5xx and throttling (what the client did not already retry); not a refusal (4xx), a
/// source that does not match its manifest, nor a server that ignores ranges.
fn worth_retrying(e: &Error) -> bool {
    if crate::storage::ranges_unsupported(e) {
        return false;
    }
    if let ErrorKind::Truncated(_) = e.kind() {
        return true; // a body cut short
    }
    if e.is_corruption() {
        return false;
    }
    match crate::storage::http_status(e) {
        Some(s) => s >= 500 || s == 408 || s == 429,
        None => true,
    }
}

/// The sink ended (it failed, and its error is reported instead).
fn sink_gone(what: &str) -> Error {
    Error::invalid("the download's writer stopped").in_shard(what.to_string())
}

/// A chunk of a response at offset `at` of the shard, with its share of the in-flight
/// budget (returned once the sink has written it).
struct Piece {
    at: u64,
    /// Contiguous, from `at` on.
    chunks: Vec<Bytes>,
    _permit: OwnedSemaphorePermit,
}

/// A chunk written ahead of the hashed prefix.
enum Held {
    Memory(Bytes),
    /// Not kept (over [`HOLD_BYTES`]): read back from the file when the prefix reaches it.
    OnDisk(u64),
}

/// Writes the pieces of one shard in place and hashes the file's contiguous prefix.
struct Sink {
    file: Arc<File>,
    shown: String,
    hasher: Sha256,
    /// The CRC-64/NVME of the same prefix (checked against the manifest's where it records
    /// one, and learned for DST's manifest where it does not).
    crc: Crc64Nvme,
    /// The file's first `hashed` bytes are written and hashed.
    hashed: u64,
    /// Written pieces past `hashed`, by offset (ranges never overlap: a range asked again
    /// starts where its pieces ended).
    ahead: BTreeMap<u64, Held>,
    held_bytes: usize,
    /// Most bytes held in memory ([`HOLD_BYTES`]).
    hold: usize,
    read_buf: Vec<u8>,
}

impl Sink {
    fn new(file: Arc<File>, shown: String, hold: usize) -> Sink {
        Sink {
            file,
            shown,
            hasher: Sha256::new(),
            crc: Crc64Nvme::new(),
            hashed: 0,
            ahead: BTreeMap::new(),
            held_bytes: 0,
            hold,
            read_buf: Vec::new(),
        }
    }

    /// Takes pieces until every sender is gone: the length of the hashed prefix and its
    /// SHA-256 and CRC-64/NVME (the whole file's when every range arrived).
    fn run(mut self, mut rx: mpsc::UnboundedReceiver<Piece>) -> Result<(u64, [u8; 32], u64)> {
        while let Some(piece) = rx.blocking_recv() {
            self.write(piece)?;
        }
        Ok((
            self.hashed,
            self.hasher.finalize().into(),
            self.crc.finalize(),
        ))
    }

    fn io_error(&self, at: u64, e: std::io::Error) -> Error {
        Error::from(e).in_shard(self.shown.clone()).at_offset(at)
    }

    /// Writes `piece` in place with `pwritev`s, then hashes or holds each of its chunks.
    fn write(&mut self, piece: Piece) -> Result<()> {
        let total: usize = piece.chunks.iter().map(Bytes::len).sum();
        let mut done = 0;
        while done < total {
            let mut skip = done;
            let slices: Vec<std::io::IoSlice<'_>> = piece
                .chunks
                .iter()
                .filter_map(|c| {
                    if skip >= c.len() {
                        skip -= c.len();
                        return None;
                    }
                    let slice = std::io::IoSlice::new(&c[skip..]);
                    skip = 0;
                    Some(slice)
                })
                .take(WRITE_CHUNKS)
                .collect();
            let at = piece.at + done as u64;
            match rustix::io::pwritev(&*self.file, &slices, at) {
                Ok(0) => {
                    let e = std::io::Error::new(std::io::ErrorKind::WriteZero, "wrote nothing");
                    return Err(self.io_error(at, e));
                }
                Ok(n) => done += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(self.io_error(at, e.into())),
            }
        }
        let mut at = piece.at;
        for chunk in piece.chunks {
            let n = chunk.len() as u64;
            self.take(at, chunk)?;
            at += n;
        }
        Ok(())
    }

    /// A piece now written: hashed if it continues the prefix, else held.
    fn take(&mut self, at: u64, bytes: Bytes) -> Result<()> {
        if at == self.hashed {
            self.hasher.update(&bytes);
            self.crc.update(&bytes);
            self.hashed += bytes.len() as u64;
            return self.hash_ahead();
        }
        if self.held_bytes + bytes.len() <= self.hold {
            self.held_bytes += bytes.len();
            self.ahead.insert(at, Held::Memory(bytes));
        } else {
            self.ahead.insert(at, Held::OnDisk(bytes.len() as u64));
        }
        Ok(())
    }

    /// Hashes the pieces that now continue the prefix.
    fn hash_ahead(&mut self) -> Result<()> {
        while let Some(entry) = self.ahead.first_entry() {
            if *entry.key() != self.hashed {
                break;
            }
            match entry.remove() {
                Held::Memory(bytes) => {
                    self.held_bytes -= bytes.len();
                    self.hasher.update(&bytes);
                    self.crc.update(&bytes);
                    self.hashed += bytes.len() as u64;
                }
                Held::OnDisk(len) => self.hash_from_file(len)?,
            }
        }
        Ok(())
    }

    fn hash_from_file(&mut self, len: u64) -> Result<()> {
        let end = self.hashed + len;
        self.read_buf.resize(READ_BACK, 0);
        while self.hashed < end {
            let n = (end - self.hashed).min(READ_BACK as u64) as usize;
            let at = self.hashed;
            self.file
                .read_exact_at(&mut self.read_buf[..n], at)
                .map_err(|e| self.io_error(at, e))?;
            self.hasher.update(&self.read_buf[..n]);
            self.crc.update(&self.read_buf[..n]);
            self.hashed += n as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::PartialFile;

    /// The test sink's hold budget: most pieces ahead are held, some read back.
    const HOLD: usize = 3 << 20;

    /// A sink writing into a real temporary file of a local DST (opened as downloads open
    /// it).
    async fn sink_of(dir: &std::path::Path) -> (Sink, PartialFile) {
        let partial = Location::local(dir)
            .create_partial("f")
            .await
            .unwrap()
            .unwrap();
        (Sink::new(partial.file(), "f".into(), HOLD), partial)
    }

    /// Pieces in any order, some held and some over the hold budget (read back), give the
    /// file and the SHA-256 of the whole.
    #[tokio::test]
    async fn hashes_the_whole_file_whatever_order_pieces_arrive_in() {
        let data: Vec<u8> = (0..(HOLD * 3 + 5)).map(|i| (i * 31 % 251) as u8).collect();
        let data = Bytes::from(data);
        let step = HOLD / 4;
        let mut order: Vec<usize> = (0..data.len().div_ceil(step)).collect();
        // The first piece last: everything else is ahead of the prefix until then.
        order.rotate_left(1);
        order.swap(3, 7);
        let budget = Arc::new(Semaphore::new(1));
        let dir = tempfile::tempdir().unwrap();
        let (mut sink, partial) = sink_of(dir.path()).await;
        for i in order {
            let at = i * step;
            let bytes = data.slice(at..(at + step).min(data.len()));
            // Each as two contiguous chunks of one piece.
            let half = bytes.len() / 2;
            let piece = Piece {
                at: at as u64,
                chunks: vec![bytes.slice(..half), bytes.slice(half..)],
                _permit: budget.clone().try_acquire_owned().unwrap(),
            };
            sink.write(piece).unwrap();
        }
        assert!(sink.ahead.is_empty() && sink.held_bytes == 0);
        assert_eq!(sink.hashed, data.len() as u64);
        let sha: [u8; 32] = std::mem::take(&mut sink.hasher).finalize().into();
        assert_eq!(sha, <[u8; 32]>::from(Sha256::digest(&data)));
        drop(sink);
        partial.commit().await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), data);
    }

    #[test]
    fn retries_what_may_pass_and_not_what_will_not() {
        assert!(worth_retrying(&Error::truncated("cut")));
        assert!(!worth_retrying(&Error::malformed("damaged")));
    }
}
