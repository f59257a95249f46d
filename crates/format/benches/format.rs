//! Format benchmarks: sequential read with CRC checks against a plain read of the same file,
//! random access, and the hot paths (frame decode, CRC, footer parse, record encode).
//!
//! `cargo bench -p editshard-format --bench format` (set `EDITSHARD_BENCH_RECORDS` to change the size; default
//! 200 records of a ~200 KB source and a ~1 MB edit, about 240 MB). Every figure is the median
//! of several runs, and throughputs are also given as a ratio to the plain read measured in
//! the same run, which is the physical limit for this machine's page cache.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use editshard_format::format::{Limits, ShardIndex, wire::crc32};
use editshard_format::record::{Image, Kind, Record, Turn};
use editshard_format::shard::RandomAccessShard;
use editshard_format::shard::ShardDecoder;
use editshard_format::shard::ShardReader;
use editshard_format::shard::ShardWriter;
use futures_util::StreamExt;
use tokio_util::codec::FramedRead;

fn noise(seed: u64, len: usize) -> Bytes {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v.extend_from_slice(&s.to_le_bytes());
    }
    v.truncate(len);
    Bytes::from(v)
}

fn record(n: u64) -> Record {
    let src = Image::with_info(
        noise(n, 150_000 + (n as usize * 7919) % 250_000),
        "image/jpeg".into(),
        1024,
        768,
    );
    let edit = Image::with_info(
        noise(n + 1_000_000, 700_000 + (n as usize * 104_729) % 800_000),
        "image/png".into(),
        1248,
        832,
    );
    let mut turn = Turn::new(edit);
    turn.instruction = Some(format!(
        "Remove the red flag {n} from the upper right of the image, seamlessly extending the clear blue sky, dune and fence behind it."
    ));
    turn.short_instruction = Some("Flag removed; extend sky.".into());
    turn.edit_type = Some("Remove an existing object".into());
    turn.category = Some("Object-Level Semantic".into());
    Record::new(
        format!("sft/images/positive-edit/{n}.png"),
        Kind::Sft,
        src,
        vec![turn],
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn plain_read(path: &Path) -> u64 {
    let mut f = File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            return total;
        }
        total += n as u64;
    }
}

fn main() {
    let n: u64 = std::env::var("EDITSHARD_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.esd");
    let records: Vec<Record> = (0..n).map(record).collect();
    let mut w = ShardWriter::new(BufWriter::new(File::create(&path).unwrap())).unwrap();
    let t = Instant::now();
    for r in &records {
        w.append(r).unwrap();
    }
    let (_, summary) = w.finish().unwrap();
    let write_time = t.elapsed();
    let size = summary.bytes;
    let runs = 7;
    println!("shard: {n} records, {:.1} MB", size as f64 / 1e6);

    plain_read(&path); // warm the page cache
    let plain = time(runs, || plain_read(&path));
    let sync = time(runs, || {
        ShardReader::new(File::open(&path).unwrap())
            .try_fold(0usize, |n, r| r.map(|_| n + 1))
            .unwrap()
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let asynchronous = time(runs, || {
        rt.block_on(async {
            let f = tokio::fs::File::open(&path).await.unwrap();
            let mut s = FramedRead::with_capacity(f, ShardDecoder::new(), 1 << 20);
            let mut k = 0;
            while let Some(r) = s.next().await {
                r.unwrap();
                k += 1;
            }
            k
        })
    });
    let base = mbps(size, plain);
    println!(
        "{:<44} {:>9} {:>10}",
        "sequential read (page cache)", "MB/s", "vs plain"
    );
    for (name, d) in [
        ("plain read, 1 MiB buffer (baseline)", plain),
        ("ShardReader, sync, CRC on", sync),
        ("ShardDecoder + FramedRead, async, CRC on", asynchronous),
    ] {
        println!(
            "{name:<44} {:>9.0} {:>10.2}",
            mbps(size, d),
            mbps(size, d) / base
        );
    }
    println!(
        "{:<44} {:>9.0}",
        "ShardWriter (incl. SHA-256 of every image)",
        mbps(size, write_time)
    );

    // Random access from a warm local shard: one ranged read (pread) per record.
    let shard = RandomAccessShard::open(File::open(&path).unwrap(), "bench.esd").unwrap();
    let mut lat: Vec<Duration> = Vec::new();
    for round in 0..5 {
        for i in 0..shard.len() {
            let j = (i * 7919 + round) % shard.len();
            let t = Instant::now();
            std::hint::black_box(shard.get(j).unwrap());
            lat.push(t.elapsed());
        }
    }
    lat.sort();
    let meta_lat = median(
        (0..shard.len())
            .map(|i| {
                let t = Instant::now();
                std::hint::black_box(shard.metadata(i).unwrap());
                t.elapsed()
            })
            .collect(),
    );
    println!(
        "random access, whole record (~1.2 MB): p50 {:?}, p99 {:?}",
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100]
    );
    println!("random access, metadata only: p50 {meta_lat:?}");

    // Hot paths.
    let blob = noise(7, 1 << 20);
    let crc = time(51, || crc32(&blob));
    println!(
        "CRC32 of 1 MiB: {:.1} GB/s",
        (1 << 20) as f64 / crc.as_secs_f64() / 1e9
    );
    // The manifest's whole-shard digests, computed on the writer's hashing thread: the
    // CRC-64/NVME must stay a small fraction of the SHA-256 beside it.
    let crc64 = time(51, || editshard_format::crc64::crc64nvme(&blob));
    let sha = time(51, || {
        use sha2::Digest;
        sha2::Sha256::digest(&blob)
    });
    println!(
        "CRC-64/NVME of 1 MiB: {:.1} GB/s; SHA-256: {:.2} GB/s",
        (1 << 20) as f64 / crc64.as_secs_f64() / 1e9,
        (1 << 20) as f64 / sha.as_secs_f64() / 1e9
    );
    let footer = {
        let f = File::open(&path).unwrap();
        editshard_format::shard::ReadAt::read_at(
            &f,
            summary.footer_offset,
            summary.footer_len as usize,
        )
        .unwrap()
    };
    let parse = time(51, || {
        ShardIndex::parse_footer(&footer, summary.footer_offset, &Limits::DEFAULT).unwrap()
    });
    println!(
        "footer parse ({} records, {} bytes): {parse:?}",
        n,
        footer.len()
    );
    let small: Vec<Record> = (0..100)
        .map(|i| {
            let mut r = record(i);
            for img in r.images_mut() {
                let d = img.data.take().unwrap().slice(..64);
                *img = Image::with_info(d, img.media_type.clone(), img.width, img.height);
            }
            r
        })
        .collect();
    let encode = time(21, || {
        let mut w = ShardWriter::new(Vec::with_capacity(1 << 20)).unwrap();
        for r in &small {
            w.append(r).unwrap();
        }
        w.finish().unwrap().0.len()
    });
    println!(
        "record encode (metadata + framing, 64-byte images): {:.1} µs/record",
        encode.as_secs_f64() * 1e6 / 100.0
    );
    let small_bytes = {
        let mut w = ShardWriter::new(Vec::new()).unwrap();
        for r in &small {
            w.append(r).unwrap();
        }
        w.finish().unwrap().0
    };
    let decode = time(21, || {
        ShardReader::new(&small_bytes[..])
            .try_fold(0usize, |n, r| r.map(|_| n + 1))
            .unwrap()
    });
    println!(
        "frame decode (same records): {:.1} µs/record",
        decode.as_secs_f64() * 1e6 / 100.0
    );

    metadata_decode(&records);
}

/// Reading one record's metadata at random (`RandomAccessShard::metadata`: CRC, decompress,
/// decode) from a 1.0 shard (codec 1, each block alone) and a 1.1 shard (codec 2, with the
/// shard's dictionary) of the same records, as a ratio: what the dictionary costs a reader.
fn metadata_decode(records: &[Record]) {
    use editshard_format::shard::WriterOptions;
    let shard = |minor_version: u16| {
        let options = WriterOptions {
            minor_version,
            ..Default::default()
        };
        let mut w = ShardWriter::with_options(Vec::new(), options).unwrap();
        for r in records {
            w.append(r).unwrap();
        }
        let (bytes, summary) = w.finish().unwrap();
        (
            RandomAccessShard::open(Bytes::from(bytes), "m").unwrap(),
            summary,
        )
    };
    let (v10, _) = shard(0);
    let (v11, summary) = shard(1);
    let meta = |s: &RandomAccessShard<Bytes>| {
        s.index()
            .records()
            .map(|r| u64::from(r.meta_len))
            .sum::<u64>()
    };
    let all = |s: &RandomAccessShard<Bytes>| {
        (0..s.len())
            .map(|i| s.metadata(i).unwrap().turns.len())
            .sum::<usize>()
    };
    let (t10, t11) = (time(21, || all(&v10)), time(21, || all(&v11)));
    let per = |t: Duration| t.as_secs_f64() * 1e6 / records.len() as f64;
    println!(
        "metadata read at random: 1.0 (codec 1) {:.2} µs/record, 1.1 (dictionary of {} bytes) \
         {:.2} µs/record, ratio {:.2}; stored metadata {} -> {} bytes",
        per(t10),
        summary.dictionary_len.unwrap_or(0),
        per(t11),
        t11.as_secs_f64() / t10.as_secs_f64(),
        meta(&v10),
        meta(&v11)
    );
}
