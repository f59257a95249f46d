//! `editshard export`: convert followed by export gives back every converted row unchanged
//! (keys, key order, values; only `local_input_image` is set to the exported source) and
//! every image byte for byte, on the generated mini-release and on the committed sample; the
//! exported release converts again to the same records; WebDataset tars hold every image;
//! hostile paths never leave the output directory.

use editshard_tools::cli::{editshard, s, text};

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use editshard::manifest::Manifest;
use editshard::record::{Image, Kind, Record, Turn};
use editshard::write::DatasetWriter;
use editshard_tools::convert_support::records;
use editshard_tools::release::{ReleaseSpec, Subset, generate_release, normalize_release_path};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

fn rows(path: &Path) -> Vec<Map<String, Value>> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn sha_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Checks an export of a conversion of `release` (every row converted): rows, order, images.
/// `source_file` gives the original bytes of a row's source.
fn check_release_export(release: &Path, export: &Path, source_file: impl Fn(&str) -> PathBuf) {
    let mut images = 0;
    for subset in Subset::ALL {
        let original = rows(&release.join(subset.jsonl_rel()));
        let exported = rows(&export.join(subset.jsonl_rel()));
        assert_eq!(
            exported.len(),
            original.len(),
            "{} row count",
            subset.name()
        );
        for (o, e) in original.iter().zip(&exported) {
            // local_input_image is the one field export sets, appended when absent.
            let mut e = e.clone();
            let local = e
                .shift_remove("local_input_image")
                .expect("local_input_image");
            let local = local.as_str().unwrap().to_string();
            assert_eq!(e.keys().collect::<Vec<_>>(), o.keys().collect::<Vec<_>>());
            assert_eq!(&e, o, "{} row changed", subset.name());
            assert!(local.starts_with("sources/"), "{local}");
            let url = o
                .get("open_image_input_url")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| {
                    let files = o["files"].as_array().unwrap();
                    let src = files.iter().find(|f| f["id"] == "original_input_image");
                    src.unwrap()["url"].as_str().unwrap().to_string()
                });
            assert_eq!(
                fs::read(export.join(&local)).unwrap(),
                fs::read(source_file(&url)).unwrap(),
                "source of {url}"
            );
            // Every edited image, byte for byte, at its relative path.
            let mut refs: Vec<String> = Vec::new();
            if let Some(p) = o.get("output_image").and_then(Value::as_str) {
                refs.push(p.into());
            }
            for r in o
                .get("rejected_images")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                refs.push(r.as_str().unwrap().into());
            }
            for f in o
                .get("files")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if f["id"] != "original_input_image" {
                    refs.push(f["url"].as_str().unwrap().into());
                }
            }
            for r in refs {
                let rel = normalize_release_path(&r).unwrap();
                let want = fs::read(release.join(&rel)).unwrap();
                assert_eq!(fs::read(export.join(&rel)).unwrap(), want, "{rel}");
                images += 1;
            }
        }
    }
    assert!(images > 30);
}

#[test]
fn mini_release_round_trips_and_converts_again() {
    let tmp = tempfile::tempdir().unwrap();
    let rel = generate_release(&tmp.path().join("rel"), &ReleaseSpec::default()).unwrap();
    let (ds, ex, again) = (
        tmp.path().join("ds"),
        tmp.path().join("ex"),
        tmp.path().join("again"),
    );
    let mut args = vec![
        "convert".to_string(),
        s(&rel.root).into(),
        "--out".into(),
        s(&ds).into(),
    ];
    for m in rel.map_url_args() {
        args.extend(["--map-url".to_string(), m]);
    }
    args.extend(["--shard-size".into(), "30000".into()]);
    let o = Command::new(crate::BIN).args(&args).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let first = records(&ds);
    assert_eq!(first.len(), rel.rows.len());

    let o = editshard(crate::BIN, &["export", s(&ds), "--to", s(&ex)]);
    assert!(o.status.success(), "{}", text(&o));
    check_release_export(&rel.root, &ex, |url| rel.flickr_path_for(url).unwrap());
    // Nothing but the layout: no temporary files, no stray directories.
    let top: Vec<String> = fs::read_dir(&ex)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut top = top;
    top.sort();
    assert_eq!(top, ["images", "jsonl", "sources"]);
    assert!(!fs::read_dir(ex.join("jsonl")).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".partial")
    }));

    // The export is a release: it converts offline (sources from local_input_image) to the
    // same records, apart from the local_input_image field the export added.
    let o = editshard(
        crate::BIN,
        &[
            "convert",
            s(&ex),
            "--out",
            s(&again),
            "--shard-size",
            "30000",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let by_id: BTreeMap<String, Record> = records(&again)
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    assert_eq!(by_id.len(), first.len());
    for mut a in first {
        let mut b = by_id[&a.id].clone();
        for r in [&mut a, &mut b] {
            r.extras.remove("local_input_image");
            r.extras.remove("editshard.release");
        }
        assert_eq!(a, b, "{}", a.id);
    }
}

#[test]
fn sample_release_round_trips() {
    let sample = crate::workspace().join("examples/sample-release");
    let tmp = tempfile::tempdir().unwrap();
    let (ds, ex) = (tmp.path().join("ds"), tmp.path().join("ex"));
    let csv = sample.join("openimages/train-images-boxable-with-rotation.csv");
    let o = editshard(
        crate::BIN,
        &[
            "convert",
            s(&sample),
            "--out",
            s(&ds),
            "--openimages-csv",
            s(&csv),
            "--openimages-dir",
            s(&sample.join("openimages")),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = editshard(crate::BIN, &["export", s(&ds), "--to", s(&ex)]);
    assert!(o.status.success(), "{}", text(&o));
    // The sample's sources are also at their Flickr URL path under flickr/.
    check_release_export(&sample, &ex, |url| {
        sample
            .join("flickr")
            .join(url.strip_prefix("https://").unwrap())
    });
    // Exporting into a non-empty directory needs --force.
    let o = editshard(crate::BIN, &["export", s(&ds), "--to", s(&ex)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--force"), "{}", text(&o));
}

/// One WebDataset sample: its key and its members (suffix after the key, bytes), in order.
type Sample = (String, Vec<(String, Vec<u8>)>);

/// The samples of a tar, in order.
fn read_tar(path: &Path) -> Vec<Sample> {
    let mut out: Vec<Sample> = Vec::new();
    let mut archive = tar::Archive::new(fs::File::open(path).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let (key, suffix) = name.split_once('.').unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        match out.last_mut() {
            Some((k, members)) if k == key => members.push((suffix.into(), bytes)),
            _ => out.push((key.into(), vec![(suffix.into(), bytes)])),
        }
    }
    out
}

#[test]
fn webdataset_holds_every_record_and_image() {
    let sample = crate::workspace().join("examples/sample-release");
    let tmp = tempfile::tempdir().unwrap();
    let (ds, wds) = (tmp.path().join("ds"), tmp.path().join("wds"));
    let csv = sample.join("openimages/train-images-boxable-with-rotation.csv");
    let o = editshard(
        crate::BIN,
        &[
            "convert",
            s(&sample),
            "--out",
            s(&ds),
            "--shard-size",
            "20000",
            "--openimages-csv",
            s(&csv),
            "--openimages-dir",
            s(&sample.join("openimages")),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = editshard(
        crate::BIN,
        &["export", s(&ds), "--to", s(&wds), "--format", "webdataset"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let m = Manifest::parse(&fs::read(ds.join("manifest.json")).unwrap()).unwrap();
    assert!(m.shards.len() > 1);
    let mut samples = Vec::new();
    for i in 0..m.shards.len() {
        let got = read_tar(&wds.join(format!("shard-{i:05}.tar")));
        assert_eq!(got.len() as u64, m.shards[i].records);
        samples.extend(got);
    }
    let recs = records(&ds);
    assert_eq!(samples.len(), recs.len());
    for (g, (key, members)) in samples.iter().enumerate() {
        let r = &recs[g];
        assert_eq!(key, &format!("{g:09}"));
        let json: Value = serde_json::from_slice(&members[0].1).unwrap();
        assert_eq!(members[0].0, "json");
        assert_eq!(json["id"], r.id.as_str());
        let mut want: Vec<(String, String)> = vec![("src.jpg".into(), r.source.sha256_hex())];
        for (t, turn) in r.turns.iter().enumerate() {
            let stem = if r.kind == Kind::MultiTurn {
                format!("turn{}", t + 1)
            } else {
                "edit".into()
            };
            want.push((format!("{stem}.png"), turn.output.sha256_hex()));
            for (k, rej) in turn.rejected.iter().enumerate() {
                want.push((format!("rejected{}.png", k + 1), rej.sha256_hex()));
            }
        }
        let got: Vec<(String, String)> = members[1..]
            .iter()
            .map(|(n, b)| (n.clone(), sha_hex(b)))
            .collect();
        assert_eq!(got, want, "{}", r.id);
    }
    // Deterministic: a second export is byte-identical.
    let wds2 = tmp.path().join("wds2");
    let o = editshard(
        crate::BIN,
        &["export", s(&ds), "--to", s(&wds2), "--format", "webdataset"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        fs::read(wds.join("shard-00000.tar")).unwrap(),
        fs::read(wds2.join("shard-00000.tar")).unwrap()
    );
}

fn png(seed: u8) -> Image {
    let img = image::RgbImage::from_fn(4, 3, |x, _| image::Rgb([seed, x as u8, 7]));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    Image::from_bytes(out.into()).unwrap()
}

/// An sft record as convert makes it, with `output_image` = `path`.
pub fn sft_record(n: u8, path: &str, source_url: &str) -> Record {
    let mut src = png(n);
    src.url = Some(source_url.into());
    let mut out = png(100 + n);
    out.path = Some(path.into());
    let mut turn = Turn::new(out);
    turn.instruction = Some("x".into());
    let mut r = Record::new(format!("sft/{n}/{path}"), Kind::Sft, src, vec![turn]);
    r.provenance.subset = Some("sft".into());
    r.provenance.line = Some(u64::from(n));
    r.extras.insert(
        "editshard.release".into(),
        serde_json::json!({"keys": ["open_image_input_url", "text", "output_image"]}),
    );
    r
}

#[test]
fn hostile_paths_stay_inside_the_output_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    let mut w = DatasetWriter::create(&ds).unwrap();
    let hostile = [
        "../../escaped.png",
        "/tmp/escaped-abs.png",
        "jsonl/sft.jsonl",
        "images\\..\\..\\x.png",
        "images/./x.png",
    ];
    for (i, p) in hostile.iter().enumerate() {
        w.append(&sft_record(i as u8, p, "https://h/a.jpg"))
            .unwrap();
    }
    // A safe record whose source URL tries to climb out: the source goes by content hash.
    w.append(&sft_record(
        50,
        "images/ok.png",
        "https://h/../../../escaped.jpg",
    ))
    .unwrap();
    w.append(&sft_record(51, "images/linked/y.png", "https://h/b.jpg"))
        .unwrap();
    w.finish().unwrap();

    let out = tmp.path().join("deep/out");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(&out).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir_all(out.join("images")).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("images/linked")).unwrap();
    let o = editshard(crate::BIN, &["export", s(&ds), "--to", s(&out), "--force"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report = text(&o);
    assert!(report.contains("6 records not exported"), "{report}");
    assert!(report.contains("symbolic link"), "{report}");
    // Only the safe record made it, with its source named by hash.
    let sft = rows(&out.join("jsonl/sft.jsonl"));
    assert_eq!(sft.len(), 1, "{sft:?}");
    let local = sft[0]["local_input_image"].as_str().unwrap();
    assert!(local.starts_with("sources/by-sha256/"), "{local}");
    assert!(out.join(local).is_file());
    assert!(out.join("images/ok.png").is_file());
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote through a symlink"
    );
    let escaped = [
        "escaped.png",
        "deep/escaped.png",
        "escaped.jpg",
        "deep/escaped.jpg",
    ];
    for e in escaped {
        assert!(!tmp.path().join(e).exists(), "{e}");
    }
    assert!(!Path::new("/tmp/escaped-abs.png").exists());
}

/// A symbolic link planted at any temporary name an export writes under is replaced, never
/// written through: the file it points at stays as it was.
#[test]
fn symlinks_at_temporary_names_are_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    let mut w = DatasetWriter::create(&ds).unwrap();
    w.append(&sft_record(1, "images/ok.png", "https://h/a.jpg"))
        .unwrap();
    w.append(&sft_record(2, "images/sub/x.png", "https://h/b.jpg"))
        .unwrap();
    w.finish().unwrap();
    let victim = tmp.path().join("victim.txt");
    fs::write(&victim, b"precious").unwrap();

    let release = tmp.path().join("release");
    let planted = [
        "jsonl/sft.jsonl.partial".to_string(),
        "jsonl/.sft.rows.partial".to_string(),
        "images/ok.png.partial".to_string(),
        "sources/h/a.jpg.partial".to_string(),
    ];
    for p in &planted {
        let at = release.join(p);
        fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&victim, &at).unwrap();
    }
    let o = editshard(
        crate::BIN,
        &["export", s(&ds), "--to", s(&release), "--force"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(release.join("images/ok.png").is_file());

    let wds = tmp.path().join("wds");
    fs::create_dir_all(&wds).unwrap();
    std::os::unix::fs::symlink(&victim, wds.join("shard-00000.tar.partial")).unwrap();
    let o = editshard(
        crate::BIN,
        &[
            "export",
            s(&ds),
            "--format",
            "webdataset",
            "--to",
            s(&wds),
            "--force",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    // A directory link inside --to: nothing is created through it, not even directories.
    let linked = tmp.path().join("linked");
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir_all(&linked).unwrap();
    fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, linked.join("images")).unwrap();
    let o = editshard(
        crate::BIN,
        &["export", s(&ds), "--to", s(&linked), "--force"],
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert_eq!(
        fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "wrote through the link"
    );
    for p in &planted {
        assert!(
            fs::symlink_metadata(release.join(p)).is_err(),
            "{p} left behind"
        );
    }
}

/// The export formats, as `--format` names them.
pub const FORMATS: [&str; 3] = ["release", "webdataset", "hf-parquet"];

/// The ways [`damaged_dataset`] damages a dataset.
pub const DAMAGES: [&str; 2] = ["a lying record count", "a shard cut short"];

/// A dataset of 8 sft records in several shards, damaged as `damage` ([`DAMAGES`]) says, so
/// that every export of it fails (late: after every shard but the damaged one was read).
/// Returns the manifest as written and the index of the shard that the error must name.
pub fn damaged_dataset(ds: &Path, damage: &str) -> (Manifest, usize) {
    let mut w = DatasetWriter::create(ds).unwrap().target_shard_bytes(1500);
    for n in 0..8u8 {
        let path = format!("images/{n}.png");
        w.append(&sft_record(n, &path, &format!("https://h/{n}.jpg")))
            .unwrap();
    }
    let mut m = w.finish().unwrap();
    assert!(m.shards.len() >= 2 && m.shards[0].records >= 2, "{m:?}");
    let last = m.shards.len() - 1;
    match damage {
        "a lying record count" => {
            m.shards[0].records -= 1;
            m.records -= 1;
            // The summaries lie in step (else the manifest is refused on open).
            *m.kinds.values_mut().find(|n| **n > 0).unwrap() -= 1;
            fs::write(ds.join("manifest.json"), m.to_json().unwrap()).unwrap();
            (m, 0)
        }
        _ => {
            let path = ds.join(&m.shards[last].path);
            let bytes = fs::read(&path).unwrap();
            fs::write(&path, &bytes[..bytes.len() - 20]).unwrap();
            (m, last)
        }
    }
}

/// Every exporter reads each shard to its verified end (index and trailer checked), or fails:
/// a record beyond a manifest's lying count is an error, not dropped or moved to another
/// tar, and a shard whose tail was cut off is an error, not an export with exit 0.
#[test]
fn exports_read_every_shard_to_its_verified_end() {
    for format in FORMATS {
        for damage in DAMAGES {
            let tmp = tempfile::tempdir().unwrap();
            let ds = tmp.path().join("ds");
            let (m, shard) = damaged_dataset(&ds, damage);
            let out = tmp.path().join("out");
            let o = editshard(
                crate::BIN,
                &["export", s(&ds), "--to", s(&out), "--format", format],
            );
            assert!(
                !o.status.success(),
                "{format}, {damage}: exported with success\n{}",
                text(&o)
            );
            assert!(
                text(&o).contains(&m.shards[shard].path),
                "{format}, {damage}: the error does not name the shard\n{}",
                text(&o)
            );
            // A failed export leaves no temporary file behind.
            let left: Vec<String> = editshard_tools::cli::tree(&out)
                .into_keys()
                .filter(|p| p.ends_with(".partial"))
                .collect();
            assert!(left.is_empty(), "{format}, {damage}: left {left:?}");
        }
    }
}
