//! Reading local datasets: streaming, random access, projection, filters, damage.

use std::sync::{Arc, Mutex};

use editshard::ErrorKind;
use editshard::read::blocking::BlockingDataset;
use editshard::read::{Dataset, DatasetOptions, Filter, Images, ReadPlan, SkipFn, StreamOptions};
use editshard::record::Kind;
use editshard::storage::{Location, StorageOptions};
use editshard_tools::fixtures::{mixed, same, write};
use futures_util::StreamExt;

fn dataset_dir(n: u32) -> (tempfile::TempDir, Vec<editshard::Record>) {
    let dir = tempfile::tempdir().unwrap();
    let records = mixed(n, None);
    let m = write(dir.path(), &records, 2 << 10, 4);
    assert!(
        m.shards.len() >= 2,
        "want several shards, got {}",
        m.shards.len()
    );
    (dir, records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_every_record_in_order() {
    let (dir, records) = dataset_dir(40);
    let ds = Dataset::open(Location::local(dir.path())).await.unwrap();
    assert_eq!(ds.len(), 40);
    let got: Vec<_> = ds
        .stream(StreamOptions {
            prefetch_bytes: 4096, // smaller than a shard: the budget must not deadlock
            ..StreamOptions::default()
        })
        .map(|r| r.unwrap())
        .collect()
        .await;
    assert_eq!(got.len(), records.len());
    for (a, b) in got.iter().zip(&records) {
        assert!(same(a, b), "{} differs", b.id);
    }
    // A chosen subset of shards, in the order given.
    let n = ds.manifest().shards.len();
    let first_of_last: usize = ds.manifest().shards[..n - 1]
        .iter()
        .map(|s| s.records as usize)
        .sum();
    let got: Vec<_> = ds
        .stream(StreamOptions {
            shards: Some(vec![n - 1]),
            ..StreamOptions::default()
        })
        .map(|r| r.unwrap().id)
        .collect()
        .await;
    let want: Vec<_> = records[first_of_last..]
        .iter()
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(got, want);
}

#[test]
fn blocking_iterators_match() {
    let (dir, records) = dataset_dir(20);
    let ds =
        BlockingDataset::open(dir.path().to_str().unwrap(), &StorageOptions::default()).unwrap();
    let got: Vec<_> = ds
        .stream(StreamOptions::default())
        .map(|r| r.unwrap())
        .collect();
    assert!(got.iter().zip(&records).all(|(a, b)| same(a, b)));
    assert_eq!(got.len(), 20);
    let mut reader = ds.reader(ReadPlan::default().batch(7));
    let mut batches = Vec::new();
    while let Some(b) = reader.next_batch() {
        batches.push(b.unwrap().len());
    }
    assert_eq!(batches, vec![7, 7, 6]);
    assert_eq!(reader.batches_read(), 3);
    let r = ds.get_by_id(&records[13].id).unwrap().unwrap();
    assert!(same(&r, &records[13]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_access_by_index_and_id() {
    let (dir, records) = dataset_dir(30);
    let ds = Dataset::open(Location::local(dir.path())).await.unwrap();
    for i in [0u64, 7, 29, 15] {
        assert!(same(&ds.get(i).await.unwrap(), &records[i as usize]));
    }
    let r = ds.get_by_id(&records[22].id).await.unwrap().unwrap();
    assert!(same(&r, &records[22]));
    assert_eq!(ds.find(&records[22].id).await.unwrap(), Some(22));
    assert!(ds.get_by_id("no/such/id").await.unwrap().is_none());
    let e = ds.get(30).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Invalid(_)), "{e}");
    assert!(e.to_string().contains("30"), "{e}");

    let picks = [3u64, 4, 5, 28, 0, 4];
    let many = ds.get_many(&picks, Images::All).await.unwrap();
    for (r, &i) in many.iter().zip(&picks) {
        assert!(same(r, &records[i as usize]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projection_fetches_only_chosen_images() {
    let (dir, records) = dataset_dir(12);
    let ds = Dataset::open(Location::local(dir.path())).await.unwrap();
    let meta = ds.get_with(1, Images::None).await.unwrap();
    assert!(meta.images().all(|i| i.data.is_none()));
    let mut stripped = records[1].clone();
    stripped.strip_data();
    assert_eq!(meta, stripped);

    let only = Images::Only {
        source: false,
        outputs: false,
        rejected: true,
    };
    let r = ds.get_with(1, only).await.unwrap(); // a preference record with 2 rejected
    assert_eq!(r.kind, Kind::Preference);
    assert!(r.source.data.is_none() && r.turns[0].output.data.is_none());
    for (got, want) in r.turns[0]
        .rejected
        .iter()
        .zip(&records[1].turns[0].rejected)
    {
        assert_eq!(got.data, want.data);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_by_kind_edit_type_and_score() {
    let (dir, records) = dataset_dir(24);
    let ds = Dataset::open(Location::local(dir.path())).await.unwrap();
    let ids = |filter: Filter| {
        let ds = ds.clone();
        async move {
            let plan = ReadPlan::default().filter(filter).images(Images::None);
            ds.reader(plan)
                .map(|r| r.unwrap().id)
                .collect::<Vec<_>>()
                .await
        }
    };
    let want = |f: &dyn Fn(&editshard::Record) -> bool| -> Vec<String> {
        records
            .iter()
            .filter(|r| f(r))
            .map(|r| r.id.clone())
            .collect()
    };
    assert_eq!(
        ids(Filter {
            kinds: vec![Kind::MultiTurn, Kind::Generic],
            ..Filter::default()
        })
        .await,
        want(&|r| matches!(r.kind, Kind::MultiTurn | Kind::Generic))
    );
    assert_eq!(
        ids(Filter {
            edit_types: vec!["Remove an existing object".into()],
            ..Filter::default()
        })
        .await,
        want(&|r| r.kind == Kind::Sft)
    );
    // Preference outputs score 0.9 on instruction_compliance; nothing else has scores.
    assert_eq!(
        ids(Filter {
            min_score: Some(("instruction_compliance".into(), 0.85)),
            ..Filter::default()
        })
        .await,
        want(&|r| r.kind == Kind::Preference)
    );
    assert!(
        ids(Filter {
            min_score: Some(("instruction_compliance".into(), 0.95)),
            ..Filter::default()
        })
        .await
        .is_empty()
    );
}

/// Flips one byte of record `victim`'s first image in its shard file; returns the shard path.
async fn damage(dir: &std::path::Path, ds: &Dataset, victim: u64) -> String {
    let (s, local) = ds.locate(victim).unwrap();
    let shard = ds.shard(s).await.unwrap();
    let blob = shard.index().blob(shard.index().record_blobs(local)[0]);
    let path = dir.join(shard.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[blob.offset as usize + 3] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    shard.path().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_is_located_and_can_be_skipped() {
    let (dir, records) = dataset_dir(20);
    let ds = Dataset::open(Location::local(dir.path())).await.unwrap();
    let victim = 9u64;
    let shard_path = damage(dir.path(), &ds, victim).await;
    let (_, local) = ds.locate(victim).unwrap();

    // Random access: the error names shard, record, id and offset.
    let fresh = Dataset::open(Location::local(dir.path())).await.unwrap();
    let e = fresh.get(victim).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Checksum { .. }), "{e}");
    assert!(e.shard().unwrap().ends_with(&shard_path), "{e}");
    assert_eq!(e.record(), Some(local as u64));
    assert_eq!(e.id(), Some(records[victim as usize].id.as_str()));
    assert!(e.offset().is_some());
    // Its metadata is intact.
    assert!(fresh.get_with(victim, Images::None).await.is_ok());

    // Streaming fails at the damaged frame...
    let results: Vec<_> = fresh.stream(StreamOptions::default()).collect().await;
    let e = results.last().unwrap().as_ref().unwrap_err();
    assert!(e.is_corruption(), "{e}");
    assert!(e.shard().unwrap().ends_with(&shard_path), "{e}");
    assert!(results.len() <= victim as usize + 1);

    // ... and with skip_corrupt loses exactly the damaged record.
    let skipped: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = skipped.clone();
    let on_skip: SkipFn = Arc::new(move |e| log.lock().unwrap().push(e.to_string()));
    let got: Vec<_> = fresh
        .stream(StreamOptions {
            skip_corrupt: true,
            on_skip: Some(on_skip.clone()),
            ..StreamOptions::default()
        })
        .map(|r| r.unwrap().id)
        .collect()
        .await;
    let want: Vec<_> = records
        .iter()
        .enumerate()
        .filter(|(i, _)| *i as u64 != victim)
        .map(|(_, r)| r.id.clone())
        .collect();
    assert_eq!(got, want);
    let log = skipped.lock().unwrap().clone();
    // The frame failure, then the record itself when re-read through the index.
    assert!(
        log.iter().any(|l| l.contains(&records[victim as usize].id)),
        "{log:?}"
    );

    // The indexed reader skips it too.
    let plan = ReadPlan {
        skip_corrupt: true,
        on_skip: Some(on_skip),
        ..ReadPlan::default()
    };
    let got: Vec<_> = fresh.reader(plan).map(|r| r.unwrap().id).collect().await;
    assert_eq!(got, want);

    // With verification off, the damaged bytes are returned as they are.
    let options = DatasetOptions {
        read: editshard::shard::ReadOptions::verifying(editshard::shard::Verify::None),
        ..DatasetOptions::default()
    };
    let unchecked = Dataset::open_with(Location::local(dir.path()), options)
        .await
        .unwrap();
    let r = unchecked.get(victim).await.unwrap();
    assert_ne!(r.source.data, records[victim as usize].source.data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_manifest_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = Dataset::open(Location::local(dir.path()))
        .await
        .err()
        .unwrap();
    let text = e.to_string();
    assert!(text.contains("manifest.json"), "{text}");
    assert!(editshard::storage::is_not_found(&e), "{text}");
}

/// An index that disagrees with its frames (valid CRCs: a lying writer, not damage) never
/// makes random access return one record's data under another's id, or image bytes whose
/// SHA-256 is not the record's own: whatever is fetched (all images, some, metadata only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_index_never_returns_another_records_data() {
    use editshard_tools::records::image;
    use editshard_tools::tamper::{replace_shard, rewrite_index};
    let src = image(1, "image/jpeg", 4, 3, 40);
    let records = vec![
        editshard::Record::new(
            "a",
            Kind::Sft,
            src.clone(),
            vec![editshard::record::Turn::new(image(
                2,
                "image/png",
                4,
                3,
                50,
            ))],
        ),
        editshard::Record::new(
            "b",
            Kind::Sft,
            src,
            vec![editshard::record::Turn::new(image(
                3,
                "image/png",
                4,
                3,
                50,
            ))],
        ),
    ];
    type Lie = fn(&mut editshard::format::IndexFrame);
    let lies: [(&str, Lie); 2] = [
        ("swapped ids", |index| {
            let t = index.frames[0].table.as_mut().unwrap();
            let (a, b) = (t.records[0].id.clone(), t.records[1].id.clone());
            (t.records[0].id, t.records[1].id) = (b, a);
        }),
        ("swapped image references", |index| {
            let t = index.frames[0].table.as_mut().unwrap();
            let (a, b) = (t.records[0].refs[1], t.records[1].refs[1]);
            (t.records[0].refs[1], t.records[1].refs[1]) = (b, a);
        }),
    ];
    let only_outputs = Images::Only {
        source: false,
        outputs: true,
        rejected: false,
    };
    for (what, lie) in lies {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &records, 1 << 20, 4);
        replace_shard(dir.path(), 0, |bytes| rewrite_index(&bytes, lie));
        let ds = Dataset::open(Location::local(dir.path())).await.unwrap();
        let mut errors = 0;
        for want in &records {
            for images in [Images::All, Images::None, only_outputs] {
                match ds.get_by_id_with(&want.id, images).await {
                    Ok(Some(got)) => {
                        assert_eq!(got.id, want.id);
                        let mut plain = want.clone();
                        plain.strip_data();
                        let mut got_plain = got.clone();
                        got_plain.strip_data();
                        assert_eq!(got_plain, plain, "{what}: {} read as another", want.id);
                        for img in got.images() {
                            img.check_data().unwrap_or_else(|e| panic!("{what}: {e}"));
                        }
                    }
                    Ok(None) => panic!("{what}: {} not found", want.id),
                    Err(e) => {
                        assert!(e.is_corruption(), "{what}: {e}");
                        assert!(e.shard().is_some() && e.offset().is_some(), "{what}: {e}");
                        errors += 1;
                    }
                }
            }
        }
        assert!(errors > 0, "{what}: the lie went unnoticed");
    }
}

/// A sequential read reads each shard to its verified end and checks that it held exactly
/// the records its manifest entry lists: a record beyond a lying count is an error naming the
/// shard, never dropped or passed off as the next shard's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_refuses_a_shard_holding_more_records_than_its_manifest_lists() {
    let (dir, _) = dataset_dir(12);
    let path = dir.path().join("manifest.json");
    let mut m = editshard::manifest::Manifest::parse(&std::fs::read(&path).unwrap()).unwrap();
    m.shards[0].records -= 1;
    m.records -= 1;
    // The summaries lie in step (the manifest must add up to be read at all).
    *m.kinds.values_mut().find(|n| **n > 0).unwrap() -= 1;
    std::fs::write(&path, m.to_json().unwrap()).unwrap();
    let ds = Dataset::open(Location::local(dir.path())).await.unwrap();
    for shards in [None, Some(vec![0])] {
        let got: Vec<_> = ds
            .stream(StreamOptions {
                shards,
                ..StreamOptions::default()
            })
            .collect()
            .await;
        let err = got
            .iter()
            .find_map(|r| r.as_ref().err())
            .expect("the lying count went unnoticed");
        assert!(err.to_string().contains("manifest lists"), "{err}");
        assert!(err.shard().unwrap().ends_with(&m.shards[0].path), "{err}");
    }
}

/// The footer cache keeps to its byte budget however many shards are read: the least
/// recently used footers go, and are loaded again when needed, and every record still reads
/// back exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_footer_cache_keeps_to_its_budget() {
    let (dir, records) = dataset_dir(48);
    let m = editshard::manifest::Manifest::parse(
        &std::fs::read(dir.path().join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert!(m.shards.len() >= 8, "{} shards", m.shards.len());
    // The cache counts what a parsed footer holds in memory, not its bytes on disk.
    let probe = Dataset::open(Location::local(dir.path())).await.unwrap();
    let mut largest = 0;
    for s in 0..m.shards.len() {
        let index_bytes = probe.shard(s).await.unwrap().index().heap_bytes();
        assert!(index_bytes > m.shards[s].footer_length, "shard {s}");
        largest = largest.max(index_bytes + 256);
    }
    let options = DatasetOptions {
        footer_cache_bytes: 3 * largest,
        ..DatasetOptions::default()
    };
    let ds = Dataset::open_with(Location::local(dir.path()), options)
        .await
        .unwrap();
    // Twice through every record, jumping between shards.
    for round in 0..2 {
        for k in 0..records.len() {
            let i = (k * 7 + round) % records.len();
            let got = ds.get(i as u64).await.unwrap();
            assert!(same(&got, &records[i]), "record {i}");
            assert!(
                ds.footers_loaded() <= 3,
                "{} footers loaded",
                ds.footers_loaded()
            );
        }
    }
    // Unbounded (the default budget holds them all): every shard's footer stays.
    let ds = Dataset::open(Location::local(dir.path())).await.unwrap();
    for i in 0..ds.len() {
        ds.get(i).await.unwrap();
    }
    assert_eq!(ds.footers_loaded(), m.shards.len());
}
