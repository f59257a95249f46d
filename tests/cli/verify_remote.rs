//! `editshard verify DATASET --remote` against s3s-fs behind the fault proxy (which counts
//! requests and bytes): shards are checked by the CRC-64/NVME the store reports, with no GET
//! of their bodies; a shard the store keeps no checksum for (s3s-fs after a multipart
//! upload), or a manifest without `crc64nvme`, is read and hashed, and the command says so
//! once; a stored object that is not its shard is reported by name with what to do.

use editshard_tools::records;

use std::path::Path;
use std::process::{Command, Output};

use editshard::manifest::Manifest;
use editshard::write::DatasetWriter;
use editshard_tools::cli::{s, text};
use editshard_tools::fault_proxy::FaultProxy;

use crate::mirror_remote::{multipart, multipart_bytes};
use editshard_tools::servers::S3Server;

fn cmd(server_endpoint: &str, server: &S3Server, args: &[&str]) -> Command {
    editshard_tools::cli::editshard_s3_cmd(crate::BIN, server_endpoint, server, args)
}

fn through(proxy: &FaultProxy, server: &S3Server, args: &[&str]) -> Output {
    cmd(&proxy.endpoint(), server, args).output().unwrap()
}

/// Several small shards and one over 5 MiB (uploaded multipart with 5 MiB parts).
fn build(dir: &Path) -> Manifest {
    let mut w = DatasetWriter::create(dir).unwrap().target_shard_bytes(1500);
    let mut all = records::mixed();
    for n in 20..30 {
        all.push(records::sft(n, n));
    }
    let mut r = records::sft(99, 99);
    r.source = records::image(7, "image/jpeg", 2000, 1500, 3 << 20);
    r.turns[0].output = records::image(8, "image/png", 2000, 1500, 3 << 20);
    all.push(r);
    for r in &all {
        w.append(r).unwrap();
    }
    w.finish().unwrap()
}

fn put_through_store(server: &S3Server, url: &str, rel: &str, bytes: Vec<u8>) {
    let loc = server.location(url, Default::default());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(loc.put(rel, bytes.into()))
        .unwrap();
}

#[test]
fn verify_remote_checks_shards_by_the_stores_checksums_without_reading_them() {
    let server = S3Server::start();
    server.create_bucket("verified");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let m = build(&src);
    assert!(m.shards.iter().all(|sh| sh.crc64nvme.is_some()));
    assert!(m.shards.iter().filter(|sh| !multipart(sh)).count() >= 3);
    let url = "s3://verified/ds";
    let o = cmd(
        &server.endpoint,
        &server,
        &["mirror", s(&src), url, "--part-size", "5"],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));

    // Intact: one HEAD per shard; only the multipart shard (no checksum kept by s3s-fs) is
    // read, and that is said once.
    let proxy = FaultProxy::start(server.port);
    let o = through(&proxy, &server, &["verify", url, "--remote"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("all good"), "{out}");
    assert_eq!(out.matches("note:").count(), 1, "{out}");
    assert!(
        out.contains("1 shard(s) were read back") && out.contains("no CRC-64/NVME"),
        "{out}"
    );
    let seen = proxy.seen();
    for sh in &m.shards {
        let of_shard: Vec<_> = seen.iter().filter(|r| r.path.ends_with(&sh.path)).collect();
        let gets = of_shard.iter().filter(|r| r.method == "GET").count();
        assert_eq!(
            gets,
            usize::from(multipart(sh)),
            "{}: {of_shard:?}",
            sh.path
        );
        assert!(
            of_shard.iter().any(|r| r.method == "HEAD"),
            "{}: {of_shard:?}",
            sh.path
        );
    }
    let big = multipart_bytes(&m);
    let (_, received) = proxy.body_bytes();
    let manifest_len = std::fs::metadata(src.join("manifest.json")).unwrap().len();
    assert!(
        (received as u64) <= big + 2 * manifest_len + (16 << 10),
        "{received} bytes received; shards other than the multipart one were read"
    );

    // One shard replaced in the store by other bytes of its length: reported by path, with
    // the store's CRC against the manifest's and what to do; still not read.
    let victim = m.shards.iter().find(|sh| !multipart(sh)).unwrap();
    let mut bytes = std::fs::read(src.join(&victim.path)).unwrap();
    bytes[40] ^= 1;
    put_through_store(&server, url, &victim.path, bytes);
    let proxy = FaultProxy::start(server.port);
    let o = through(&proxy, &server, &["verify", url, "--remote"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains(&format!("DAMAGED {url}/{}: CRC-64/NVME", victim.path))
            && out.contains(&format!(
                "where the manifest says {}",
                victim.crc64nvme.as_deref().unwrap()
            ))
            && out.contains("hint:")
            && out.contains("editshard mirror"),
        "{out}"
    );
    assert!(
        !proxy
            .seen()
            .iter()
            .any(|r| r.method == "GET" && r.path.ends_with(&victim.path)),
        "{:?}",
        proxy.seen()
    );
    // As JSON too.
    let o = cmd(
        &server.endpoint,
        &server,
        &["verify", url, "--remote", "--json"],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(
        v["problems"][0].as_str().unwrap().contains(&victim.path),
        "{v}"
    );
    assert!(
        v["note"].as_str().is_some() && v["advice"].as_str().is_some(),
        "{v}"
    );

    // A manifest written before crc64nvme: still valid; every shard is read and hashed (the
    // damaged one found by its SHA-256), and that is said once.
    let mut old: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("manifest.json")).unwrap()).unwrap();
    for sh in old["shards"].as_array_mut().unwrap() {
        sh.as_object_mut().unwrap().remove("crc64nvme");
    }
    put_through_store(
        &server,
        url,
        "manifest.json",
        serde_json::to_vec(&old).unwrap(),
    );
    let o = cmd(&server.endpoint, &server, &["verify", url, "--remote"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains(&format!("DAMAGED {url}/{}: SHA-256", victim.path))
            && out.matches("note:").count() == 1
            && out.contains("manifest records no crc64nvme"),
        "{out}"
    );

    // Uploads with EDITSHARD_S3_CHECKSUM=sha256 (for a store that refuses CRC-64/NVME): the
    // store keeps no CRC, so every shard is read and hashed, and that is said.
    let o = cmd(
        &server.endpoint,
        &server,
        &["mirror", s(&src), "s3://verified/sha"],
    )
    .env("EDITSHARD_S3_CHECKSUM", "sha256")
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let proxy = FaultProxy::start(server.port);
    let o = through(
        &proxy,
        &server,
        &["verify", "s3://verified/sha", "--remote"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let n = m.shards.len();
    assert!(
        text(&o).contains(&format!("note: {n} shard(s) were read back")),
        "{}",
        text(&o)
    );
    let gets = proxy.seen().iter().filter(|r| r.method == "GET").count();
    assert!(gets > n, "{:?}", proxy.seen());
}
