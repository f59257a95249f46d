//! `Location` on local directories: parsing, path checks, atomic writes, errors.

use bytes::Bytes;
use editshard::storage::{Location, StorageOptions, is_not_found};
use futures_util::TryStreamExt;

fn opts() -> StorageOptions {
    StorageOptions::default()
}

#[test]
fn parses_every_scheme_and_refuses_others() {
    let o = opts();
    let l = Location::parse("some/dir", &o).unwrap();
    assert_eq!(l.is_local().unwrap(), std::path::Path::new("some/dir"));
    let l = Location::parse("file:///abs/dir", &o).unwrap();
    assert_eq!(l.is_local().unwrap(), std::path::Path::new("/abs/dir"));
    let l = Location::parse("http://user:secret@127.0.0.1:1/data/", &o).unwrap();
    assert!(l.is_local().is_none());
    assert_eq!(l.display(), "http://127.0.0.1:1/data");
    let no_env = |_: &str| None;
    let l = Location::parse_with_env("s3://bucket/a/b/", &o, no_env).unwrap();
    assert_eq!(l.display(), "s3://bucket/a/b");
    assert_eq!(l.child("c").unwrap().display(), "s3://bucket/a/b/c");
    for bad in [
        "",
        "ftp://x/y",
        "file://relative",
        "s3://",
        "s3://bad bucket/x",
        "s3://b/../x",
    ] {
        let e = Location::parse_with_env(bad, &o, no_env).unwrap_err();
        assert!(!e.to_string().is_empty(), "{bad:?}");
    }
}

#[tokio::test]
async fn relative_paths_cannot_escape() {
    let dir = tempfile::tempdir().unwrap();
    let loc = Location::local(dir.path().join("inner"));
    for bad in ["../x", "a/../../x", "/etc/passwd", "", "a//b", "./a"] {
        assert!(loc.get(bad).await.is_err(), "{bad:?}");
        assert!(loc.put(bad, Bytes::new()).await.is_err(), "{bad:?}");
        assert!(loc.child(bad).is_err(), "{bad:?}");
    }
    assert!(!dir.path().join("x").exists());
}

#[tokio::test]
async fn reads_writes_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let loc = Location::local(dir.path());
    let data = Bytes::from((0..100_000u32).map(|i| i as u8).collect::<Vec<_>>());
    loc.put("sub/obj.bin", data.clone()).await.unwrap();
    assert_eq!(loc.get("sub/obj.bin").await.unwrap(), data);
    assert_eq!(loc.head("sub/obj.bin").await.unwrap(), Some(100_000));
    assert_eq!(loc.head("sub/none").await.unwrap(), None);
    assert_eq!(
        loc.get_range("sub/obj.bin", 10..20).await.unwrap(),
        data.slice(10..20)
    );
    let streamed: Vec<Bytes> = loc
        .get_stream("sub/obj.bin")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed.concat(), data.to_vec());
    // Through a child location, the same object.
    let sub = loc.child("sub").unwrap();
    assert_eq!(
        sub.get_range("obj.bin", 0..3).await.unwrap(),
        data.slice(0..3)
    );

    // A range past the end is an error that names the object and the offset.
    let e = loc
        .get_range("sub/obj.bin", 99_990..100_010)
        .await
        .unwrap_err();
    assert!(e.is_corruption(), "{e}");
    assert!(e.to_string().contains("obj.bin"), "{e}");
    assert_eq!(e.offset(), Some(99_990));

    // get_max refuses a larger object.
    assert!(loc.get_max("sub/obj.bin", 1000).await.is_err());
    assert_eq!(loc.get_max("sub/obj.bin", 100_000).await.unwrap(), data);

    // put_file copies; no temporary file is left behind.
    let src = dir.path().join("src.bin");
    std::fs::write(&src, b"file contents").unwrap();
    loc.put_file("copied/x.bin", &src).await.unwrap();
    assert_eq!(
        loc.get("copied/x.bin").await.unwrap().as_ref(),
        b"file contents"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path().join("copied"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["x.bin".to_string()]);

    loc.delete("copied/x.bin").await.unwrap();
    loc.delete("copied/x.bin").await.unwrap();
    assert_eq!(loc.head("copied/x.bin").await.unwrap(), None);

    let e = loc.get("missing.json").await.unwrap_err();
    assert!(is_not_found(&e), "{e}");
    assert!(e.to_string().contains("missing.json"), "{e}");
}
