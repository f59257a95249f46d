//! Readers sharing one `Dataset` never wait on each other: a footer load started by a caller
//! that then stops being polled (a prefetching reader whose consumer is busy elsewhere) still
//! completes for everyone else. This once deadlocked `read_order`'s resume test about one run
//! in thirty.

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use editshard::read::{Dataset, Partition, ReadPlan, ResumeState, Shuffle};
use editshard::storage::Location;
use editshard_tools::fixtures::{mixed, write};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpolled_footer_load_does_not_block_other_callers() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &mixed(20, None), 2 << 10, 4);
    let ds = Dataset::open(Location::local(dir.path())).await.unwrap();

    // Start loading shard 0's footer, poll once, then keep the future alive and idle.
    let mut stalled = Box::pin(ds.shard(0));
    std::future::poll_fn(|cx| {
        let _ = stalled.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await;

    // The bound only turns a hang into a failure; it is not a speed assertion.
    let other = tokio::time::timeout(Duration::from_secs(30), ds.shard(0)).await;
    assert!(other.is_ok(), "a second caller waited on the stalled one");
    assert!(!other.unwrap().unwrap().index().is_empty());
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_readers_consumed_one_at_a_time_all_finish() {
    let dir = tempfile::tempdir().unwrap();
    let records = mixed(60, None);
    write(dir.path(), &records, 2 << 10, 4);
    for round in 0..10 {
        // A fresh dataset each round, so footers are loaded concurrently by the readers.
        let ds = Dataset::open(Location::local(dir.path())).await.unwrap();
        let mut readers: Vec<_> = (0..6)
            .map(|w| {
                ds.reader(
                    ReadPlan::new(ResumeState::new(round, 0))
                        .shuffle(Shuffle::Full)
                        .partition(Partition::rank(0, 1).with_worker(w, 6))
                        .batch(2),
                )
            })
            .collect();
        let mut seen = 0;
        // Drain the readers one after another: the others prefetch and then sit in full
        // channels meanwhile.
        for r in readers.iter_mut() {
            loop {
                let batch = tokio::time::timeout(Duration::from_secs(30), r.next_batch()).await;
                match batch.expect("a reader hung") {
                    Some(b) => seen += b.unwrap().len(),
                    None => break,
                }
            }
        }
        assert_eq!(seen, records.len(), "round {round}");
    }
}
