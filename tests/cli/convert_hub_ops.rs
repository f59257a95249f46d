//! `convert --preset` beyond one local run: `--part I/N` then `merge`, resuming after a
//! `kill -9`, a dataset behind HTTP (nginx, ranged reads), and memory bounded when a row
//! group is larger than the batch budget.

use std::fs;
use std::path::Path;

use editshard::record::Record;
use editshard_tools::cli::{editshard_cmd, run_with_peak_rss, s};
use editshard_tools::convert_support::{failures, records, text};
use editshard_tools::hub_parquet::{Col, png, write};
use editshard_tools::servers::Nginx;

use crate::BIN;
use crate::convert_hub::{assert_kills_resume_to, magicbrush_fixture, run};

/// Records by id, their JSON (all metadata, image hashes) and image bytes.
fn by_id(recs: &[Record]) -> Vec<(String, serde_json::Value, Vec<Vec<u8>>)> {
    let mut v: Vec<_> = recs
        .iter()
        .map(|r| {
            let bytes = r
                .images()
                .map(|i| i.data.as_deref().unwrap().to_vec())
                .collect();
            (r.id.clone(), r.to_json(), bytes)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn parts_split_by_row_group_merge_into_the_same_records() {
    let t = tempfile::tempdir().unwrap();
    let (src, whole, split) = (
        t.path().join("mb"),
        t.path().join("whole"),
        t.path().join("split"),
    );
    magicbrush_fixture(&src);
    assert!(run("magicbrush", &src, &whole, &[]).status.success());
    // Five row groups in three parts: sessions 100 and 300 cross part boundaries.
    for i in 0..3 {
        let o = run("magicbrush", &src, &split, &["--part", &format!("{i}/3")]);
        assert!(o.status.success(), "part {i}: {}", text(&o));
    }
    let part0 = records(&split.join("part-0000-of-0003"));
    assert_eq!(
        part0.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["100"]
    );
    let part2 = records(&split.join("part-0002-of-0003"));
    assert_eq!(
        part2.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["400"]
    );
    let o = editshard_cmd(BIN)
        .args(["merge", s(&split), "--parts", "3"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(by_id(&records(&split)), by_id(&records(&whole)));
    assert_eq!(
        fs::read(split.join("failures.jsonl")).unwrap(),
        fs::read(whole.join("failures.jsonl")).unwrap()
    );
}

/// A dataset of `files` IP2P-shaped files of `rows` rows each in row groups of 2, one of
/// them with a null image (a failure).
fn ip2p_many(dir: &Path, files: usize, rows: usize) {
    ip2p_files(dir, files, rows, true)
}

/// `files` InstructPix2Pix-shaped files of `rows` rows each, in row groups of 2; with
/// `broken`, row 3 of file 1 has no edited image (a row that fails).
fn ip2p_files(dir: &Path, files: usize, rows: usize, broken: bool) {
    for f in 0..files {
        let n = rows;
        let seed = (f * 100) as u32;
        let cols = vec![
            Col::text(
                "original_prompt",
                (0..n).map(|k| Some(format!("p {f}.{k}"))).collect(),
            ),
            Col::image(
                "original_image",
                (0..n)
                    .map(|k| Some((png(seed + k as u32, 6, 6), Some("a.png".into()))))
                    .collect(),
            ),
            Col::text(
                "edit_prompt",
                (0..n).map(|k| Some(format!("e {f}.{k}"))).collect(),
            ),
            Col::text(
                "edited_prompt",
                (0..n).map(|k| Some(format!("d {f}.{k}"))).collect(),
            ),
            Col::image(
                "edited_image",
                (0..n)
                    .map(|k| {
                        (!broken || f != 1 || k != 3)
                            .then(|| (png(seed + 50 + k as u32, 6, 6), Some("b.png".into())))
                    })
                    .collect(),
            ),
        ];
        write(
            &dir.join(format!("data/train-{f:05}-of-{files:05}-x.parquet")),
            cols,
            2,
            true,
        );
    }
}

#[test]
fn a_killed_conversion_resumes_to_the_same_bytes() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    ip2p_many(&src, 3, 5);
    let reference = t.path().join("reference");
    let small = ["--shard-size", "1", "--allow-failures"];
    assert!(
        run("instructpix2pix", &src, &reference, &small)
            .status
            .success()
    );
    assert!(records(&reference).len() == 14 && failures(&reference).len() == 1);
    let kills = ["appended:3", "published:2", "saved:4", "published:9"];
    assert_kills_resume_to(
        "instructpix2pix",
        &src,
        &small,
        &reference,
        &kills,
        t.path(),
    );
}

#[test]
fn a_dataset_behind_http_is_read_with_ranged_requests() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("www");
    let src = root.join("ip2p");
    ip2p_many(&src, 2, 6);
    let local = t.path().join("local");
    assert!(
        run("instructpix2pix", &src, &local, &["--allow-failures"])
            .status
            .success()
    );
    let list = t.path().join("files.txt");
    fs::write(
        &list,
        "data/train-00000-of-00002-x.parquet\ndata/train-00001-of-00002-x.parquet\n",
    )
    .unwrap();
    let nginx = Nginx::start(&root);
    let out = t.path().join("remote");
    let url = format!("{}/ip2p", nginx.url());
    let o = editshard_cmd(BIN)
        .args([
            "convert",
            "--preset",
            "instructpix2pix",
            &url,
            "--out",
            s(&out),
            "--files-from",
            s(&list),
            "--allow-failures",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(by_id(&records(&out)), by_id(&records(&local)));
    assert_eq!(
        fs::read(out.join("failures.jsonl")).unwrap(),
        fs::read(local.join("failures.jsonl")).unwrap()
    );
    let log = nginx.access_log();
    let gets: Vec<_> = log.iter().filter(|l| l.method == "GET").collect();
    assert!(!gets.is_empty());
    for l in &gets {
        assert!(
            l.range.is_some(),
            "a whole-file GET: {} {:?}",
            l.path,
            l.range
        );
    }
    let total: u64 = fs::read_dir(src.join("data"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let sent: u64 = gets.iter().map(|l| l.bytes).sum();
    eprintln!(
        "HTTP: {} ranged GETs, {sent} bytes for {total} bytes of Parquet",
        gets.len()
    );
    // Without --files-from a remote source cannot be listed: a clear error.
    let o = editshard_cmd(BIN)
        .args([
            "convert",
            "--preset",
            "instructpix2pix",
            &url,
            "--out",
            s(&t.path().join("x")),
        ])
        .output()
        .unwrap();
    assert!(
        !o.status.success() && text(&o).contains("--files-from"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_row_group_larger_than_the_budget_is_read_in_bounded_memory() {
    const IMAGE: usize = 4 << 20;
    const ROWS: u32 = 48;
    const BUDGET: u64 = 16 << 20;
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("big");
    // One row group of 48 rows x 2 images of 4 MiB (Snappy-compressed pages, as older Hub
    // files have): 384 MiB, read with a 16 MiB batch budget.
    let big = |seed: u32| {
        let mut v = png(seed, 4, 4);
        let start = v.len();
        v.resize(IMAGE, 0);
        let mut x = u64::from(seed) | 1;
        for b in v[start..].iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        Some((v, None))
    };
    {
        let cols = vec![
            Col::text(
                "original_prompt",
                (0..ROWS).map(|k| Some(format!("p{k}"))).collect(),
            ),
            Col::image("original_image", (0..ROWS).map(big).collect()),
            Col::text(
                "edit_prompt",
                (0..ROWS).map(|k| Some(format!("e{k}"))).collect(),
            ),
            Col::text(
                "edited_prompt",
                (0..ROWS).map(|k| Some(format!("d{k}"))).collect(),
            ),
            Col::image("edited_image", (0..ROWS).map(|k| big(100 + k)).collect()),
        ];
        write(
            &src.join("data/train-00000-of-00001.parquet"),
            cols,
            ROWS as usize,
            true,
        );
    }
    let group = 2 * ROWS as u64 * IMAGE as u64;
    let out = t.path().join("out");
    let mut cmd = editshard_cmd(BIN);
    cmd.args([
        "convert",
        "--preset",
        "instructpix2pix",
        s(&src),
        "--out",
        s(&out),
    ]);
    cmd.args(["--batch-memory", "16MiB", "--shard-size", "64MiB"]);
    let (o, peak) = run_with_peak_rss(cmd, &t.path().join("stdout"));
    assert!(o.status.success(), "{}", text(&o));
    let recs = records(&out);
    assert_eq!(recs.len(), ROWS as usize);
    assert_eq!(recs[5].turns[0].output.len, IMAGE as u64);
    eprintln!(
        "convert --preset: peak RSS {} MiB for a {} MiB row group",
        peak >> 20,
        group >> 20
    );
    // A batch is held a few times over (compressed page, decompressed page, Arrow array,
    // the record being written), plus the process itself (~50 MiB): far below the row group.
    let bound = 6 * BUDGET + (64 << 20);
    assert!(
        peak < bound,
        "peak RSS {} MiB, over {} MiB",
        peak >> 20,
        bound >> 20
    );
    assert!(bound < group / 2);
}

#[test]
fn retry_failed_converts_only_the_failed_rows_into_the_finished_dataset() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("ip2p");
    ip2p_many(&src, 2, 6);
    let out = t.path().join("out");
    let o = run("instructpix2pix", &src, &out, &["--allow-failures"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(records(&out).len(), 11);
    let failed = failures(&out);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        failed[0]["line"], 10,
        "file 1, row 3: the 10th row of all files"
    );
    let before = by_id(&records(&out));

    // The same data again: the row fails again, nothing else is converted or lost.
    let o = run(
        "instructpix2pix",
        &src,
        &out,
        &["--retry-failed", "--allow-failures"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(by_id(&records(&out)), before);
    assert_eq!(failures(&out), failed);

    // The image is fixed at the source: the retry converts that one row, into retry shards.
    ip2p_files(&src, 2, 6, false);
    let o = run("instructpix2pix", &src, &out, &["--retry-failed"]);
    assert!(o.status.success(), "{}", text(&o));
    let after = by_id(&records(&out));
    assert_eq!(after.len(), 12);
    assert!(failures(&out).is_empty());
    for r in &before {
        assert!(after.contains(r), "{} changed or lost", r.0);
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let paths: Vec<&str> = manifest["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert!(paths.iter().any(|p| p.starts_with("retry-")), "{paths:?}");
    let v = editshard_cmd(BIN)
        .args(["verify", s(&out)])
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", text(&v));

    // Sessions cannot be rejoined: refused, saying why.
    let mb = t.path().join("mb");
    magicbrush_fixture(&mb);
    let mb_out = t.path().join("mb-out");
    assert!(
        run("magicbrush", &mb, &mb_out, &["--allow-failures"])
            .status
            .success()
    );
    let o = run("magicbrush", &mb, &mb_out, &["--retry-failed"]);
    assert!(
        !o.status.success() && text(&o).contains("sessions"),
        "{}",
        text(&o)
    );
}

#[test]
fn format_version_1_0_keeps_each_rows_place_in_the_provenance() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("ip2p");
    ip2p_files(&src, 2, 4, false);
    // Without the captions the preset maps (format 1.0 has no place for them).
    let mapping = t.path().join("plain.toml");
    fs::write(
        &mapping,
        "name = \"plain\"\nfiles = [\"data/*.parquet\"]\nsource = \"original_image\"\n\
         output = \"edited_image\"\ninstruction = \"edit_prompt\"\n",
    )
    .unwrap();
    let out = t.path().join("out");
    let o = editshard_cmd(BIN)
        .args([
            "convert",
            "--mapping",
            s(&mapping),
            s(&src),
            "--out",
            s(&out),
        ])
        .args(["--format-version", "1.0"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format_version"], "1.0");
    let recs = records(&out);
    assert_eq!(recs.len(), 8);
    let mut lines: Vec<u64> = recs
        .iter()
        .map(|r| {
            let p = &r.provenance;
            assert!(p.row_group.is_none() && p.row.is_none() && p.dataset.is_none());
            assert!(p.file.as_deref().unwrap().ends_with(".parquet"));
            p.line.unwrap()
        })
        .collect();
    lines.sort_unstable();
    assert_eq!(lines, (1..=8).collect::<Vec<u64>>());
    // The default is 1.1, with the row group and row.
    let out11 = t.path().join("out11");
    assert!(run("instructpix2pix", &src, &out11, &[]).status.success());
    assert!(records(&out11).iter().all(|r| r.provenance.row.is_some()));
}

/// A symbolic link planted in DEST where the Hub conversion makes a directory (the next
/// `retry-N/`, a `--part` directory) is refused with exit 2, naming it; nothing is written
/// through it.
#[test]
fn a_link_planted_in_dest_is_not_written_through() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("ip2p");
    ip2p_many(&src, 2, 6);
    let outside = t.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let refused = |o: &std::process::Output| editshard_tools::cli::assert_refused_link(o, &outside);
    let out = t.path().join("out");
    let o = run("instructpix2pix", &src, &out, &["--allow-failures"]);
    assert!(o.status.success(), "{}", text(&o));
    ip2p_files(&src, 2, 6, false);
    std::os::unix::fs::symlink(&outside, out.join("retry-1")).unwrap();
    refused(&run("instructpix2pix", &src, &out, &["--retry-failed"]));

    let parts = t.path().join("parts");
    fs::create_dir(&parts).unwrap();
    std::os::unix::fs::symlink(&outside, parts.join("part-0000-of-0002")).unwrap();
    refused(&run("instructpix2pix", &src, &parts, &["--part", "0/2"]));
}
