//! The measuring half of `bench/scale.sh`: what reading costs at the real dataset's row counts.
//! One measurement per invocation, so that the script takes each one's peak RSS and counts
//! each one's requests in nginx's access log.
//!
//! ```text
//! bench_scale open  DATASET [--reps N]               Dataset::open (manifest.json only), fresh each time
//! bench_scale ids   DATASET_DIR [--samples N]        N random record ids, one a line (metadata reads)
//! bench_scale get   DATASET IDS_FILE                 open, then Dataset::get_by_id of each id in turn
//! bench_scale epoch DATASET [--batch N] [--seed N]   one full shuffled epoch through Dataset::reader
//! ```
//!
//! DATASET is a directory or an `http://` URL. Output: `key=value` lines on stdout; times in
//! seconds (`*_s`) or microseconds (`*_us`).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use editshard::read::order::{ResumeState, Shuffle};
use editshard::read::{Dataset, Images, ReadPlan};
use editshard::record::Record;
use editshard::storage::{Location, StorageOptions};
use futures_util::StreamExt;

type Res<T> = Result<T, String>;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_scale: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Opts {
    reps: usize,
    samples: u64,
    batch: u64,
    seed: u64,
}

fn run() -> Res<()> {
    let usage = "usage: bench_scale open|ids|get|epoch DATASET [IDS_FILE] [--reps N] [--samples N] [--batch N] [--seed N]";
    let mut args = std::env::args().skip(1);
    let mode = args.next().ok_or(usage)?;
    let target = args.next().ok_or(usage)?;
    let ids_file = if mode == "get" {
        Some(args.next().ok_or(usage)?)
    } else {
        None
    };
    let mut o = Opts {
        reps: 5,
        samples: 1000,
        batch: 64,
        seed: 1,
    };
    while let Some(flag) = args.next() {
        let v: u64 = args
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or(format!("{flag} needs a number"))?;
        match flag.as_str() {
            "--reps" => o.reps = v.max(1) as usize,
            "--samples" => o.samples = v.max(1),
            "--batch" => o.batch = v.max(1),
            "--seed" => o.seed = v,
            _ => return Err(format!("unknown option {flag}; {usage}")),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        match (mode.as_str(), ids_file) {
            ("open", _) => open_only(&target, &o).await,
            ("ids", _) => ids(&target, &o).await,
            ("get", Some(file)) => get_by_id(&target, &file).await,
            ("epoch", _) => epoch(&target, &o).await,
            _ => Err(format!("unknown mode {mode}; {usage}")),
        }
    })
}

async fn open_dataset(target: &str) -> Res<Dataset> {
    let location =
        Location::parse(target, &StorageOptions::default()).map_err(|e| e.to_string())?;
    Dataset::open(location).await.map_err(|e| e.to_string())
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A use of every record that the optimizer cannot drop.
fn image_bytes(r: &Record) -> u64 {
    r.images()
        .map(|i| i.data.as_ref().map_or(0, |d| d.len() as u64))
        .sum()
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

async fn open_only(target: &str, o: &Opts) -> Res<()> {
    let mut times = Vec::with_capacity(o.reps);
    let mut shards = 0;
    for _ in 0..o.reps {
        let t = Instant::now();
        let ds = open_dataset(target).await?;
        times.push(t.elapsed());
        shards = ds.manifest().shards.len();
    }
    times.sort();
    println!("shards={shards}\nreps={}", o.reps);
    println!("open_p50_us={:.1}", us(percentile(&times, 50)));
    Ok(())
}

/// Random ids, read locally (metadata only) so that the HTTP measurement asks for nothing else.
async fn ids(target: &str, o: &Opts) -> Res<()> {
    let ds = open_dataset(target).await?;
    let n = ds.len();
    if n == 0 {
        return Err("the dataset has no records".into());
    }
    let mut state = 0x2545_F491_4F6C_DD1D ^ o.seed;
    let indices: Vec<u64> = (0..o.samples).map(|_| xorshift(&mut state) % n).collect();
    for r in ds
        .get_many(&indices, Images::None)
        .await
        .map_err(|e| e.to_string())?
    {
        println!("{}", r.id);
    }
    Ok(())
}

/// Opens, then fetches each id whole; the first lookup pays for the first footer. Also counts
/// the shards each id's lookup had to consider (the manifest's filters' false positives).
async fn get_by_id(target: &str, ids_file: &str) -> Res<()> {
    let text = std::fs::read_to_string(ids_file).map_err(|e| format!("{ids_file}: {e}"))?;
    let ids: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    if ids.is_empty() {
        return Err(format!("{ids_file} holds no ids"));
    }
    let t = Instant::now();
    let ds = open_dataset(target).await?;
    let open = t.elapsed();
    let mut lat = Vec::with_capacity(ids.len());
    let (mut candidates, mut bytes, mut filter_us) = (0usize, 0u64, 0f64);
    for id in &ids {
        let tf = Instant::now();
        candidates += ds.manifest().candidate_shards(id).len();
        filter_us += us(tf.elapsed());
        let t = Instant::now();
        let r = ds
            .get_by_id(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or(format!("{id}: not found"))?;
        lat.push(t.elapsed());
        bytes += image_bytes(&r);
    }
    let first = lat[0];
    lat.sort();
    let n = ids.len();
    println!("records={n}\nshards={}", ds.manifest().shards.len());
    println!("open_us={:.1}\nfirst_get_us={:.1}", us(open), us(first));
    println!("get_p50_us={:.1}", us(percentile(&lat, 50)));
    println!("get_p99_us={:.1}", us(percentile(&lat, 99)));
    println!(
        "candidate_shards_per_id={:.4}",
        candidates as f64 / n as f64
    );
    println!("filter_check_us_per_id={:.1}", filter_us / n as f64);
    println!("footers_cached={}", ds.footers_loaded());
    println!("image_bytes={bytes}");
    Ok(())
}

/// One full shuffled epoch (every record, every image), as a training job reads it.
async fn epoch(target: &str, o: &Opts) -> Res<()> {
    let t = Instant::now();
    let ds = open_dataset(target).await?;
    let plan = ReadPlan::new(ResumeState::new(o.seed, 0))
        .shuffle(Shuffle::Full)
        .batch(o.batch)
        .images(Images::All);
    let mut s = ds.reader(plan);
    let (mut records, mut bytes) = (0u64, 0u64);
    while let Some(r) = s.next().await {
        let r = r.map_err(|e| e.to_string())?;
        records += 1;
        bytes += image_bytes(&r);
    }
    let secs = t.elapsed().as_secs_f64();
    if records != ds.len() {
        return Err(format!(
            "read {records} records, the dataset has {}",
            ds.len()
        ));
    }
    println!("records={records}\nimage_bytes={bytes}");
    println!(
        "epoch_s={secs:.3}\nrecords_per_s={:.0}",
        records as f64 / secs
    );
    println!("footers_cached={}", ds.footers_loaded());
    Ok(())
}
