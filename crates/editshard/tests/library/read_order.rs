//! Epoch order, partitioning and resume: every record exactly once per epoch, across ranks
//! and workers, and across a restart with different counts.

use std::collections::HashMap;

use editshard::read::{Dataset, EpochOrder, Partition, ReadPlan, ResumeState, Shuffle};
use editshard::storage::Location;
use editshard_tools::fixtures::{mixed, write};
use futures_util::StreamExt;

fn is_permutation(v: &[u64], n: u64) -> bool {
    let mut s = v.to_vec();
    s.sort_unstable();
    s == (0..n).collect::<Vec<_>>()
}

fn order_of(counts: &[u64], shuffle: Shuffle, seed: u64, epoch: u64) -> Vec<u64> {
    let o = EpochOrder::new(counts, shuffle, seed, epoch);
    (0..o.len()).map(|p| o.record_at(p)).collect()
}

#[test]
fn shuffles_are_deterministic_permutations() {
    let counts = [100, 37, 0, 263];
    let n = 400;
    let seq = order_of(&counts, Shuffle::None, 1, 0);
    assert_eq!(seq, (0..n).collect::<Vec<_>>());
    for shuffle in [Shuffle::Full, Shuffle::Block { window: 16 }] {
        let a = order_of(&counts, shuffle, 7, 0);
        assert!(is_permutation(&a, n), "{shuffle:?}");
        assert_eq!(a, order_of(&counts, shuffle, 7, 0), "deterministic");
        assert_ne!(
            a,
            order_of(&counts, shuffle, 7, 1),
            "epoch changes the order"
        );
        assert_ne!(
            a,
            order_of(&counts, shuffle, 8, 0),
            "seed changes the order"
        );
        assert_ne!(a, seq, "{shuffle:?} actually shuffles");
    }
    // A block shuffle keeps each window of 16 within one shard's window.
    let a = order_of(&counts, Shuffle::Block { window: 16 }, 7, 0);
    let firsts = [0u64, 100, 137, 137];
    let window_of = |g: u64| {
        let s = firsts.iter().rposition(|&f| f <= g).unwrap();
        (s, (g - firsts[s]) / 16)
    };
    let mut starts = vec![0usize];
    for p in 1..a.len() {
        if window_of(a[p]) != window_of(a[p - 1]) {
            starts.push(p);
        }
    }
    // Number of windows: ceil(100/16) + ceil(37/16) + ceil(263/16) = 7 + 3 + 17.
    assert_eq!(starts.len(), 27);
}

#[test]
fn a_full_shuffle_mixes_shards() {
    let a = order_of(&[500, 500], Shuffle::Full, 3, 0);
    let first_half_from_shard0 = a[..500].iter().filter(|&&g| g < 500).count();
    assert!(
        (150..350).contains(&first_half_from_shard0),
        "{first_half_from_shard0}"
    );
}

#[test]
fn partitions_cover_every_position_once() {
    for (world, workers, batch, start) in [(1, 1, 1, 0), (2, 3, 4, 0), (3, 2, 5, 17), (4, 1, 64, 3)]
    {
        let total = 203u64;
        let mut seen = vec![0u32; total as usize];
        for rank in 0..world {
            for worker in 0..workers {
                let p = Partition::rank(rank, world).with_worker(worker, workers);
                for range in p.batches(start, total, batch) {
                    for pos in range {
                        seen[pos as usize] += 1;
                    }
                }
            }
        }
        assert!(seen[..start as usize].iter().all(|&c| c == 0));
        assert!(
            seen[start as usize..].iter().all(|&c| c == 1),
            "{world} {workers} {batch}"
        );
    }
    assert!(Partition::rank(2, 2).validate().is_err());
    assert!(Partition::single().with_worker(0, 0).validate().is_err());
}

/// Runs `steps` lockstep steps of a data-parallel job: every rank takes one batch per step
/// from its workers in turn. Returns the ids read and the readers' state.
async fn run_steps(
    ds: &Dataset,
    state: ResumeState,
    world: u32,
    workers: u32,
    batch: u64,
    steps: Option<u64>,
) -> Vec<String> {
    let mut streams: Vec<Vec<_>> = (0..world)
        .map(|rank| {
            (0..workers)
                .map(|w| {
                    let plan = ReadPlan::new(state)
                        .shuffle(Shuffle::Full)
                        .partition(Partition::rank(rank, world).with_worker(w, workers))
                        .batch(batch);
                    ds.reader(plan)
                })
                .collect()
        })
        .collect();
    let mut ids = Vec::new();
    let mut step = 0u64;
    loop {
        if steps.is_some_and(|s| step == s) {
            break;
        }
        let mut any = false;
        for rank_streams in streams.iter_mut() {
            let w = (step % u64::from(workers)) as usize;
            if let Some(b) = rank_streams[w].next_batch().await {
                any = true;
                ids.extend(b.unwrap().into_iter().map(|r| r.id));
            }
        }
        if !any {
            break;
        }
        step += 1;
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_with_different_worker_and_rank_counts() {
    let dir = tempfile::tempdir().unwrap();
    let records = mixed(101, None);
    write(dir.path(), &records, 3 << 10, 8);
    let ds = Dataset::open(Location::local(dir.path())).await.unwrap();

    let start = ResumeState::new(42, 3);
    // Part one: 2 ranks x 3 workers, batches of 4, stopped after 5 steps.
    let first = run_steps(&ds, start, 2, 3, 4, Some(5)).await;
    assert_eq!(first.len(), 5 * 2 * 4);
    let saved = start.after_steps(5, 2, 4);
    assert_eq!(saved.position, 40);
    // Part two: restarted with 3 ranks x 1 worker and batches of 3, to the end.
    let second = run_steps(&ds, saved, 3, 1, 3, None).await;

    let mut count: HashMap<String, u32> = HashMap::new();
    for id in first.iter().chain(&second) {
        *count.entry(id.clone()).or_default() += 1;
    }
    assert_eq!(count.len(), records.len(), "every record seen");
    assert!(count.values().all(|&c| c == 1), "each exactly once");

    // The same epoch read in one go by one consumer gives the same order.
    let all: Vec<String> = ds
        .reader(ReadPlan::new(start).shuffle(Shuffle::Full).batch(4))
        .map(|r| r.unwrap().id)
        .collect()
        .await;
    assert_eq!(all.len(), records.len());
    let ordered: Vec<&String> = all.iter().take(40).collect();
    let mut first_sorted: Vec<&String> = first.iter().collect();
    first_sorted.sort();
    let mut ordered_sorted = ordered.clone();
    ordered_sorted.sort();
    assert_eq!(
        first_sorted, ordered_sorted,
        "part one read positions 0..40"
    );
}
