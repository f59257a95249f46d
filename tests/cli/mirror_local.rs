//! `editshard mirror` between local directories: damage at SRC and at DST is reported and
//! never published or overwritten silently, `--verify-only` and `--force`, and `--subset`
//! producing a dataset that `editshard verify` accepts.

use editshard_tools::records;

use editshard_tools::cli::{editshard, s, text};

use std::fs;
use std::path::Path;

use editshard::manifest::Manifest;
use editshard::record::{Kind, Record};
use editshard::shard::ShardReader;
use editshard::write::DatasetWriter;

/// Replaces every image's bytes with a real PNG (`editshard verify` checks image headers),
/// the same PNG for the same original bytes so that shared images stay shared.
fn realize(r: &mut Record) {
    for img in r.images_mut() {
        let seed = img.sha256[0] as u32 * 256 + img.sha256[1] as u32;
        let pixels = image::RgbImage::from_fn(8 + seed % 5, 6, |x, y| {
            image::Rgb([(seed >> 3) as u8, (x * 30) as u8, (y * 40) as u8])
        });
        let mut png = Vec::new();
        pixels
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let real = editshard::record::Image::from_bytes(png.into()).unwrap();
        img.data = real.data;
        img.len = real.len;
        img.sha256 = real.sha256;
        img.media_type = real.media_type;
        img.width = real.width;
        img.height = real.height;
    }
}

/// A dataset of several small shards holding every kind.
fn build(dir: &Path) -> Manifest {
    let mut w = DatasetWriter::create(dir).unwrap().target_shard_bytes(1500);
    let mut all = records::mixed();
    for n in 20..32 {
        all.push(records::sft(n, n));
        all.push(records::multi_turn(n, n, 2));
    }
    for r in &mut all {
        realize(r);
        w.append(r).unwrap();
    }
    let m = w.finish().unwrap();
    assert!(
        m.shards.len() >= 5,
        "want several shards, got {}",
        m.shards.len()
    );
    m
}

fn manifest(dir: &Path) -> Manifest {
    Manifest::parse(&fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn records_of(dir: &Path, shard: &str) -> Vec<Record> {
    let f = fs::File::open(dir.join(shard)).unwrap();
    ShardReader::new(std::io::BufReader::new(f))
        .map(|r| r.unwrap())
        .collect()
}

fn flip_byte(path: &Path, at: usize) {
    let mut b = fs::read(path).unwrap();
    b[at] ^= 0x40;
    fs::write(path, b).unwrap();
}

#[test]
fn damage_at_src_or_dst_is_reported_and_never_published() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    let m = build(&src);
    let victim = m.shards[1].path.clone();
    let victim_path = src.join(&victim);
    let good = fs::read(&victim_path).unwrap();

    // A damaged SRC shard: reported by name, nothing under its name at DST, no manifest.
    flip_byte(&victim_path, good.len() / 2);
    let o = editshard(crate::BIN, &["mirror", s(&src), s(&dst), "--jobs", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains(&victim) && out.contains("does not match its manifest"),
        "{out}"
    );
    assert!(!dst.join(&victim).exists(), "a damaged copy was published");
    assert!(
        !dst.join("manifest.json").exists(),
        "manifest written despite a failure"
    );
    for (i, sh) in m.shards.iter().enumerate() {
        if i != 1 {
            assert_eq!(
                fs::read(dst.join(&sh.path)).unwrap(),
                fs::read(src.join(&sh.path)).unwrap()
            );
        }
    }

    // Repaired SRC: the re-run copies only the missing shard and completes.
    fs::write(&victim_path, &good).unwrap();
    let o = editshard(crate::BIN, &["mirror", s(&src), s(&dst)]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains(&format!("copied {victim}")), "{out}");
    let skipped = out.matches("skipped shard-").count();
    assert_eq!(skipped, m.shards.len() - 1, "{out}");
    assert_eq!(
        fs::read(dst.join("manifest.json")).unwrap(),
        fs::read(src.join("manifest.json")).unwrap()
    );
    let o = editshard(crate::BIN, &["verify", s(&dst)]);
    assert!(o.status.success(), "{}", text(&o));

    // A damaged DST shard: reported, left alone without --force, in a normal run and with
    // --verify-only.
    let dst_victim = dst.join(&m.shards[2].path);
    flip_byte(&dst_victim, 40);
    let damaged = fs::read(&dst_victim).unwrap();
    for extra in [None, Some("--verify-only")] {
        let mut args = vec!["mirror", s(&src), s(&dst)];
        args.extend(extra);
        let o = editshard(crate::BIN, &args);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let out = text(&o);
        assert!(
            out.contains(&m.shards[2].path) && out.contains("differs"),
            "{out}"
        );
        assert_eq!(
            fs::read(&dst_victim).unwrap(),
            damaged,
            "overwritten without --force"
        );
    }
    // A truncated DST shard is caught by its length.
    fs::write(&dst_victim, &damaged[..damaged.len() - 3]).unwrap();
    let o = editshard(crate::BIN, &["mirror", s(&src), s(&dst), "--verify-only"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("bytes where the manifest says"),
        "{}",
        text(&o)
    );

    let o = editshard(crate::BIN, &["mirror", s(&src), s(&dst), "--force"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("replaced {}", m.shards[2].path)),
        "{}",
        text(&o)
    );
    assert_eq!(
        fs::read(&dst_victim).unwrap(),
        fs::read(src.join(&m.shards[2].path)).unwrap()
    );
    let o = editshard(crate::BIN, &["mirror", s(&src), s(&dst), "--verify-only"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("DST matches SRC"), "{}", text(&o));
    // Nothing temporary is left behind by the runs that completed.
    let leftovers: Vec<_> = fs::read_dir(&dst)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn verify_only_reports_missing_shards_and_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    let m = build(&src);
    fs::create_dir_all(&dst).unwrap();
    fs::copy(src.join(&m.shards[0].path), dst.join(&m.shards[0].path)).unwrap();
    let o = editshard(crate::BIN, &["mirror", s(&src), s(&dst), "--verify-only"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains(&format!("missing at DST: {}", m.shards[1].path)),
        "{out}"
    );
    assert!(out.contains("manifest.json is missing"), "{out}");
    assert!(
        !dst.join(&m.shards[1].path).exists(),
        "--verify-only copied something"
    );
}

#[test]
fn subset_writes_a_valid_smaller_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    let m = build(&src);
    let work = tmp.path().join("work");
    let args = [
        "mirror",
        s(&src),
        s(&dst),
        "--subset",
        "kind=sft,preference",
        "--subset",
        "shards=0..4",
        "--work-dir",
        s(&work),
    ];
    let o = editshard(crate::BIN, &args);
    assert!(o.status.success(), "{}", text(&o));
    let o = editshard(crate::BIN, &["verify", s(&dst)]);
    assert!(o.status.success(), "{}", text(&o));

    // Exactly the SRC records of shards 0..4 whose kind is sft or preference, in order.
    let want: Vec<Record> = m.shards[..4]
        .iter()
        .flat_map(|sh| records_of(&src, &sh.path))
        .filter(|r| matches!(r.kind, Kind::Sft | Kind::Preference))
        .collect();
    let sub = manifest(&dst);
    let got: Vec<Record> = sub
        .shards
        .iter()
        .flat_map(|sh| records_of(&dst, &sh.path))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);
    assert_eq!(sub.records, want.len() as u64);
    assert!(
        sub.kinds.keys().all(|k| k == "sft" || k == "preference"),
        "{:?}",
        sub.kinds
    );
    assert!(sub.extra.contains_key("subset"));
    assert!(sub.records < m.records);

    // Deterministic rewrite: a second run finds every shard already there.
    let o = editshard(crate::BIN, &args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(" 0 copied"), "{}", text(&o));
    assert_eq!(manifest(&dst), sub);
}

/// A local DST holding files the source does not name is refused, naming them, and left
/// alone; an earlier copy of the same dataset is not refused; `--force` mirrors into it
/// anyway, leaving the other files as they are.
#[test]
fn a_dst_holding_other_files_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    let m = build(&src);
    fs::create_dir(&dst).unwrap();
    fs::write(dst.join("failures.jsonl"), b"theirs\n").unwrap();
    fs::write(dst.join("notes.txt"), b"mine").unwrap();
    let before = editshard_tools::cli::tree(&dst);
    let o = editshard(crate::BIN, &["mirror", s(&src), s(&dst)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(
            "holds files that are not part of the source dataset: failures.jsonl, notes.txt"
        ) && text(&o).contains("--force"),
        "{}",
        text(&o)
    );
    assert_eq!(editshard_tools::cli::tree(&dst), before);

    let o = editshard(crate::BIN, &["mirror", s(&src), s(&dst), "--force"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(fs::read(dst.join("notes.txt")).unwrap(), b"mine");
    assert_eq!(manifest(&dst).records, m.records);

    // An earlier copy of this dataset (one shard missing) is completed without --force.
    let copy = tmp.path().join("copy");
    let o = editshard(crate::BIN, &["mirror", s(&src), s(&copy)]);
    assert!(o.status.success(), "{}", text(&o));
    fs::remove_file(copy.join(&m.shards[2].path)).unwrap();
    let o = editshard(crate::BIN, &["mirror", s(&src), s(&copy)]);
    assert!(o.status.success(), "{}", text(&o));
}
