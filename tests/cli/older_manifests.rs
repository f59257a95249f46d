//! A dataset whose manifest predates `crc64nvme` (spec section 12): still valid for every
//! command, and `mirror` and `mix` write the field into the manifests they write, computed as
//! the shards' bytes pass (every other field kept as it was).

use std::fs;
use std::path::Path;

use editshard::manifest::Manifest;
use editshard::write::DatasetWriter;
use editshard_tools::cli::{editshard, s, text};
use editshard_tools::view_fixture;

/// A dataset of several shards whose manifest has no `crc64nvme`; returns the manifest as
/// written (with the field) for reference.
fn write_older(dir: &Path) -> Manifest {
    let mut w = DatasetWriter::create(dir)
        .unwrap()
        .target_shard_bytes(16 << 10);
    for r in view_fixture::records(8) {
        w.append(&r).unwrap();
    }
    let m = w.finish().unwrap();
    assert!(m.shards.len() > 1);
    fs::write(
        dir.join("manifest.json"),
        without_crcs(&dir.join("manifest.json")),
    )
    .unwrap();
    m
}

/// The manifest at `path` as JSON text, every shard's `crc64nvme` removed.
fn without_crcs(path: &Path) -> Vec<u8> {
    let mut doc: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    for sh in doc["shards"].as_array_mut().unwrap() {
        sh.as_object_mut().unwrap().remove("crc64nvme");
    }
    let mut out = serde_json::to_vec_pretty(&doc).unwrap();
    out.push(b'\n');
    out
}

fn crcs(path: &Path) -> Vec<Option<String>> {
    let m = Manifest::parse(&fs::read(path).unwrap()).unwrap();
    m.shards.into_iter().map(|sh| sh.crc64nvme).collect()
}

#[test]
fn mirror_and_mix_write_the_crc_an_older_manifest_lacks() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, copy, mixed) = (
        tmp.path().join("src"),
        tmp.path().join("copy"),
        tmp.path().join("mixed"),
    );
    let written = write_older(&src);
    let want: Vec<Option<String>> = written
        .shards
        .iter()
        .map(|sh| sh.crc64nvme.clone())
        .collect();
    assert!(want.iter().all(Option::is_some));
    assert!(crcs(&src.join("manifest.json")).iter().all(Option::is_none));
    let o = editshard(crate::BIN, &["verify", s(&src)]);
    assert!(
        o.status.success(),
        "an older manifest stays valid: {}",
        text(&o)
    );

    let o = editshard(crate::BIN, &["mirror", s(&src), s(&copy)]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(crcs(&copy.join("manifest.json")), want);
    // Nothing else changed.
    assert_eq!(
        without_crcs(&copy.join("manifest.json")),
        fs::read(src.join("manifest.json")).unwrap()
    );
    let o = editshard(crate::BIN, &["verify", s(&copy)]);
    assert!(o.status.success(), "{}", text(&o));

    for extra in [&[][..], &["--copy"][..]] {
        let _ = fs::remove_dir_all(&mixed);
        let mut args = vec!["mix", "--out", s(&mixed), s(&src)];
        args.extend_from_slice(extra);
        let o = editshard(crate::BIN, &args);
        assert!(o.status.success(), "{extra:?}: {}", text(&o));
        assert_eq!(crcs(&mixed.join("manifest.json")), want, "{extra:?}");
    }
}
