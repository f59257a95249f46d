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
        let blob = shard.index().blobs[shard.index().record_blobs(local)[1] as usize];
        (
            shard.path().to_string(),
            local,
            blob.offset,
            shard.index().records[local].id.clone(),
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
