//! The inspection commands, run as a user would: ls, cat, get, stats, verify.

use std::path::Path;
use std::process::{Command, Output};

use editshard::read::Dataset;
use editshard::record::{Image, Kind, Record, Turn};
use editshard::storage::Location;

fn png(w: u32, h: u32, shade: u8) -> bytes::Bytes {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([shade, 255 - shade, 7]));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out.into()
}

/// Records with real PNGs; one id tries to climb out of any output directory.
fn records() -> Vec<Record> {
    (0..12u32)
        .map(|i| {
            let source = Image::from_bytes(png(8 + i, 6, i as u8)).unwrap();
            let mut turn = Turn::new(Image::from_bytes(png(5, 5 + i, 100 + i as u8)).unwrap());
            turn.edit_type = Some(if i % 2 == 0 { "Relight" } else { "Remove" }.to_string());
            turn.category = Some("Pixel".to_string());
            let id = if i == 5 {
                "../../escape/../x".to_string()
            } else {
                format!("sft/images/{i}.png")
            };
            let kind = if i % 3 == 0 {
                Kind::Preference
            } else {
                Kind::Sft
            };
            Record::new(id, kind, source, vec![turn])
        })
        .collect()
}

fn run(args: &[&str]) -> Output {
    Command::new(crate::BIN).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn dataset() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("ds");
    editshard_tools::fixtures::write(&ds, &records(), 1 << 10, 2);
    let s = ds.to_str().unwrap().to_string();
    (dir, s)
}

#[test]
fn ls_and_stats() {
    let (_dir, ds) = dataset();
    let o = run(&["ls", &ds]);
    assert!(o.status.success(), "{o:?}");
    let text = stdout(&o);
    assert!(text.contains("shard-00000.esd"), "{text}");
    assert!(text.contains(" 12 records"), "{text}");
    assert!(
        text.contains("preference 4") && text.contains("sft 8"),
        "{text}"
    );

    let o = run(&["stats", &ds, "--kind", "sft"]);
    assert!(o.status.success(), "{o:?}");
    let text = stdout(&o);
    assert!(text.contains("records: 8"), "{text}");
    assert!(text.contains("Relight") && text.contains("<256"), "{text}");
}

#[test]
fn cat_prints_metadata_json_lines() {
    let (_dir, ds) = dataset();
    let o = run(&["cat", &ds]);
    assert!(o.status.success(), "{o:?}");
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 12);
    assert!(
        lines
            .iter()
            .all(|l| l["id"].is_string() && l["kind"].is_string())
    );
    assert!(lines.iter().all(|l| l["source"]["data"].is_null()));

    let o = run(&[
        "cat",
        &ds,
        "--kind",
        "sft",
        "--edit-type",
        "Relight",
        "--fields",
        "turns",
        "--limit",
        "2",
    ]);
    assert!(o.status.success(), "{o:?}");
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert_eq!(l["kind"], "sft");
        assert_eq!(l["turns"][0]["edit_type"], "Relight");
        assert!(l.get("source").is_none());
    }

    let o = run(&["cat", &ds, "--images", "--limit", "1"]);
    let line: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!(line["source"]["data"].as_str().unwrap().len() > 20);

    let o = run(&["cat", &ds, "--kind", "nonsense"]);
    assert!(!o.status.success());
}

#[test]
fn get_writes_inside_out_whatever_the_id() {
    let (dir, ds) = dataset();
    let out = dir.path().join("a/b/out");
    let o = run(&[
        "get",
        &ds,
        "../../escape/../x",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["record.json", "source.png", "turn-1-output.png"]);
    // Nothing was written anywhere else.
    for p in ["a/escape", "a/x", "escape", "x", "a/b/x"] {
        assert!(!dir.path().join(p).exists(), "{p}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("record.json")).unwrap()).unwrap();
    assert_eq!(json["id"], "../../escape/../x");
    assert_eq!(
        std::fs::read(out.join("source.png")).unwrap(),
        records()[5].source.data.as_ref().unwrap().to_vec()
    );

    let out2 = dir.path().join("by-index");
    let o = run(&["get", &ds, "#3", "--out", out2.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out2.join("record.json")).unwrap()).unwrap();
    assert_eq!(json["id"], "sft/images/3.png");

    let o = run(&["get", &ds, "no/such", "--out", out2.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no record with id"));
}

/// `get --out` writes each file under a temporary name created exclusively: a symbolic link
/// planted there is replaced, and the file it points at is left alone.
#[test]
fn get_does_not_write_through_symlinks_at_temporary_names() {
    let (dir, ds) = dataset();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    for name in ["record.json.partial", "source.png.partial"] {
        std::os::unix::fs::symlink(&victim, out.join(name)).unwrap();
    }
    let o = run(&["get", &ds, "#0", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert_eq!(
        std::fs::read(out.join("source.png")).unwrap(),
        records()[0].source.data.as_ref().unwrap().to_vec()
    );
    assert!(!out.join("record.json.partial").exists());
}

fn flip(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn verify_passes_clean_and_locates_damage() {
    let (dir, ds_path) = dataset();
    let o = run(&["verify", &ds_path, "--decode"]);
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("12 records") && stdout(&o).contains("all good"));

    // Damage record #7's output image.
    let (shard_path, local, offset, id) = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let ds = Dataset::open(Location::local(&ds_path)).await.unwrap();
        let (s, local) = ds.locate(7).unwrap();
        let shard = ds.shard(s).await.unwrap();
        let blob = shard.index().blob(shard.index().record_blobs(local)[1]);
        (
            shard.path().to_string(),
            local,
            blob.offset,
            shard.index().record(local).id.to_string(),
        )
    });
    flip(&Path::new(&ds_path).join(&shard_path), offset + 30);
    let o = run(&["verify", &ds_path]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let text = stdout(&o);
    let damaged: Vec<&str> = text.lines().filter(|l| l.starts_with("DAMAGED")).collect();
    // The frame CRC, the record's own image CRC, and the shard's SHA-256.
    assert!(damaged.len() >= 3, "{text}");
    let record_line = damaged
        .iter()
        .find(|l| l.contains(&format!("record #{local}")) && l.contains(&id))
        .unwrap_or_else(|| panic!("no line names record #{local} {id}: {text}"));
    assert!(
        record_line.contains(&shard_path) && record_line.contains("byte"),
        "{record_line}"
    );
    assert!(text.contains("SHA-256"), "{text}");

    // A truncated shard: reported, not a crash.
    let other = dir.path().join("ds/shard-00000.esd");
    let len = std::fs::metadata(&other).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&other)
        .unwrap();
    f.set_len(len - 10).unwrap();
    let o = run(&["verify", &ds_path]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("shard-00000.esd"), "{}", stdout(&o));
}

/// Records whose edit types differ only in case and spacing, one unknown type in two
/// spellings, and a multi-turn session whose turns have no edit type or category.
fn spelled_records() -> Vec<Record> {
    let img = |i: u32| Image::from_bytes(png(4 + i, 4, i as u8)).unwrap();
    let types = [
        (
            "Change weather conditions (sunny/rainy/snowy)",
            "Scene Composition & Multi-Subject",
        ),
        (
            "change  weather conditions (sunny/rainy/snowy) ",
            "scene composition & multi-subject",
        ),
        (
            "CHANGE WEATHER CONDITIONS (SUNNY/RAINY/SNOWY)",
            "Scene Composition & Multi-Subject",
        ),
        ("Our own type", "Ours"),
        ("our own  TYPE", "ours"),
    ];
    let mut out: Vec<Record> = types
        .iter()
        .enumerate()
        .map(|(i, (t, c))| {
            let mut turn = Turn::new(img(i as u32 + 10));
            turn.edit_type = Some(t.to_string());
            turn.category = Some(c.to_string());
            Record::new(format!("sft/{i}.png"), Kind::Sft, img(i as u32), vec![turn])
        })
        .collect();
    let turns = vec![Turn::new(img(20)), Turn::new(img(21))];
    out.push(Record::new(
        "multi-turn/s.png",
        Kind::MultiTurn,
        img(9),
        turns,
    ));
    out
}

fn spelled_dataset() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("ds");
    editshard_tools::fixtures::write(&ds, &spelled_records(), 1 << 20, 4);
    let s = ds.to_str().unwrap().to_string();
    (dir, s)
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(stdout(o).trim()).unwrap_or_else(|e| panic!("{e}: {o:?}"))
}

#[test]
fn edit_types_differing_in_case_or_spacing_are_one_type_counted_per_turn() {
    let (_dir, ds) = spelled_dataset();
    let o = run(&["stats", &ds, "--json"]);
    assert!(o.status.success(), "{o:?}");
    let v = json(&o);
    assert_eq!(v["records"], 6);
    assert_eq!(v["turns"], 7);
    let edit = &v["tables"]["edit type"];
    // The Pico-Banana table's spelling for a known type; the first spelling for another.
    assert_eq!(
        edit["Change weather conditions (sunny/rainy/snowy)"], 3,
        "{edit}"
    );
    assert_eq!(edit["Our own type"], 2, "{edit}");
    assert_eq!(edit["(none)"], 2, "{edit}");
    assert_eq!(edit.as_object().unwrap().len(), 3, "{edit}");
    let category = &v["tables"]["category"];
    assert_eq!(
        category["Scene Composition & Multi-Subject"], 3,
        "{category}"
    );
    assert_eq!(category["Ours"], 2, "{category}");
    // Every per-turn table adds up to the number of turns.
    for table in ["edit type", "category"] {
        let sum: u64 = v["tables"][table]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(sum, 7, "{table}");
    }

    // The text says what is counted, with the (none) row.
    let o = run(&["stats", &ds]);
    let text = stdout(&o);
    assert!(text.contains("records: 6, turns: 7"), "{text}");
    assert!(
        text.contains("edit type (per turn, 7 turns; (none): turns without one"),
        "{text}"
    );
    assert!(text.contains("         2  (none)"), "{text}");
    assert!(
        text.contains("         3  Change weather conditions (sunny/rainy/snowy)"),
        "{text}"
    );

    // Filters match every spelling; records keep theirs.
    for wanted in [
        "change weather conditions (sunny/rainy/snowy)",
        "  Change   Weather conditions (sunny/rainy/snowy)",
    ] {
        let o = run(&["cat", &ds, "--edit-type", wanted, "--fields", "turns"]);
        assert!(o.status.success(), "{o:?}");
        let got: std::collections::BTreeSet<String> = stdout(&o)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["turns"][0]["edit_type"].as_str().unwrap().to_string()
            })
            .collect();
        let want: std::collections::BTreeSet<String> = spelled_records()[..3]
            .iter()
            .map(|r| r.turns[0].edit_type.clone().unwrap())
            .collect();
        assert_eq!(got, want);
    }
    let o = run(&["cat", &ds, "--category", "OURS"]);
    assert_eq!(stdout(&o).lines().count(), 2, "{o:?}");
}

#[test]
fn a_selection_matching_nothing_says_so_and_suggests_known_values() {
    let (_dir, ds) = spelled_dataset();
    let o = run(&["cat", &ds, "--edit-type", "Change wether conditions"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(stdout(&o).is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no record matched"), "{err}");
    assert!(
        err.contains("closest: \"Change weather conditions (sunny/rainy/snowy)\""),
        "{err}"
    );

    let o = run(&["stats", &ds, "--category", "Our", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--category \"Our\"") && err.contains("\"Ours\""),
        "{err}"
    );

    // Known values that no record has together.
    let o = run(&["cat", &ds, "--kind", "multi-turn", "--category", "ours"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no record has all of them"),
        "{o:?}"
    );
    // A kind the dataset does not have.
    let o = run(&["cat", &ds, "--kind", "preference"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--kind preference: the dataset has no"),
        "{o:?}"
    );
    // No filter, or a filter that matches: exit 0.
    assert!(run(&["cat", &ds, "--kind", "sft"]).status.success());
}

#[test]
fn json_output_version_and_exit_codes() {
    let (dir, ds) = dataset();
    let o = run(&["ls", &ds, "--json"]);
    assert!(o.status.success(), "{o:?}");
    let v = json(&o);
    assert_eq!(v["records"], 12);
    assert_eq!(v["kinds"]["sft"], 8);
    let shards = v["shards"].as_array().unwrap();
    assert!(!shards.is_empty());
    let sum: u64 = shards.iter().map(|s| s["records"].as_u64().unwrap()).sum();
    assert_eq!(sum, 12);
    assert!(shards[0]["sha256"].as_str().unwrap().len() == 64);

    let o = run(&["stats", &ds, "--json", "--kind", "sft"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(json(&o)["records"], 8);

    let o = run(&["verify", &ds, "--json"]);
    assert!(o.status.success(), "{o:?}");
    let v = json(&o);
    assert_eq!(
        (v["ok"].clone(), v["records"].clone()),
        (true.into(), 12.into())
    );
    assert_eq!(v["problems"].as_array().unwrap().len(), 0);
    let shard = dir.path().join("ds/shard-00000.esd");
    let len = std::fs::metadata(&shard).unwrap().len();
    flip(&shard, len / 2);
    let o = run(&["verify", &ds, "--json"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let v = json(&o);
    assert_eq!(v["ok"], false);
    let problems = v["problems"].as_array().unwrap();
    assert!(!problems.is_empty());
    assert!(
        problems
            .iter()
            .all(|p| p["problem"].is_string() && p["hint"].is_string())
    );

    let o = run(&["--version"]);
    assert!(o.status.success());
    let want = format!(
        "editshard {} (format {}.{})",
        env!("CARGO_PKG_VERSION"),
        editshard::format::VERSION_MAJOR,
        editshard::format::VERSION_MINOR
    );
    assert_eq!(stdout(&o).trim(), want);

    for args in [
        &["--help"][..],
        &["verify", "--help"],
        &["convert", "--help"],
    ] {
        let o = run(args);
        let text = stdout(&o);
        assert!(
            text.contains("Exit codes:") && text.contains("  2  the command could not run"),
            "{args:?}: {text}"
        );
    }
}

/// A manifest whose counts do not add up (here, per-shard record counts near 2^63 whose sum
/// overflows, with a total that saturated) is an error for every command: exit 2 and a
/// message naming the manifest, never an empty answer with exit 0.
#[test]
fn a_manifest_whose_counts_overflow_is_refused_by_every_command() {
    let (dir, ds) = dataset();
    let path = Path::new(&ds).join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let shards = m["shards"].as_array_mut().unwrap();
    assert!(shards.len() >= 2);
    for s in shards.iter_mut() {
        s["records"] = serde_json::json!(1u64 << 63);
    }
    m["records"] = serde_json::json!(u64::MAX);
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    let dest = dir.path().join("mirror");
    let dest = dest.to_str().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    for args in [
        vec!["cat", &ds],
        vec!["stats", &ds],
        vec!["ls", &ds],
        vec!["verify", &ds],
        vec!["get", &ds, "#0", "--out", out],
        vec!["mirror", &ds, dest],
    ] {
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err} {}", stdout(&o));
        assert!(err.contains("manifest.json"), "{args:?}: {err}");
        assert!(err.contains("records"), "{args:?}: {err}");
    }
}

/// A manifest.json that is not a manifest gets advice about the manifest, not about shards.
#[test]
fn a_bad_manifest_gets_manifest_advice() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.json"), b"{\"hello\": 1}").unwrap();
    let o = run(&["ls", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not an editshard manifest"), "{err}");
    assert!(!err.contains("the shard is damaged"), "{err}");
}

/// `--verify-images` on `get`, `cat` and `export` checks each image against its record's
/// SHA-256; without it, a false hash with valid CRCs (a broken writer's) is read as stored.
/// `verify` finds it either way.
#[test]
fn verify_images_checks_each_images_hash_and_the_default_reads_what_is_stored() {
    let (dir, ds) = dataset();
    let id = records()[3].id.clone();
    editshard_tools::tamper::claim_a_false_hash(Path::new(&ds), &id);
    let to = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let reads: [(&str, Vec<String>); 3] = [
        (
            "get",
            vec!["get".into(), ds.clone(), id.clone(), "--out".into()],
        ),
        ("cat", vec!["cat".into(), ds.clone(), "--images".into()]),
        (
            "export",
            vec![
                "export".into(),
                ds.clone(),
                "--format".into(),
                "webdataset".into(),
                "--to".into(),
            ],
        ),
    ];
    for (what, args) in reads {
        let mut plain: Vec<String> = args.clone();
        let mut checked: Vec<String> = args;
        if what != "cat" {
            plain.push(to(&format!("{what}-plain")));
            checked.push(to(&format!("{what}-checked")));
        }
        checked.push("--verify-images".into());
        let plain: Vec<&str> = plain.iter().map(String::as_str).collect();
        let o = run(&plain);
        assert!(o.status.success(), "{what}: {o:?}");
        let checked: Vec<&str> = checked.iter().map(String::as_str).collect();
        let o = run(&checked);
        assert!(!o.status.success(), "{what} --verify-images: {o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("SHA-256") && err.contains(&id),
            "{what}: {err}"
        );
    }
    let o = run(&["verify", &ds]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(stdout(&o).contains("SHA-256"), "{}", stdout(&o));
}
