//! The memory half of `bench/scale.sh`: what a reader process holds once it has touched every
//! shard of a dataset, and a cheap generator of datasets of millions of records to measure it
//! on.
//!
//! ```text
//! bench_footprint synth DIR --records N [--per-shard N]   a dataset of N tiny records
//! bench_footprint touch DATASET [--cache-mib N]           read one record of every shard
//!                [--gets N] [--dict-kib N]                (N: the footer cache budget), then
//!                                                         N random metadata reads (--dict-kib:
//!                                                         prepared dictionaries' budget)
//! ```
//!
//! `synth` writes records shaped like the release's (the ids, metadata and image counts of
//! `editshard_tools::records`: SFT, preference with one rejected edit and multi-turn with two
//! turns, in the release's proportions) with images of a few dozen bytes, straight through
//! `DatasetWriter` (no release files, no conversion): millions of records take minutes and a
//! few GB. `touch` opens the dataset, reads the metadata of the first record of every shard
//! (so every footer is loaded, as in a shuffled epoch), and reports the process's anonymous
//! memory (`RssAnon` of /proc/self/status: heap, not the page cache that maps the shards)
//! before and after, with what the footer cache counts. Output: `key=value` lines.

use std::path::Path;
use std::process::ExitCode;

use editshard::read::{Dataset, DatasetOptions, Images};
use editshard::storage::{Location, StorageOptions};
use editshard::write::DatasetWriter;
use editshard_tools::records::{multi_turn, preference, sft};

type Res<T> = Result<T, String>;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_footprint: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Res<()> {
    let usage = "usage: bench_footprint synth DIR --records N [--per-shard N] | \
                 touch DATASET [--cache-mib N] [--gets N] [--dict-kib N]";
    let mut args = std::env::args().skip(1);
    let mode = args.next().ok_or(usage)?;
    let target = args.next().ok_or(usage)?;
    let (mut records, mut per_shard, mut cache_mib, mut gets) = (None, 556u64, None, 0u64);
    let mut dict_kib = None;
    while let Some(flag) = args.next() {
        let v: u64 = args
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or(format!("{flag} needs a number"))?;
        match flag.as_str() {
            "--records" => records = Some(v),
            "--per-shard" => per_shard = v.max(1),
            "--cache-mib" => cache_mib = Some(v),
            "--gets" => gets = v,
            "--dict-kib" => dict_kib = Some(v),
            _ => return Err(format!("unknown option {flag}; {usage}")),
        }
    }
    match mode.as_str() {
        "synth" => synth(Path::new(&target), records.ok_or(usage)?, per_shard),
        "touch" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(touch(&target, cache_mib, dict_kib, gets)),
        _ => Err(format!("unknown mode {mode}; {usage}")),
    }
}

fn synth(dir: &Path, records: u64, per_shard: u64) -> Res<()> {
    let mut w = DatasetWriter::create(dir).map_err(|e| e.to_string())?;
    for n in 0..records {
        // The release's proportions: 257,730 SFT, 56,473 preference, 72,000 multi-turn.
        let k = (n % 386_203) as u32;
        let m = u32::try_from(n).map_err(|_| "at most 4 billion records")?;
        let record = if k < 257_730 {
            sft(m, m)
        } else if k < 257_730 + 56_473 {
            preference(m, m, 1)
        } else {
            multi_turn(m, m, 2)
        };
        w.append(&record).map_err(|e| e.to_string())?;
        if (n + 1) % per_shard == 0 {
            w.finish_shard().map_err(|e| e.to_string())?;
        }
    }
    let manifest = w.finish().map_err(|e| e.to_string())?;
    let footers: u64 = manifest.shards.iter().map(|s| s.footer_length).sum();
    println!("records={}", manifest.records);
    println!("shards={}", manifest.shards.len());
    println!("bytes={}", manifest.bytes);
    println!("footer_bytes={footers}");
    Ok(())
}

/// `RssAnon` of this process, in KiB.
fn rss_anon_kib() -> Res<u64> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no RssAnon in /proc/self/status".to_string())
}

async fn touch(target: &str, cache_mib: Option<u64>, dict_kib: Option<u64>, gets: u64) -> Res<()> {
    if let Some(kib) = dict_kib {
        editshard::format::set_prepared_dictionary_budget(kib << 10);
    }
    let location =
        Location::parse(target, &StorageOptions::default()).map_err(|e| e.to_string())?;
    let mut options = DatasetOptions::default();
    if let Some(mib) = cache_mib {
        options.footer_cache_bytes = mib << 20;
    }
    let ds = Dataset::open_with(location, options)
        .await
        .map_err(|e| e.to_string())?;
    let before = rss_anon_kib()?;
    let shards = ds.manifest().shards.len();
    let mut held = editshard::format::index::IndexMemory::default();
    let mut dict_lens = 0u64;
    let mut first = 0u64;
    for s in 0..shards {
        let record = ds
            .get_with(first, Images::None)
            .await
            .map_err(|e| e.to_string())?;
        std::hint::black_box(record);
        let shard = ds.shard(s).await.map_err(|e| e.to_string())?;
        let m = shard.index().memory();
        dict_lens += shard
            .index()
            .dictionary
            .as_ref()
            .map_or(0, |d| d.bytes().len() as u64);
        held.payload += m.payload;
        held.tables += m.tables;
        first += ds.manifest().shards[s].records;
    }
    let after = rss_anon_kib()?;
    // Random metadata reads after: what a footer cache smaller than the footers costs.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut times = Vec::with_capacity(gets as usize);
    let t = std::time::Instant::now();
    for _ in 0..gets {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let one = std::time::Instant::now();
        let record = ds
            .get_with(state % ds.len(), Images::None)
            .await
            .map_err(|e| e.to_string())?;
        std::hint::black_box(record);
        times.push(one.elapsed().as_secs_f64() * 1e6);
    }
    if gets > 0 {
        let us = t.elapsed().as_secs_f64() * 1e6 / gets as f64;
        times.sort_by(f64::total_cmp);
        println!("random_metadata_get_us={us:.1}");
        println!("random_metadata_get_p50_us={:.1}", times[times.len() / 2]);
    }
    let after_gets = rss_anon_kib()?;
    println!("records={}", ds.len());
    println!("shards={shards}");
    println!("footers_cached={}", ds.footers_loaded());
    println!("footer_heap_bytes_all_shards={}", held.total());
    println!("footer_payload_bytes_all_shards={}", held.payload);
    println!("footer_table_bytes_all_shards={}", held.tables);
    let (n, bytes) = editshard::format::prepared_dictionaries();
    println!("prepared_dictionaries={n}");
    println!("prepared_dictionary_bytes={bytes}");
    println!("dictionary_stored_bytes_all_shards={dict_lens}");
    println!("rss_anon_open_kib={before}");
    println!("rss_anon_touched_kib={after}");
    println!("rss_anon_after_gets_kib={after_gets}");
    println!("manifest_heap_bytes={}", ds.manifest().heap_bytes());
    // Last, a lookup by id: it reads the id filters, which the manifest opened without.
    let id = ds
        .get_with(ds.len() / 2, Images::None)
        .await
        .map_err(|e| e.to_string())?
        .id;
    let found = ds.find(&id).await.map_err(|e| e.to_string())?;
    if found != Some(ds.len() / 2) {
        return Err(format!("the lookup of {id:?} found {found:?}"));
    }
    println!("rss_anon_after_id_lookup_kib={}", rss_anon_kib()?);
    Ok(())
}
