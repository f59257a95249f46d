//! Reading benchmarks (plain `std::time`, no harness):
//! - the async streaming reader over local files against a plain read of the same bytes,
//!   local shards mapped (the default) and read with copies (`map_local: false`);
//! - the sync readers of one shard file: `MappedShardReader` and `ShardReader` over a `File`;
//! - random-access latency of single records from a local shard (footer cached), mapped and
//!   not.
//!
//! `cargo bench -p editshard --bench read` (set EDITSHARD_BENCH_RECORDS to change the dataset size).

use std::time::{Duration, Instant};

use bytes::Bytes;
use editshard::read::{Dataset, DatasetOptions, MappedShardReader, StreamOptions};
use editshard::record::{Image, Kind, Record, Turn};
use editshard::shard::Verify;
use editshard::storage::Location;
use editshard::write::DatasetWriter;
use futures_util::{StreamExt, TryStreamExt};

fn image(seed: u64, len: usize) -> Image {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    Image::with_info(Bytes::from(data), "image/jpeg".into(), 512, 512)
}

fn record(i: u64) -> Record {
    let mut turn = Turn::new(image(2 * i + 1, 48_000));
    turn.instruction = Some(format!(
        "Make the sky in picture {i} a deep purple at dusk."
    ));
    turn.edit_type = Some("Change overall color tone".into());
    Record::new(
        format!("sft/images/{i}.png"),
        Kind::Sft,
        image(2 * i, 64_000),
        vec![turn],
    )
}

fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let out = f();
        best = best.min(t.elapsed());
        last = Some(out);
    }
    (best, last.expect("at least one run"))
}

fn main() {
    let n: u64 = std::env::var("EDITSHARD_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = DatasetWriter::create(dir.path())
        .expect("create")
        .target_shard_bytes(32 << 20);
    for i in 0..n {
        w.append(&record(i)).expect("append");
    }
    let manifest = w.finish().expect("finish");
    let total = manifest.bytes;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let loc = Location::local(dir.path());
    let mb = |d: Duration| total as f64 / d.as_secs_f64() / 1e6;
    println!(
        "dataset: {n} records, {} shards, {:.1} MB",
        manifest.shards.len(),
        total as f64 / 1e6
    );

    // Plain read of the same bytes, through the same storage layer (no decoding).
    // Both loops run as spawned tasks, so neither pays for waking the benchmark thread.
    let paths: Vec<String> = manifest.shards.iter().map(|s| s.path.clone()).collect();
    let (plain, bytes) = best(5, || {
        let (loc, paths) = (loc.clone(), paths.clone());
        rt.block_on(rt.spawn(async move {
            let mut sum = 0u64;
            for path in &paths {
                let mut chunks = loc.get_stream(path).await.expect("stream");
                while let Some(chunk) = chunks.try_next().await.expect("read") {
                    sum += chunk.len() as u64;
                }
            }
            sum
        }))
        .expect("task")
    });
    assert_eq!(bytes, total);
    println!(
        "plain read:              {plain:>10.2?}  {:>8.0} MB/s",
        mb(plain)
    );

    for (verify, map_local) in [
        (Verify::Full, true),
        (Verify::Crc, true),
        (Verify::Crc, false),
        (Verify::None, true),
    ] {
        let mut options = DatasetOptions::default();
        options.read.verify = verify;
        options.map_local = map_local;
        let ds = rt
            .block_on(Dataset::open_with(loc.clone(), options))
            .expect("open");
        let (t, count) = best(5, || {
            let ds = ds.clone();
            rt.block_on(rt.spawn(async move {
                let mut s = ds.stream(StreamOptions::default());
                let mut count = 0u64;
                while let Some(r) = s.next().await {
                    r.expect("record");
                    count += 1;
                }
                count
            }))
            .expect("task")
        });
        assert_eq!(count, n);
        println!(
            "stream (verify={:<4}, mapped={map_local:<5}): {t:>10.2?}  {:>8.0} MB/s  {:.2}x plain",
            verify.name(),
            mb(t),
            t.as_secs_f64() / plain.as_secs_f64()
        );
    }

    // The sync readers over each shard file, CRC on.
    let files: Vec<std::path::PathBuf> = paths.iter().map(|p| dir.path().join(p)).collect();
    let (mapped, count) = best(5, || {
        let mut count = 0u64;
        for f in &files {
            for r in MappedShardReader::open(f, Default::default()).expect("map") {
                r.expect("record");
                count += 1;
            }
        }
        count
    });
    assert_eq!(count, n);
    let (copied, count) = best(5, || {
        let mut count = 0u64;
        for f in &files {
            let file = std::fs::File::open(f).expect("open");
            for r in editshard::shard::ShardReader::new(file) {
                r.expect("record");
                count += 1;
            }
        }
        count
    });
    assert_eq!(count, n);
    for (name, t) in [("MappedShardReader", mapped), ("ShardReader(File)", copied)] {
        println!(
            "sync {name:<18}:  {t:>10.2?}  {:>8.0} MB/s  {:.2}x plain",
            mb(t),
            t.as_secs_f64() / plain.as_secs_f64()
        );
    }

    // Random access: footers loaded first, then single records at pseudo-random indices.
    for map_local in [true, false] {
        random(&rt, &loc, n, map_local);
    }
}

fn random(rt: &tokio::runtime::Runtime, loc: &Location, n: u64, map_local: bool) {
    let options = DatasetOptions {
        map_local,
        ..DatasetOptions::default()
    };
    let ds = rt
        .block_on(Dataset::open_with(loc.clone(), options))
        .expect("open");
    rt.block_on(async {
        for s in 0..ds.manifest().shards.len() {
            ds.shard(s).await.expect("footer");
        }
    });
    let mut latencies = Vec::new();
    let mut x = 12345u64;
    for _ in 0..2000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let i = (x >> 33) % n;
        let t = Instant::now();
        let r = rt.block_on(ds.get(i)).expect("get");
        latencies.push(t.elapsed());
        assert_eq!(r.id, format!("sft/images/{i}.png"));
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    println!(
        "random get (local, mapped={map_local:<5}): p50 {:?}  p90 {:?}  p99 {:?}",
        pct(0.5),
        pct(0.9),
        pct(0.99)
    );
}
