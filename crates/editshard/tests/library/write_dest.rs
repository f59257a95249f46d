//! `DestinationWriter`: a dataset written to a local directory or to S3 (s3s-fs) under the
//! destination's lock, read back record for record; an aborted or failed writer leaves
//! nothing; a second writer, a finished dataset and a directory of other files are refused.

use std::path::Path;

use editshard::ErrorKind;
use editshard::lock::LOCK_NAME;
use editshard::manifest::MANIFEST_NAME;
use editshard::read::{Dataset, StreamOptions};
use editshard::record::Record;
use editshard::storage::{Location, StorageOptions};
use editshard::write::{DestinationOptions, DestinationWriter};
use editshard_tools::fixtures::{mixed, same};
use editshard_tools::servers::S3Server;
use futures_util::StreamExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Small shards, so that a few dozen records make several.
fn options() -> DestinationOptions {
    DestinationOptions {
        shard_bytes: 16 << 10,
        command: "write_dest test".into(),
        ..DestinationOptions::default()
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn read_all(rt: &tokio::runtime::Runtime, loc: Location) -> Vec<Record> {
    rt.block_on(async {
        let ds = Dataset::open(loc).await.unwrap();
        ds.stream(StreamOptions::default())
            .map(|r| r.unwrap())
            .collect()
            .await
    })
}

#[test]
fn a_local_dataset_is_written_whole_and_reads_back_record_for_record() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let records = mixed(40, Some(1_500));
    let mut w =
        DestinationWriter::create(Location::local(&out), options(), rt.handle().clone()).unwrap();
    assert!(
        out.join(LOCK_NAME).is_file(),
        "the lock is held while writing"
    );
    for r in &records {
        w.append(r).unwrap();
    }
    assert!(
        !out.join(MANIFEST_NAME).exists(),
        "no manifest before finish"
    );
    assert_eq!(w.records(), 40);
    let manifest = w.finish().unwrap();
    assert_eq!(manifest.records, 40);
    assert!(
        manifest.shards.len() > 2,
        "{} shards",
        manifest.shards.len()
    );
    assert!(!out.join(LOCK_NAME).exists(), "the lock is released");
    let got = read_all(&rt, Location::local(&out));
    assert_eq!(got.len(), records.len());
    assert!(got.iter().zip(&records).all(|(a, b)| same(a, b)));
}

#[test]
fn a_second_writer_a_finished_dataset_and_other_files_are_refused() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let loc = Location::local(&out);
    let first = DestinationWriter::create(loc.clone(), options(), rt.handle().clone()).unwrap();
    let err = DestinationWriter::create(loc.clone(), options(), rt.handle().clone())
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("locked") && msg.contains("write_dest test"),
        "{msg}"
    );
    first.finish().unwrap();
    let err = DestinationWriter::create(loc, options(), rt.handle().clone())
        .err()
        .unwrap();
    assert!(err.to_string().contains("already holds a dataset"), "{err}");

    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"mine").unwrap();
    std::fs::write(other.join("shard-00000.esd.partial"), b"left by a kill").unwrap();
    let err = DestinationWriter::create(Location::local(&other), options(), rt.handle().clone())
        .err()
        .unwrap();
    assert!(err.to_string().contains("notes.txt"), "{err}");
    assert_eq!(
        files_in(&other),
        ["notes.txt"],
        "a killed writer's leftover is removed"
    );
}

#[test]
fn abort_removes_every_shard_and_a_directory_it_created() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut w =
        DestinationWriter::create(Location::local(&out), options(), rt.handle().clone()).unwrap();
    for r in &mixed(30, Some(1_500)) {
        w.append(r).unwrap();
    }
    assert!(w.manifest().shards.len() > 1);
    w.abort().unwrap();
    assert!(!out.exists(), "left: {:?}", files_in(&out));

    // An existing (empty) directory stays, empty.
    std::fs::create_dir(&out).unwrap();
    let mut w =
        DestinationWriter::create(Location::local(&out), options(), rt.handle().clone()).unwrap();
    w.append(&mixed(1, None)[0]).unwrap();
    w.abort().unwrap();
    assert!(files_in(&out).is_empty(), "left: {:?}", files_in(&out));
}

#[test]
fn a_repeated_id_is_refused_and_the_writer_goes_on() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut w = DestinationWriter::create(
        Location::local(dir.path()),
        DestinationOptions {
            shard_bytes: 1,
            ..options()
        },
        rt.handle().clone(),
    )
    .unwrap();
    let records = mixed(3, None);
    for r in &records {
        w.append(r).unwrap();
    }
    // One record per shard: the repeat is of a finished shard's record, and of the open one's.
    for r in [&records[0], &records[2]] {
        let err = w.append(r).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Rejected(_)), "{err}");
        assert_eq!(err.id(), Some(r.id.as_str()));
    }
    let manifest = w.finish().unwrap();
    assert_eq!(manifest.records, 3);
    assert!(
        manifest.shards.iter().all(|s| s.records == 1),
        "no empty shard from a refused record"
    );
    let got = read_all(&rt, Location::local(dir.path()));
    assert!(got.iter().zip(&records).all(|(a, b)| same(a, b)) && got.len() == 3);
}

fn s3_location(server: &S3Server, url: &str) -> Location {
    let opts = StorageOptions {
        s3_endpoint: Some(server.endpoint.clone()),
        ..StorageOptions::default()
    };
    let (key, secret) = (server.access_key, server.secret_key);
    Location::parse_with_env(url, &opts, move |name| match name {
        "AWS_ACCESS_KEY_ID" => Some(key.to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some(secret.to_string()),
        _ => None,
    })
    .unwrap()
}

#[test]
fn an_s3_dataset_is_uploaded_shard_by_shard_and_an_abort_deletes_it() {
    let rt = runtime();
    let server = S3Server::start();
    server.create_bucket("out");
    let staging = tempfile::tempdir().unwrap();
    let opts = DestinationOptions {
        staging_parent: Some(staging.path().to_path_buf()),
        ..options()
    };
    let records = mixed(40, Some(1_500));
    let loc = s3_location(&server, "s3://out/ds");
    let mut w = DestinationWriter::create(loc.clone(), opts.clone(), rt.handle().clone()).unwrap();
    assert!(
        server
            .object_path("out", &format!("ds/{LOCK_NAME}"))
            .is_file()
    );
    let err = DestinationWriter::create(loc.clone(), opts.clone(), rt.handle().clone())
        .err()
        .unwrap();
    assert!(err.to_string().contains("locked"), "{err}");
    for r in &records {
        w.append(r).unwrap();
    }
    let manifest = w.finish().unwrap();
    assert!(manifest.shards.len() > 2);
    assert!(files_in(staging.path()).is_empty(), "staging removed");
    assert!(
        !server
            .object_path("out", &format!("ds/{LOCK_NAME}"))
            .exists()
    );
    let got = read_all(&rt, loc);
    assert!(got.iter().zip(&records).all(|(a, b)| same(a, b)) && got.len() == 40);

    let loc = s3_location(&server, "s3://out/aborted");
    let mut w = DestinationWriter::create(loc, opts, rt.handle().clone()).unwrap();
    for r in &records {
        w.append(r).unwrap();
    }
    assert!(w.manifest().shards.len() > 2);
    w.abort().unwrap();
    let left = files_in(&server.object_path("out", "aborted"));
    assert!(left.is_empty(), "left in the bucket: {left:?}");
    assert!(files_in(staging.path()).is_empty(), "staging removed");
}
