//! Reading a dataset with the library: open it (a directory, `https://...` or
//! `s3://bucket/prefix`), look at its counts, fetch a record by id, then read one shuffled,
//! resumable epoch as rank 0 of 2, metadata and chosen images only.
//!
//! ```text
//! cargo run -p editshard --example read_dataset -- /tmp/sample-shards
//! ```
//! (after the README's quick start has written `/tmp/sample-shards`).

use editshard::read::{Dataset, Filter, Images, Partition, ReadPlan, ResumeState, Shuffle};
use editshard::record::Kind;
use editshard::storage::{Location, StorageOptions};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> editshard::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/sample-shards".into());
    // Reads manifest.json only; S3 credentials and endpoint come from AWS_* variables.
    let location = Location::parse(&url, &StorageOptions::default())?;
    let ds = Dataset::open(location).await?;
    let m = ds.manifest();
    println!(
        "{url}: {} records in {} shards, {} bytes",
        m.records,
        m.shards.len(),
        m.bytes
    );
    for (kind, n) in &m.kinds {
        println!("  {kind}: {n}");
    }

    // One record by id: the id filter in the manifest picks the shard, then one ranged read.
    let first = ds.get_with(0, Images::None).await?;
    let again = ds.get_by_id(&first.id).await?.expect("the id exists");
    println!(
        "record {:?}: {} turn(s), source {} bytes ({}x{} {}), sha256 {}",
        again.id,
        again.turns.len(),
        again.source.len,
        again.source.width,
        again.source.height,
        again.source.media_type,
        again.source.sha256_hex()
    );

    // A shuffled epoch for rank 0 of 2: SFT and preference records, with the source and the
    // chosen edit only (rejected edits are never fetched). Every CRC is checked.
    let resume = ResumeState::new(42, 0);
    let plan = ReadPlan::new(resume)
        .shuffle(Shuffle::Full)
        .partition(Partition::rank(0, 2))
        .batch(4)
        .filter(Filter {
            kinds: vec![Kind::Sft, Kind::Preference],
            ..Filter::default()
        })
        .images(Images::Only {
            source: true,
            outputs: true,
            rejected: false,
        });
    let mut reader = ds.reader(plan);
    let (mut records, mut bytes) = (0, 0u64);
    while let Some(batch) = reader.next_batch().await {
        for record in batch? {
            records += 1;
            bytes += record
                .images()
                .filter_map(|i| i.data.as_ref())
                .map(|d| d.len() as u64)
                .sum::<u64>();
        }
    }
    // After a crash, ResumeState::after_steps(steps, world_size, batch) says where to restart.
    println!(
        "rank 0 of 2 read {records} records ({bytes} image bytes) in {} batches",
        reader.batches_read()
    );
    Ok(())
}
