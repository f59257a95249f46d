//! Local shards read through memory maps (`MappedShardReader`, and `Dataset` with
//! `map_local`, the default): the same records as the copying readers, and damage, truncation
//! and trailing bytes reported the same way, with the shard named.

use editshard::ErrorKind;
use editshard::read::{Dataset, DatasetOptions, MappedShardReader, StreamOptions};
use editshard::shard::ShardReader;
use editshard::storage::Location;
use editshard_tools::fixtures::{mixed, same, write};
use futures_util::StreamExt;

/// A dataset of several shards, groups sharing images, images of a few KiB (so that frames
/// span more than one window of the stream's budget below).
fn dataset() -> (
    tempfile::TempDir,
    Vec<editshard::Record>,
    Vec<std::path::PathBuf>,
) {
    let dir = tempfile::tempdir().unwrap();
    let records = mixed(24, Some(5000));
    let m = write(dir.path(), &records, 64 << 10, 3);
    assert!(m.shards.len() >= 2, "want several shards");
    let paths = m.shards.iter().map(|s| dir.path().join(&s.path)).collect();
    (dir, records, paths)
}

#[test]
fn the_mapped_reader_returns_what_the_copying_reader_does() {
    let (_dir, records, paths) = dataset();
    let mut got = Vec::new();
    for p in &paths {
        let mapped: Vec<_> = MappedShardReader::open(p, Default::default())
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let copied: Vec<_> = ShardReader::new(std::fs::File::open(p).unwrap())
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(mapped.len(), copied.len());
        for (a, b) in mapped.iter().zip(&copied) {
            assert!(same(a, b), "{}", a.id);
        }
        got.extend(mapped);
    }
    assert_eq!(got.len(), records.len());
    for (a, b) in got.iter().zip(&records) {
        assert!(same(a, b), "{} differs from what was written", b.id);
    }
}

#[test]
fn the_mapped_reader_names_damage_truncation_and_trailing_bytes() {
    let (dir, _records, paths) = dataset();
    let bytes = std::fs::read(&paths[0]).unwrap();
    let errors = |name: &str, content: Vec<u8>| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let results: Vec<_> = MappedShardReader::open(&path, Default::default())
            .unwrap()
            .collect();
        let n = results.len();
        assert!(results[..n - 1].iter().all(|r| r.is_ok()));
        let e = results
            .into_iter()
            .last()
            .unwrap()
            .expect_err("the last item is the error");
        assert_eq!(e.shard(), Some(path.display().to_string().as_str()), "{e}");
        e
    };

    let mut flipped = bytes.clone();
    let at = bytes.len() / 2;
    flipped[at] ^= 0x10;
    let e = errors("flipped.esd", flipped);
    assert!(e.is_corruption(), "{e}");
    assert!(e.offset().is_some_and(|o| o <= at as u64), "{e}");

    let e = errors("cut.esd", bytes[..bytes.len() - 7].to_vec());
    assert!(matches!(e.kind(), ErrorKind::Truncated(_)), "{e}");

    let mut longer = bytes.clone();
    longer.push(0);
    let e = errors("longer.esd", longer);
    assert!(e.to_string().contains("follow the trailer"), "{e}");

    // An empty file is a truncated shard, not a crash (an empty map is not allowed).
    let e = errors("empty.esd", Vec::new());
    assert!(matches!(e.kind(), ErrorKind::Truncated(_)), "{e}");
}

async fn open(dir: &std::path::Path, map_local: bool) -> Dataset {
    let options = DatasetOptions {
        map_local,
        ..DatasetOptions::default()
    };
    Dataset::open_with(Location::local(dir), options)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapped_and_copied_datasets_read_the_same_and_fail_the_same() {
    let (dir, records, paths) = dataset();
    for map_local in [true, false] {
        let ds = open(dir.path(), map_local).await;
        // A budget smaller than a frame: the mapped stream waits for its window.
        let got: Vec<_> = ds
            .stream(StreamOptions {
                prefetch_bytes: 4096,
                ..StreamOptions::default()
            })
            .map(|r| r.unwrap())
            .collect()
            .await;
        assert_eq!(got.len(), records.len(), "map_local {map_local}");
        for (i, want) in records.iter().enumerate() {
            assert!(
                same(&got[i], want),
                "stream, map_local {map_local}: {}",
                want.id
            );
            let r = ds.get(i as u64).await.unwrap();
            assert!(same(&r, want), "get, map_local {map_local}: {}", want.id);
            let shard = ds.shard(ds.locate(i as u64).unwrap().0).await.unwrap();
            assert_eq!(shard.mapped().is_some(), map_local);
        }
    }

    // One image byte flipped in the first shard: both ways report a checksum error there.
    let mut bytes = std::fs::read(&paths[0]).unwrap();
    let ds = open(dir.path(), false).await;
    let shard = ds.shard(0).await.unwrap();
    let blob = shard.index().blob(shard.index().record_blobs(1)[0]);
    bytes[blob.offset as usize + 1] ^= 0x01;
    // Replaced by rename, as a dataset's files always are.
    let tmp = dir.path().join("replacement");
    std::fs::write(&tmp, &bytes).unwrap();
    std::fs::rename(&tmp, &paths[0]).unwrap();
    for map_local in [true, false] {
        let ds = open(dir.path(), map_local).await;
        let e = ds.get(1).await.unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Checksum { .. }), "{e}");
        assert_eq!(e.record(), Some(1), "{e}");
        let results: Vec<_> = ds.stream(StreamOptions::default()).collect().await;
        let e = results.last().unwrap().as_ref().unwrap_err();
        assert!(e.is_corruption(), "map_local {map_local}: {e}");
        assert!(e.shard().unwrap().ends_with(shard.path()), "{e}");
    }
}

/// Frames several times the stream's populate window (8 MiB), read under a budget smaller
/// than one window: the mapped stream hands the frame's windows back as it receives them
/// instead of holding them until the frame is decoded, which deadlocked (the producer waited
/// for permits the reader held while the reader waited for the producer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapped_frame_larger_than_the_budget_streams() {
    let dir = tempfile::tempdir().unwrap();
    // Groups of one record with 3-4 images of 6 MiB: frames of 18-24 MiB.
    let records = mixed(4, Some(6 << 20));
    write(dir.path(), &records, 1 << 30, 1);
    for prefetch_bytes in [4096, 12 << 20] {
        let ds = open(dir.path(), true).await;
        let stream = ds.stream(StreamOptions {
            prefetch_bytes,
            ..StreamOptions::default()
        });
        let got = tokio::time::timeout(
            std::time::Duration::from_secs(120),
            stream.map(|r| r.unwrap()).collect::<Vec<_>>(),
        )
        .await
        .unwrap_or_else(|_| panic!("the mapped stream hung with a {prefetch_bytes}-byte budget"));
        assert_eq!(got.len(), records.len());
        for (got, want) in got.iter().zip(&records) {
            assert!(same(got, want), "{}", want.id);
        }
    }
}
