//! `Location` against real servers: s3s-fs (S3 with SigV4) and nginx (HTTP ranges).

use bytes::Bytes;
use editshard::advice::hint;
use editshard::storage::{Location, StorageOptions, http_status, is_not_found};
use editshard_tools::servers::{Nginx, S3Server};
use futures_util::TryStreamExt;

fn s3_location(server: &S3Server, url: &str, secret: &str) -> Location {
    let opts = StorageOptions {
        s3_endpoint: Some(server.endpoint.clone()),
        retries: 1,
        ..StorageOptions::default()
    };
    let key = server.access_key.to_string();
    let secret = secret.to_string();
    Location::parse_with_env(url, &opts, move |name| match name {
        "AWS_ACCESS_KEY_ID" => Some(key.clone()),
        "AWS_SECRET_ACCESS_KEY" => Some(secret.clone()),
        _ => None,
    })
    .unwrap()
}

fn pattern(len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_round_trip() {
    let server = S3Server::start();
    server.create_bucket("data");
    let loc = s3_location(&server, "s3://data/sets/one", server.secret_key);

    let data = pattern(300_000);
    loc.put("a/b.bin", data.clone()).await.unwrap();
    // The object landed under the prefix, at exactly that key.
    assert!(server.object_path("data", "sets/one/a/b.bin").is_file());
    assert_eq!(loc.get("a/b.bin").await.unwrap(), data);
    assert_eq!(loc.head("a/b.bin").await.unwrap(), Some(300_000));
    assert_eq!(loc.head("a/none").await.unwrap(), None);
    assert_eq!(
        loc.get_range("a/b.bin", 1000..1010).await.unwrap(),
        data.slice(1000..1010)
    );
    let streamed: Vec<Bytes> = loc
        .get_stream("a/b.bin")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed.concat(), data.to_vec());

    let e = loc.get("a/none").await.unwrap_err();
    assert!(is_not_found(&e), "{e}");
    let text = e.to_string();
    assert!(text.contains("s3://data/sets/one/a/none"), "{text}");
    assert!(text.contains("HTTP 404"), "{text}");

    loc.delete("a/b.bin").await.unwrap();
    assert_eq!(loc.head("a/b.bin").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_put_file_small_and_multipart() {
    let server = S3Server::start();
    server.create_bucket("uploads");
    let loc = s3_location(&server, "s3://uploads", server.secret_key).with_part_size(5 << 20);
    let dir = tempfile::tempdir().unwrap();

    let small = dir.path().join("small.bin");
    std::fs::write(&small, pattern(1234)).unwrap();
    loc.put_file("small.bin", &small).await.unwrap();
    assert_eq!(loc.get("small.bin").await.unwrap(), pattern(1234));

    // 12 MiB at a 5 MiB part size: a three-part upload.
    let big_data = pattern(12 << 20);
    let big = dir.path().join("big.bin");
    std::fs::write(&big, &big_data).unwrap();
    loc.put_file("dir/big.bin", &big).await.unwrap();
    assert_eq!(loc.head("dir/big.bin").await.unwrap(), Some(12 << 20));
    let tail = loc
        .get_range("dir/big.bin", (12 << 20) - 100..12 << 20)
        .await
        .unwrap();
    assert_eq!(tail, big_data.slice((12 << 20) - 100..));
    assert_eq!(loc.get("dir/big.bin").await.unwrap(), big_data);

    // A missing local file fails before anything is uploaded.
    let e = loc
        .put_file("never.bin", &dir.path().join("nope"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
    assert_eq!(loc.head("never.bin").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_wrong_secret_is_access_denied_with_advice() {
    let server = S3Server::start();
    server.create_bucket("priv");
    let loc = s3_location(&server, "s3://priv", "WRONG");
    let e = loc.put("x", Bytes::from_static(b"x")).await.unwrap_err();
    let text = format!("{e} ({})", hint(&e));
    assert!(text.contains("s3://priv/x"), "{text}");
    assert!(text.contains("AWS_SECRET_ACCESS_KEY"), "{text}");
    // The status is typed, not only text.
    assert_eq!(http_status(&e), Some(403), "{e}");
    assert!(!server.object_path("priv", "x").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_reads_with_ranges_and_no_extra_requests() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("ds/sub")).unwrap();
    let data = pattern(50_000);
    std::fs::write(root.path().join("ds/sub/obj.bin"), &data).unwrap();
    let nginx = Nginx::start(root.path());
    let loc = Location::parse(&format!("{}/ds/", nginx.url()), &StorageOptions::default()).unwrap();

    assert_eq!(
        loc.get_range("sub/obj.bin", 100..200).await.unwrap(),
        data.slice(100..200)
    );
    assert_eq!(loc.get("sub/obj.bin").await.unwrap(), data);
    assert_eq!(loc.head("sub/obj.bin").await.unwrap(), Some(50_000));
    assert_eq!(loc.head("sub/missing").await.unwrap(), None);
    let e = loc.get("sub/missing").await.unwrap_err();
    assert!(is_not_found(&e), "{e}");
    assert!(e.to_string().contains("/ds/sub/missing"), "{e}");

    let log = {
        nginx.wait_for_requests(5);
        nginx.access_log()
    };
    // One request per call: GET with Range, GET, HEAD, HEAD, GET.
    assert_eq!(log.len(), 5, "{log:#?}");
    assert_eq!(log[0].path, "/ds/sub/obj.bin");
    assert_eq!(log[0].range.as_deref(), Some("bytes=100-199"));
    assert_eq!(log[0].status, 206);
    assert_eq!(log[2].method, "HEAD");
}
