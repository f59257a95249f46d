//! The measuring half of `bench/run.sh`: one measurement per invocation (so that the script can
//! take each one's peak RSS with `/usr/bin/time -v`), each repeated and reported as its median.
//!
//! ```text
//! bench_read plain   DATASET_DIR [--reps N]   read every shard file with a 1 MiB buffer
//! bench_read frames  DATASET_DIR [--reps N]   every frame into one frame-sized buffer, no CRC
//! bench_read sync    DATASET_DIR [--reps N]   MappedShardReader over each shard file, CRC on
//! bench_read reader  DATASET_DIR [--reps N]   ShardReader over each std File (read copies), CRC on
//! bench_read async   DATASET_DIR [--reps N]   Dataset::stream of the local dir (mapped), CRC on
//! bench_read framed  DATASET_DIR [--reps N]   FramedRead<tokio File, ShardDecoder>, CRC on
//! bench_read tar     WDS_DIR     [--reps N]   the same records from WebDataset tars (tar crate)
//! bench_read random  DATASET_DIR [--samples N] [--cold-samples N]
//! bench_read meta    DATASET     [--reps N]   metadata-only scan (what `editshard cat` does)
//! bench_read stream  DATASET     [--reps N]   Dataset::stream, every record with its images
//! bench_read get     DATASET     [--samples N] single records by index through Dataset::get
//! bench_read manifest DATASET_DIR             record, byte and image totals of manifest.json
//! ```
//!
//! DATASET is a directory or an `http://` URL. Output: `key=value` lines on stdout. Times are
//! seconds (`*_s`) or microseconds (`*_us`); `rchar` is the bytes this process read through
//! system calls (`/proc/self/io`), page cache included.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use editshard::manifest::Manifest;
use editshard::read::{
    Dataset, DatasetOptions, Images, MappedShardReader, ReadPlan, StreamOptions, coalesce,
};
use editshard::record::Record;
use editshard::shard::ShardDecoder;
use editshard::shard::ShardReader;
use editshard::shard::{RandomAccessShard, ShardView};
use editshard::storage::{Location, StorageOptions};
use futures_util::StreamExt;
use tokio_util::codec::FramedRead;

type Res<T> = Result<T, String>;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_read: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Opts {
    reps: usize,
    samples: usize,
    cold_samples: usize,
}

fn run() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench_read MODE TARGET [--reps N] [--samples N] [--cold-samples N]";
    let mode = args.next().ok_or(usage)?;
    let target = args.next().ok_or(usage)?;
    let mut o = Opts {
        reps: 5,
        samples: 2000,
        cold_samples: 30,
    };
    while let Some(flag) = args.next() {
        let v: usize = args
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or(format!("{flag} needs a number"))?;
        match flag.as_str() {
            "--reps" => o.reps = v.max(1),
            "--samples" => o.samples = v.max(1),
            "--cold-samples" => o.cold_samples = v,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    match mode.as_str() {
        "plain" => plain(Path::new(&target), &o),
        "frames" => frames(Path::new(&target), &o),
        "sync" => sync(Path::new(&target), &o),
        "reader" => reader(Path::new(&target), &o),
        "async" => stream_local(Path::new(&target), &o),
        "framed" => asynchronous(Path::new(&target), &o),
        "tar" => tar_read(Path::new(&target), &o),
        "random" => random(Path::new(&target), &o),
        "meta" => scan(&target, &o, false),
        "stream" => scan(&target, &o, true),
        "get" => get(&target, &o),
        "manifest" => manifest_totals(Path::new(&target)),
        _ => Err(format!("unknown mode {mode}; {usage}")),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// Runs `f` `reps` times; prints the median, min and max seconds and returns `f`'s last result.
fn timed<T>(key: &str, reps: usize, mut f: impl FnMut() -> Res<T>) -> Res<T> {
    let mut times = Vec::with_capacity(reps);
    let mut last = None;
    for _ in 0..reps {
        let t = Instant::now();
        let out = f()?;
        times.push(t.elapsed());
        last = Some(out);
    }
    let min = times.iter().min().copied().unwrap_or_default();
    let max = times.iter().max().copied().unwrap_or_default();
    println!("{key}_s={:.6}", median(times).as_secs_f64());
    println!("{key}_min_s={:.6}", min.as_secs_f64());
    println!("{key}_max_s={:.6}", max.as_secs_f64());
    last.ok_or_else(|| "no repetition ran".to_string())
}

fn rchar() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("rchar:").map(|v| v.trim().parse().ok()))
                .flatten()
        })
        .unwrap_or(0)
}

fn load_manifest(dir: &Path) -> Res<Manifest> {
    let path = dir.join("manifest.json");
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Manifest::parse(&bytes).map_err(|e| e.to_string())
}

fn shard_paths(dir: &Path) -> Res<Vec<PathBuf>> {
    Ok(load_manifest(dir)?
        .shards
        .iter()
        .map(|s| dir.join(&s.path))
        .collect())
}

fn open(path: &Path) -> Res<File> {
    File::open(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn total_len(paths: &[PathBuf]) -> Res<u64> {
    paths.iter().try_fold(0, |n, p| {
        Ok(n + std::fs::metadata(p)
            .map_err(|e| format!("{}: {e}", p.display()))?
            .len())
    })
}

/// Sum of image lengths: a use of every record that the optimizer cannot drop.
/// Records read and their image bytes, counted as a reader hands them over.
#[derive(Default)]
struct Tally {
    records: u64,
    images: u64,
}

impl Tally {
    fn add<E: std::fmt::Display>(&mut self, r: Result<Record, E>) -> Res<()> {
        let r = r.map_err(|e| e.to_string())?;
        self.records += 1;
        self.images += image_bytes(&r);
        Ok(())
    }
}

fn image_bytes(r: &Record) -> u64 {
    r.images()
        .map(|i| i.data.as_ref().map_or(0, |d| d.len() as u64))
        .sum()
}

fn plain(dir: &Path, o: &Opts) -> Res<()> {
    let paths = shard_paths(dir)?;
    println!("bytes={}", total_len(&paths)?);
    let mut buf = vec![0u8; 1 << 20];
    let n = timed("plain", o.reps, || {
        let mut total = 0u64;
        for p in &paths {
            let mut f = open(p)?;
            loop {
                let n = f.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
        }
        Ok(total)
    })?;
    println!("read={n}");
    Ok(())
}

/// Every frame read whole into one reused buffer of its size, no CRC, no decoding: the
/// reader's memory traffic without its work (a frame holds whole records, so a reader must
/// hold one frame at a time).
fn frames(dir: &Path, o: &Opts) -> Res<()> {
    use std::os::unix::fs::FileExt;
    let paths = shard_paths(dir)?;
    println!("bytes={}", total_len(&paths)?);
    let mut layout = Vec::new();
    let mut largest = 0u64;
    for p in &paths {
        let shard = RandomAccessShard::open(open(p)?, p.display().to_string())
            .map_err(|e| e.to_string())?;
        let spans: Vec<(u64, u64)> = shard
            .index()
            .frames()
            .iter()
            .map(|f| (f.offset, f.len))
            .collect();
        largest = spans.iter().map(|f| f.1).fold(largest, u64::max);
        layout.push((p.clone(), spans));
    }
    println!("frames={}", layout.iter().map(|l| l.1.len()).sum::<usize>());
    println!("largest_frame={largest}");
    // Allocated and touched once: the reader recycles its frame buffer too.
    let mut buf = vec![0u8; largest as usize];
    let n = timed("frames", o.reps, || {
        let mut total = 0u64;
        for (p, spans) in &layout {
            let f = open(p)?;
            for &(offset, len) in spans {
                f.read_exact_at(&mut buf[..len as usize], offset)
                    .map_err(|e| e.to_string())?;
                total += len;
            }
        }
        Ok(total)
    })?;
    println!("read={n}");
    Ok(())
}

/// Each shard file mapped and read front to back (`MappedShardReader`), zero-copy.
fn sync(dir: &Path, o: &Opts) -> Res<()> {
    let paths = shard_paths(dir)?;
    println!("bytes={}", total_len(&paths)?);
    let (records, images) = timed("sync", o.reps, || {
        let mut tally = Tally::default();
        for p in &paths {
            let reader =
                MappedShardReader::open(p, Default::default()).map_err(|e| e.to_string())?;
            for r in reader {
                tally.add(r)?;
            }
        }
        Ok((tally.records, tally.images))
    })?;
    println!("records={records}\nimage_bytes={images}");
    Ok(())
}

/// The format's `ShardReader` over a `std::fs::File`: what any `Read` gets (one copy).
fn reader(dir: &Path, o: &Opts) -> Res<()> {
    let paths = shard_paths(dir)?;
    println!("bytes={}", total_len(&paths)?);
    let (records, images) = timed("reader", o.reps, || {
        let mut tally = Tally::default();
        for p in &paths {
            for r in ShardReader::new(open(p)?).named(p.display().to_string()) {
                tally.add(r)?;
            }
        }
        Ok((tally.records, tally.images))
    })?;
    println!("records={records}\nimage_bytes={images}");
    Ok(())
}

fn runtime() -> Res<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// `Dataset::stream` of a local directory, opened once: the library's async stream (local
/// shards mapped, populated ahead on a blocking thread, decoded zero-copy).
fn stream_local(dir: &Path, o: &Opts) -> Res<()> {
    let paths = shard_paths(dir)?;
    println!("bytes={}", total_len(&paths)?);
    let rt = runtime()?;
    let target = dir.display().to_string();
    let ds = rt.block_on(open_dataset(&target))?;
    let (records, images) = timed("async", o.reps, || {
        rt.block_on(async {
            let mut tally = Tally::default();
            let mut s = ds.stream(StreamOptions::default());
            while let Some(r) = s.next().await {
                tally.add(r)?;
            }
            Ok((tally.records, tally.images))
        })
    })?;
    println!("records={records}\nimage_bytes={images}");
    Ok(())
}

/// tokio's `File` under `FramedRead<_, ShardDecoder>`: what a generic `AsyncRead` gets
/// (tokio reads into its own buffer on a blocking thread, then copies into the decoder's).
fn asynchronous(dir: &Path, o: &Opts) -> Res<()> {
    let paths = shard_paths(dir)?;
    println!("bytes={}", total_len(&paths)?);
    let rt = runtime()?;
    let (records, images) = timed("framed", o.reps, || {
        rt.block_on(async {
            let mut tally = Tally::default();
            for p in &paths {
                let f = tokio::fs::File::open(p)
                    .await
                    .map_err(|e| format!("{}: {e}", p.display()))?;
                let mut frames = FramedRead::with_capacity(f, ShardDecoder::new(), 1 << 20);
                while let Some(r) = frames.next().await {
                    tally.add(r)?;
                }
            }
            Ok((tally.records, tally.images))
        })
    })?;
    println!("records={records}\nimage_bytes={images}");
    Ok(())
}

/// WebDataset tars as a WebDataset loader reads them: members in order, grouped into samples
/// by the key before the first dot, each member's bytes in memory and `KEY.json` parsed.
fn tar_read(dir: &Path, o: &Opts) -> Res<()> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tar"))
        .collect();
    paths.sort();
    println!("bytes={}", total_len(&paths)?);
    let (samples, images) = timed("tar", o.reps, || {
        let (mut samples, mut images) = (0u64, 0u64);
        for p in &paths {
            let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 20, open(p)?));
            let mut key = String::new();
            let mut members: Vec<(String, Vec<u8>)> = Vec::new();
            let mut flush = |members: &mut Vec<(String, Vec<u8>)>| -> Res<()> {
                if members.is_empty() {
                    return Ok(());
                }
                for (name, data) in members.drain(..) {
                    if name.ends_with(".json") {
                        let v: serde_json::Value =
                            serde_json::from_slice(&data).map_err(|e| e.to_string())?;
                        std::hint::black_box(v);
                    } else {
                        images += data.len() as u64;
                    }
                }
                samples += 1;
                Ok(())
            };
            for entry in archive.entries().map_err(|e| e.to_string())? {
                let mut entry = entry.map_err(|e| e.to_string())?;
                let name = entry
                    .path()
                    .map_err(|e| e.to_string())?
                    .to_string_lossy()
                    .into_owned();
                let k = name.split('.').next().unwrap_or("").to_string();
                if k != key {
                    flush(&mut members)?;
                    key = k;
                }
                let mut data = Vec::with_capacity(entry.size() as usize);
                entry.read_to_end(&mut data).map_err(|e| e.to_string())?;
                members.push((name, data));
            }
            flush(&mut members)?;
        }
        Ok((samples, images))
    })?;
    println!("records={samples}\nimage_bytes={images}");
    Ok(())
}

unsafe extern "C" {
    fn posix_fadvise(fd: i32, offset: i64, len: i64, advice: i32) -> i32;
}

/// Empties the page cache: `/proc/sys/vm/drop_caches` when writable (root), else
/// `POSIX_FADV_DONTNEED` on the shard files (their pages only).
fn drop_cache(files: &[File]) -> &'static str {
    if std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok() {
        return "drop_caches";
    }
    use std::os::fd::AsRawFd;
    for f in files {
        // SAFETY: a valid open descriptor; the call only advises the kernel.
        unsafe { posix_fadvise(f.as_raw_fd(), 0, 0, 4) };
    }
    "fadvise_dontneed"
}

fn random(dir: &Path, o: &Opts) -> Res<()> {
    let paths = shard_paths(dir)?;
    let mut shards = Vec::new();
    let mut files = Vec::new();
    for p in &paths {
        // Mapped, as `Dataset` reads local shards: a record is a zero-copy slice of the map.
        let map = editshard::storage::map_file(p).map_err(|e| format!("{}: {e}", p.display()))?;
        files.push(open(p)?);
        shards.push(
            RandomAccessShard::open(map, p.display().to_string()).map_err(|e| e.to_string())?,
        );
    }
    let views: Vec<ShardView> = shards.iter().map(|s| s.view().clone()).collect();
    let total: usize = shards.iter().map(|s| s.len()).sum();
    if total == 0 {
        return Err("no records".into());
    }
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut pick = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut g = (state % total as u64) as usize;
        for (s, shard) in shards.iter().enumerate() {
            if g < shard.len() {
                return (s, g);
            }
            g -= shard.len();
        }
        unreachable!("index below the total")
    };
    let samples: Vec<(usize, usize)> = (0..o.samples).map(|_| pick()).collect();
    let cold: Vec<(usize, usize)> = (0..o.cold_samples).map(|_| pick()).collect();
    let span = |s: usize, i: usize| {
        let r = views[s].index().record_span(i);
        (r.start, (r.end - r.start) as usize)
    };
    // The baselines read into buffers allocated (and touched) once, so they time the copy
    // from the page cache alone.
    let largest = samples
        .iter()
        .chain(&cold)
        .map(|&(s, i)| span(s, i).1)
        .max()
        .unwrap_or(0);
    let mut buf = vec![0u8; largest];
    let mut pread = |s: usize, i: usize| -> Res<Duration> {
        use std::os::unix::fs::FileExt;
        let (off, len) = span(s, i);
        let t = Instant::now();
        files[s]
            .read_exact_at(&mut buf[..len], off)
            .map_err(|e| e.to_string())?;
        Ok(t.elapsed())
    };
    let get = |s: usize, i: usize| -> Res<(Duration, u64)> {
        let t = Instant::now();
        let r = shards[s].get(i).map_err(|e| e.to_string())?;
        let d = t.elapsed();
        Ok((d, image_bytes(&r)))
    };
    let mut mbuf = vec![0u8; 1 << 20];
    let mut meta_pread = |s: usize, i: usize| -> Res<Duration> {
        use std::os::unix::fs::FileExt;
        let loc = shards[s].index().record(i);
        let len = loc.meta_len as usize;
        if mbuf.len() < len {
            mbuf.resize(len, 0);
        }
        let t = Instant::now();
        files[s]
            .read_exact_at(&mut mbuf[..len], loc.meta_offset)
            .map_err(|e| e.to_string())?;
        Ok(t.elapsed())
    };
    let meta = |s: usize, i: usize| -> Res<Duration> {
        let t = Instant::now();
        std::hint::black_box(shards[s].metadata(i).map_err(|e| e.to_string())?);
        Ok(t.elapsed())
    };

    // Warm: every sampled record read once first (timed apart: the first read of a record
    // in this process maps its pages and hashes its images), then each timed.
    let mut t_first = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for &(s, i) in &samples {
        let (d, _) = get(s, i)?;
        if seen.insert((s, i)) {
            t_first.push(d);
        }
    }
    t_first.sort();
    let (mut t_get, mut t_pread) = (Vec::new(), Vec::new());
    let (mut t_meta, mut t_meta_pread) = (Vec::new(), Vec::new());
    let mut bytes = 0u64;
    for &(s, i) in &samples {
        let (d, b) = get(s, i)?;
        t_get.push(d);
        bytes += b;
        t_pread.push(pread(s, i)?);
        t_meta.push(meta(s, i)?);
        t_meta_pread.push(meta_pread(s, i)?);
    }
    // Metadata reads back to back, as a metadata scan or a filter over ids makes them: above,
    // each one follows a whole 2 MB record through the CPU caches and pays for bringing the
    // decompressor's state back in.
    let (mut t_meta_alone, mut t_meta_pread_alone) = (Vec::new(), Vec::new());
    for &(s, i) in &samples {
        t_meta_alone.push(meta(s, i)?);
    }
    for &(s, i) in &samples {
        t_meta_pread_alone.push(meta_pread(s, i)?);
    }
    for v in [
        &mut t_get,
        &mut t_pread,
        &mut t_meta,
        &mut t_meta_pread,
        &mut t_meta_alone,
        &mut t_meta_pread_alone,
    ] {
        v.sort();
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("samples={}", samples.len());
    println!("record_mean_bytes={}", bytes / samples.len() as u64);
    for (key, v) in [
        ("warm_get", &t_get),
        ("warm_pread", &t_pread),
        ("warm_meta", &t_meta),
        ("warm_meta_pread", &t_meta_pread),
        ("meta_alone", &t_meta_alone),
        ("meta_pread_alone", &t_meta_pread_alone),
        ("first_get", &t_first),
    ] {
        println!("{key}_p50_us={:.1}", us(percentile(v, 50)));
        println!("{key}_p99_us={:.1}", us(percentile(v, 99)));
    }

    // Cold: the page cache emptied before every read (footers stay parsed in memory, as in
    // an open dataset). Pages mapped into a process cannot be dropped, so the warm maps go
    // first and each cold read gets a fresh map of its shard, read as `Dataset` reads a
    // mapped record: populated (one read-ahead of the whole span), then decoded.
    drop(shards);
    if !cold.is_empty() {
        let (mut c_get, mut c_pread) = (Vec::new(), Vec::new());
        let mut method = "";
        for &(s, i) in &cold {
            let map = editshard::storage::map_file(&paths[s]).map_err(|e| e.to_string())?;
            method = drop_cache(&files);
            let (off, len) = span(s, i);
            let t = Instant::now();
            let range = off as usize..off as usize + len;
            editshard::storage::populate_map(&map, range.clone());
            let r = views[s]
                .decode(i, &map.slice(range), off, true)
                .map_err(|e| e.to_string())?;
            c_get.push(t.elapsed());
            std::hint::black_box(image_bytes(&r));
            drop(map);
            drop_cache(&files);
            c_pread.push(pread(s, i)?);
        }
        c_get.sort();
        c_pread.sort();
        println!("cold_method={method}");
        println!("cold_samples={}", cold.len());
        for (key, v) in [("cold_get", &c_get), ("cold_pread", &c_pread)] {
            println!("{key}_p50_us={:.1}", us(percentile(v, 50)));
            println!("{key}_p99_us={:.1}", us(percentile(v, 99)));
        }
    }
    Ok(())
}

async fn open_dataset(target: &str) -> Res<Dataset> {
    open_dataset_with(target, DatasetOptions::default()).await
}

async fn open_dataset_with(target: &str, options: DatasetOptions) -> Res<Dataset> {
    let location =
        Location::parse(target, &StorageOptions::default()).map_err(|e| e.to_string())?;
    Dataset::open_with(location, options)
        .await
        .map_err(|e| e.to_string())
}

/// A fresh `Dataset::open` per repetition (manifest and footers included), then every record:
/// metadata only through `Dataset::reader` (as `editshard cat` does), or whole through
/// `Dataset::stream`.
fn scan(target: &str, o: &Opts, full: bool) -> Res<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let before = rchar();
    let key = if full { "stream" } else { "meta" };
    let (records, images) = timed(key, o.reps, || {
        rt.block_on(async {
            // Local shards read with `pread`s, not mapped: `rchar` counts the bytes of read
            // calls only, and this row compares the bytes each scan needs.
            let options = DatasetOptions {
                map_local: false,
                ..DatasetOptions::default()
            };
            let ds = open_dataset_with(target, options).await?;
            let mut tally = Tally::default();
            if full {
                let mut s = ds.stream(StreamOptions::default());
                while let Some(r) = s.next().await {
                    tally.add(r)?;
                }
            } else {
                let plan = ReadPlan::default().images(Images::None).batch(256);
                let mut s = ds.reader(plan);
                while let Some(r) = s.next().await {
                    tally.add(r)?;
                }
            }
            Ok((tally.records, tally.images))
        })
    })?;
    println!("records={records}\nimage_bytes={images}");
    println!("rchar_per_rep={}", (rchar() - before) / o.reps as u64);
    Ok(())
}

fn get(target: &str, o: &Opts) -> Res<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let ds = open_dataset(target).await?;
        let n = ds.len();
        if n == 0 {
            return Err("no records".to_string());
        }
        let opts = ds.options().clone();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut lat = Vec::with_capacity(o.samples);
        let (mut split, mut predicted) = (0u64, 0u64);
        for _ in 0..o.samples {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let index = state % n;
            let t = Instant::now();
            let r = ds.get(index).await.map_err(|e| e.to_string())?;
            lat.push(t.elapsed());
            std::hint::black_box(image_bytes(&r));
            // The requests the reader's rule predicts: the whole span when it holds at most
            // `span_slack` bytes of other records, else metadata and images coalesced.
            let (s, local) = ds.locate(index).ok_or("index out of range")?;
            let shard = ds.shard(s).await.map_err(|e| e.to_string())?;
            let ix = shard.index();
            let rec = &ix.record(local);
            let meta = rec.meta_offset..rec.meta_offset + u64::from(rec.meta_len);
            let ranges: Vec<std::ops::Range<u64>> = std::iter::once(meta)
                .chain(ix.record_blobs(local).iter().map(|&b| {
                    let blob = ix.blob(b);
                    blob.offset..blob.offset + u64::from(blob.len)
                }))
                .collect();
            let needed: u64 = ranges.iter().map(|r| r.end - r.start).sum();
            let span = ix.record_span(local);
            if (span.end - span.start).saturating_sub(needed) <= opts.span_slack {
                predicted += 1;
            } else {
                split += 1;
                predicted += coalesce(ranges, opts.coalesce_gap, opts.max_request).len() as u64;
            }
        }
        lat.sort();
        println!("records={}", o.samples);
        println!("split_records={split}\npredicted_requests={predicted}");
        println!(
            "get_p50_us={:.1}\nget_p99_us={:.1}",
            percentile(&lat, 50).as_secs_f64() * 1e6,
            percentile(&lat, 99).as_secs_f64() * 1e6
        );
        Ok(())
    })
}

fn manifest_totals(dir: &Path) -> Res<()> {
    let m = load_manifest(dir)?;
    println!("records={}", m.records);
    println!("shards={}", m.shards.len());
    println!("shard_bytes={}", m.bytes);
    println!("images_referenced={}", m.images.referenced);
    println!("images_stored={}", m.images.stored);
    println!("image_bytes_referenced={}", m.images.bytes_referenced);
    println!("image_bytes_stored={}", m.images.bytes_stored);
    for (k, v) in &m.kinds {
        println!("kind_{k}={v}");
    }
    // A sanity check that the manifest's shards are what is on disk.
    let paths = shard_paths(dir)?;
    let on_disk = total_len(&paths)?;
    if on_disk != m.bytes {
        return Err(format!(
            "manifest says {} shard bytes, files hold {on_disk}",
            m.bytes
        ));
    }
    Ok(())
}
