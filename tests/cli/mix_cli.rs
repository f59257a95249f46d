//! `editshard mix`: datasets combined into one that reads back record for record, verifies,
//! and whose manifest keeps each source's counts, licences and shard range; hard links on one
//! file system, copies with `--copy`; a re-run keeps what is there and an interrupted one
//! finishes; colliding ids, foreign files and a different earlier mix are refused with
//! nothing written; sources over HTTP into S3.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use editshard::manifest::{Manifest, ShardRange};
use editshard::read::blocking::BlockingDataset;
use editshard::record::Record;
use editshard::storage::StorageOptions;
use editshard::write::DatasetWriter;
use editshard_tools::cli::{editshard, s, text};
use editshard_tools::servers::{Nginx, S3Server};
use editshard_tools::{fixtures, records, view_fixture};

fn write(dir: &Path, recs: &[Record], licence: Option<&str>) -> Manifest {
    let mut w = DatasetWriter::create(dir)
        .unwrap()
        .target_shard_bytes(16 << 10)
        .licence(licence.map(str::to_string));
    for r in recs {
        w.append(r).unwrap();
    }
    w.finish().unwrap()
}

/// Another dataset of every kind, with images that decode (`verify` checks them) and ids
/// of its own.
fn other_records() -> Vec<Record> {
    (100..105).map(view_fixture::record).collect()
}

fn manifest(dir: &Path) -> Manifest {
    Manifest::parse(&fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn a_mixture_reads_back_every_source_and_records_where_it_came_from() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, out) = (
        tmp.path().join("pico"),
        tmp.path().join("b"),
        tmp.path().join("mix"),
    );
    let view = view_fixture::records(8);
    let ma = write(&a, &view, Some("CC BY-NC-ND 4.0"));
    let mb = write(&b, &other_records(), Some("cc-by-4.0"));
    assert!(ma.shards.len() > 1 && !mb.shards.is_empty());

    let o = editshard(
        crate::BIN,
        &["mix", "--out", s(&out), s(&a), &format!("mb={}", s(&b))],
    );
    assert!(o.status.success(), "{}", text(&o));
    let m = manifest(&out);
    assert_eq!(m.records, ma.records + mb.records);
    assert_eq!(m.shards.len(), ma.shards.len() + mb.shards.len());
    assert_eq!(m.licence.as_deref(), Some("CC BY-NC-ND 4.0; cc-by-4.0"));
    let (na, nb) = (ma.shards.len() as u64, mb.shards.len() as u64);
    let src = &m.sources;
    assert_eq!(src.len(), 2);
    assert_eq!(
        (src[0].name.as_str(), src[0].location.as_str()),
        ("pico", s(&a))
    );
    assert_eq!(
        (src[1].name.as_str(), src[1].location.as_str()),
        ("mb", s(&b))
    );
    assert_eq!(src[0].records, ma.records);
    assert_eq!(src[1].kinds, mb.kinds);
    assert_eq!(src[0].licences, ["CC BY-NC-ND 4.0"]);
    assert_eq!(src[1].licences, ["cc-by-4.0"]);
    assert_eq!(src[0].shards, ShardRange { start: 0, end: na });
    assert_eq!(
        src[1].shards,
        ShardRange {
            start: na,
            end: na + nb
        }
    );
    for (k, kinds) in &ma.kinds {
        assert_eq!(
            m.kinds[k],
            kinds + mb.kinds.get(k).copied().unwrap_or(0),
            "{k}"
        );
    }
    assert!(m.shards[0].path.starts_with("pico/") && m.shards[na as usize].path.starts_with("mb/"));

    // Every record, metadata and image bytes, in source order; by id too.
    let ds = BlockingDataset::open(s(&out), &StorageOptions::default()).unwrap();
    let expected: Vec<Record> = view.iter().cloned().chain(other_records()).collect();
    for (i, want) in expected.iter().enumerate() {
        let got = ds.get(i as u64).unwrap();
        assert!(
            fixtures::same(&got, want),
            "record {i} ({}) differs",
            want.id
        );
    }
    let got = ds.get_by_id("generic/103").unwrap().expect("found by id");
    assert_eq!(got.id, "generic/103");
    let v = editshard(crate::BIN, &["verify", s(&out)]);
    assert!(v.status.success(), "{}", text(&v));
    let ls = editshard(crate::BIN, &["ls", s(&out)]);
    let want = format!(
        "source mb: {} records, shards {na}..{}, cc-by-4.0 ({})",
        mb.records,
        na + nb,
        s(&b)
    );
    assert!(text(&ls).contains(&want), "{want}\n{}", text(&ls));

    // One file system: hard links, the source's own inode.
    let first = &ma.shards[0].path;
    let ino = |p: &Path| fs::metadata(p).unwrap().ino();
    assert_eq!(ino(&out.join("pico").join(first)), ino(&a.join(first)));
    assert!(
        text(&o).contains(&format!("0 copied, {} linked", na + nb)),
        "{}",
        text(&o)
    );

    // The same command again keeps everything and writes the same manifest.
    let before = fs::read(out.join("manifest.json")).unwrap();
    let again = editshard(
        crate::BIN,
        &["mix", "--out", s(&out), s(&a), &format!("mb={}", s(&b))],
    );
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains(&format!("{} already there", na + nb)),
        "{}",
        text(&again)
    );
    assert_eq!(fs::read(out.join("manifest.json")).unwrap(), before);

    // --copy: files of their own, same bytes.
    let copied = tmp.path().join("copied");
    let c = editshard(
        crate::BIN,
        &["mix", "--copy", "--out", s(&copied), s(&a), s(&b)],
    );
    assert!(c.status.success(), "{}", text(&c));
    assert_ne!(ino(&copied.join("pico").join(first)), ino(&a.join(first)));
    assert_eq!(
        fs::read(copied.join("pico").join(first)).unwrap(),
        fs::read(a.join(first)).unwrap()
    );
    let v = editshard(crate::BIN, &["verify", s(&copied)]);
    assert!(v.status.success(), "{}", text(&v));

    // A different set of sources into the finished mix is refused.
    let other = editshard(crate::BIN, &["mix", "--out", s(&out), s(&a)]);
    assert_eq!(other.status.code(), Some(2), "{}", text(&other));
    assert!(
        text(&other).contains("not a mix of these sources"),
        "{}",
        text(&other)
    );
    assert_eq!(fs::read(out.join("manifest.json")).unwrap(), before);
}

#[test]
fn colliding_ids_and_foreign_files_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, out) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("mix"),
    );
    write(&a, &view_fixture::records(8), None);
    // records::mixed() holds generic/3, which the view fixture's record 3 also is.
    write(&b, &records::mixed(), None);
    let o = editshard(crate::BIN, &["mix", "--out", s(&out), s(&a), s(&b)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("is in source \"a\"") && t.contains("and in source \"b\""),
        "{t}"
    );
    assert!(!out.join("manifest.json").exists());
    assert!(!out.join("a").exists() && !out.join("b").exists());

    // Two sources of one name.
    let o = editshard(
        crate::BIN,
        &[
            "mix",
            "--out",
            s(&out),
            &format!("x={}", s(&a)),
            &format!("x={}", s(&a)),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("two sources are named \"x\""),
        "{}",
        text(&o)
    );

    // Someone's file in DEST.
    let c = tmp.path().join("c");
    write(&c, &other_records(), None);
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("notes.txt"), b"mine").unwrap();
    let o = editshard(crate::BIN, &["mix", "--out", s(&out), s(&a), s(&c)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("notes.txt"), "{}", text(&o));
    assert_eq!(fs::read(out.join("notes.txt")).unwrap(), b"mine");
    assert!(!out.join("a").exists());
}

/// An interrupted mix (here: its manifest and one placed shard gone, as after a kill between
/// shards) is finished by the same command, which keeps what is there.
#[test]
fn the_same_command_resumes_an_interrupted_mix() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, out) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("mix"),
    );
    let ma = write(&a, &view_fixture::records(8), None);
    let mb = write(&b, &other_records(), None);
    let args = ["mix", "--copy", "--out", s(&out), s(&a), s(&b)];
    let o = editshard(crate::BIN, &args);
    assert!(o.status.success(), "{}", text(&o));
    let full = fs::read(out.join("manifest.json")).unwrap();
    fs::remove_file(out.join("manifest.json")).unwrap();
    fs::remove_file(out.join("b").join(&mb.shards[0].path)).unwrap();
    let o = editshard(crate::BIN, &args);
    assert!(o.status.success(), "{}", text(&o));
    let total = ma.shards.len() + mb.shards.len();
    assert!(
        text(&o).contains(&format!("1 copied, 0 linked, {} already there", total - 1)),
        "{}",
        text(&o)
    );
    assert_eq!(fs::read(out.join("manifest.json")).unwrap(), full);

    // A shard of ours replaced by other bytes is reported, not overwritten.
    fs::remove_file(out.join("manifest.json")).unwrap();
    let victim = out.join("a").join(&ma.shards[0].path);
    fs::write(&victim, b"not a shard").unwrap();
    let o = editshard(crate::BIN, &args);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("already there but"), "{}", text(&o));
    assert_eq!(fs::read(&victim).unwrap(), b"not a shard");
}

/// Sources over HTTP (nginx) and from a directory, into S3 (s3s-fs): every shard copied and
/// checked, the mixture verifies where it is.
#[test]
fn remote_sources_mix_into_s3() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let ma = write(&a, &view_fixture::records(8), Some("CC BY-NC-ND 4.0"));
    let mb = write(&b, &other_records(), None);
    let nginx = Nginx::start(tmp.path());
    let server = S3Server::start();
    server.create_bucket("mix");
    let s3 = |args: &[&str]| {
        Command::new(crate::BIN)
            .args(args)
            .args(["--s3-endpoint", &server.endpoint])
            .env("AWS_ACCESS_KEY_ID", server.access_key)
            .env("AWS_SECRET_ACCESS_KEY", server.secret_key)
            .output()
            .unwrap()
    };
    let http_a = format!("pico={}/a/", nginx.url());
    let o = s3(&["mix", "--out", "s3://mix/all", &http_a, s(&b)]);
    assert!(o.status.success(), "{}", text(&o));
    let total = ma.shards.len() + mb.shards.len();
    assert!(
        text(&o).contains(&format!("{total} copied")),
        "{}",
        text(&o)
    );
    let stored = server.object_path("mix", "all");
    let m = manifest(&stored);
    assert_eq!(m.records, ma.records + mb.records);
    assert_eq!(m.sources[0].location, format!("{}/a/", nginx.url()));
    assert_eq!(
        fs::read(stored.join("pico").join(&ma.shards[0].path)).unwrap(),
        fs::read(a.join(&ma.shards[0].path)).unwrap()
    );
    let v = s3(&["verify", "s3://mix/all"]);
    assert!(v.status.success(), "{}", text(&v));
}

/// A link planted inside `DEST/NAME/` where a source's shard directory goes: refused with
/// exit 2, naming it; nothing written through it, linked or copied.
#[test]
fn a_link_planted_inside_dest_name_is_not_written_through() {
    for copy in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let (src, out, outside) = (
            tmp.path().join("pico"),
            tmp.path().join("mix"),
            tmp.path().join("outside"),
        );
        let mut w = DatasetWriter::create(&src)
            .unwrap()
            .shard_prefix("part-0/shard-")
            .target_shard_bytes(16 << 10);
        for r in view_fixture::records(4) {
            w.append(&r).unwrap();
        }
        w.finish().unwrap();
        fs::create_dir_all(out.join("pico")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, out.join("pico/part-0")).unwrap();
        let mut args = vec!["mix", "--out", s(&out), s(&src)];
        if copy {
            args.push("--copy");
        }
        let o = editshard(crate::BIN, &args);
        editshard_tools::cli::assert_refused_link(&o, &outside);
        assert!(!out.join("manifest.json").exists());
    }
}
