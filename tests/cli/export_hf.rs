//! `editshard export --format hf-parquet`, loaded by the real Hugging Face `datasets` library
//! (the test suite's Python environment, `scripts/install-test-deps.sh`): the features are
//! `Image` where images are, every field and every image byte of every record comes back, the
//! files are named and cut as the Hub's are, image columns are uncompressed and the others
//! zstd, and row groups stay under the size asked for.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use editshard::record::{Image, Kind, Record, Turn};
use editshard_tools::cli::{editshard, s, text};
use editshard_tools::{fixtures, records, view_fixture};
use serde_json::{Value, json};

/// The test suite's Python (with `datasets` and `pyarrow`).
fn python() -> PathBuf {
    let tools = std::env::var_os("EDITSHARD_TOOLS").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/editshard-tools"),
        PathBuf::from,
    );
    let py = tools.join("pyenv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/install-test-deps.sh (it installs `datasets`)",
        py.display()
    );
    py
}

/// A record with every format 1.1 field (MagicBrush-like: a mask; captions; variants; Hub
/// provenance), images that decode.
fn with_v1_1_fields() -> Record {
    let base = view_fixture::record(0);
    let mut turn = Turn::new(base.turns[0].output.clone());
    turn.instruction = Some("put a hat on the dog".into());
    turn.instruction_variants = vec!["give the dog a hat".into(), "a hat, on the dog".into()];
    let mut mask = view_fixture::record(4).turns[0].output.clone();
    mask.path = None;
    turn.mask = Some(mask);
    turn.output.caption = Some("a dog wearing a hat".into());
    let mut source = base.source.clone();
    source.caption = Some("a dog".into());
    source.url = None;
    let mut r = Record::new("magicbrush/327726", Kind::MultiTurn, source, vec![turn]);
    r.provenance.dataset = Some("osunlp/MagicBrush".into());
    r.provenance.revision = Some("0123abcd".into());
    r.provenance.file = Some("data/train-00000-of-00051.parquet".into());
    r.provenance.row_group = Some(2);
    r.provenance.row = Some(345);
    r.provenance.licence = Some("cc-by-4.0".into());
    r
}

fn dataset_records() -> Vec<Record> {
    let mut all = view_fixture::records(8);
    all.push(records::generic(103));
    all.push(records::preference(101, 101, 2));
    all.push(with_v1_1_fields());
    let mut ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "fixture ids are unique");
    all
}

fn load(export: &Path, decode: &[&str], hf_home: &Path) -> Value {
    let script = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cli/hf_load.py"));
    let o = Command::new(python())
        .arg(script)
        .arg(export)
        .args(decode)
        // A private cache, and no network: datasets must load the files alone.
        .env("HF_HOME", hf_home)
        .env("HF_DATASETS_OFFLINE", "1")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("run python");
    assert!(o.status.success(), "hf_load.py failed: {}", text(&o));
    serde_json::from_slice(&o.stdout).expect("hf_load.py prints JSON")
}

fn b64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(
            v["b64"]
                .as_str()
                .unwrap_or_else(|| panic!("not bytes: {v}")),
        )
        .unwrap()
}

fn opt(s: &Option<String>) -> Value {
    s.as_ref().map_or(Value::Null, |s| json!(s))
}

/// An `Image` value: exactly the image's bytes, and a bare file name.
fn check_image(v: &Value, img: &Image, what: &str) {
    assert_eq!(
        b64(&v["bytes"]),
        img.data.as_deref().unwrap(),
        "{what}: image bytes"
    );
    let expected = img
        .path
        .as_deref()
        .or(img.url.as_deref())
        .and_then(|p| p.rsplit('/').next());
    assert_eq!(v["path"], json!(expected), "{what}: image path");
}

fn check_info(v: &Value, img: &Image, what: &str) {
    let scores: Vec<Value> = img
        .scores
        .iter()
        .map(|s| json!({"name": s.name, "value": s.value}))
        .collect();
    let expected = json!({
        "media_type": img.media_type,
        "width": img.width,
        "height": img.height,
        "sha256": img.sha256_hex(),
        "url": opt(&img.url),
        "path": opt(&img.path),
        "rotation": img.rotation,
        "caption": opt(&img.caption),
        "scores": scores,
    });
    assert_eq!(v, &expected, "{what}: image info");
}

fn check_row(row: &Value, r: &Record) {
    let id = &r.id;
    assert_eq!(row["id"], json!(id));
    assert_eq!(row["kind"], json!(r.kind.name()), "{id}");
    check_image(&row["source_image"], &r.source, &format!("{id} source"));
    check_info(&row["source_info"], &r.source, &format!("{id} source"));
    let turns = row["turns"].as_array().unwrap();
    assert_eq!(turns.len(), r.turns.len(), "{id}: turns");
    for (k, (tv, t)) in turns.iter().zip(&r.turns).enumerate() {
        let what = format!("{id} turn {k}");
        assert_eq!(tv["instruction"], opt(&t.instruction), "{what}");
        assert_eq!(tv["short_instruction"], opt(&t.short_instruction), "{what}");
        assert_eq!(tv["edit_type"], opt(&t.edit_type), "{what}");
        assert_eq!(tv["category"], opt(&t.category), "{what}");
        assert_eq!(
            tv["instruction_variants"],
            json!(t.instruction_variants),
            "{what}"
        );
        check_image(&tv["output"], &t.output, &what);
        check_info(&tv["output_info"], &t.output, &what);
        let rejected = tv["rejected"].as_array().unwrap();
        assert_eq!(rejected.len(), t.rejected.len(), "{what}: rejected");
        for (j, img) in t.rejected.iter().enumerate() {
            check_image(&rejected[j], img, &format!("{what} rejected {j}"));
            check_info(
                &tv["rejected_info"][j],
                img,
                &format!("{what} rejected {j}"),
            );
        }
        match &t.mask {
            Some(m) => {
                check_image(&tv["mask"], m, &format!("{what} mask"));
                check_info(&tv["mask_info"], m, &format!("{what} mask"));
            }
            None => assert!(tv["mask"].is_null() && tv["mask_info"].is_null(), "{what}"),
        }
    }
    let p = &r.provenance;
    let expected = json!({
        "subset": opt(&p.subset), "file": opt(&p.file), "line": p.line,
        "licence": opt(&p.licence), "dataset": opt(&p.dataset), "revision": opt(&p.revision),
        "row_group": p.row_group, "row": p.row,
    });
    assert_eq!(row["provenance"], expected, "{id}: provenance");
    if r.extras.is_empty() {
        assert!(row["extras"].is_null(), "{id}: extras");
    } else {
        let extras: Value = serde_json::from_str(row["extras"].as_str().unwrap()).unwrap();
        assert_eq!(extras, Value::Object(r.extras.clone()), "{id}: extras");
    }
}

#[test]
fn datasets_loads_every_field_and_image_byte_with_image_features() {
    let tmp = tempfile::tempdir().unwrap();
    let (ds, out) = (tmp.path().join("ds"), tmp.path().join("hf"));
    let all = dataset_records();
    fixtures::write(&ds, &all, 64 << 10, 4);
    let row_group = 30_000u64;
    let o = editshard(
        crate::BIN,
        &[
            "export",
            s(&ds),
            "--to",
            s(&out),
            "--format",
            "hf-parquet",
            "--row-group-size",
            "30KB",
            "--file-size",
            "60KB",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));

    let decode = ["sft/images/positive-edit/0.png", "magicbrush/327726"];
    let got = load(&out, &decode, &tmp.path().join("hf-home"));
    let columns = got["image_columns"].as_object().unwrap();
    for (name, is_image) in columns {
        assert_eq!(
            is_image,
            &json!(true),
            "{name} is not an Image feature: {got:#}"
        );
    }
    let features = &got["features"];
    assert!(
        features["source_info"].as_str().unwrap().contains("uint32"),
        "{features}"
    );
    assert!(
        features["extras"].as_str().unwrap().contains("string"),
        "{features}"
    );

    let rows = got["rows"].as_array().unwrap();
    assert_eq!(rows.len(), all.len(), "one row per record");
    for (row, r) in rows.iter().zip(&all) {
        check_row(row, r);
    }

    // Decoded through the Image feature by PIL, at the record's size.
    for id in decode {
        let r = all.iter().find(|r| r.id == id).unwrap();
        let d = &got["decoded"][id];
        let module = d["source"][0].as_str().unwrap_or_default();
        assert!(module.starts_with("PIL."), "{id}: not decoded by PIL: {d}");
        assert_eq!(
            d["source"][2],
            json!([r.source.width, r.source.height]),
            "{id}"
        );
        assert_eq!(
            d["output"][2],
            json!([r.turns[0].output.width, r.turns[0].output.height])
        );
    }

    // Files named as the Hub names them, several (the size asked for is small), each with
    // the features; row groups within the size unless a single record is larger; images
    // uncompressed, the rest zstd.
    let files = got["files"].as_array().unwrap();
    let n = files.len();
    assert!(n >= 2, "expected several files: {got:#}");
    let mut rows_in_files = 0;
    for (i, f) in files.iter().enumerate() {
        assert_eq!(
            f["name"],
            json!(format!("data/train-{i:05}-of-{n:05}.parquet"))
        );
        let meta: Value = serde_json::from_str(f["huggingface"].as_str().unwrap()).unwrap();
        assert_eq!(
            meta["info"]["features"]["source_image"],
            json!({"_type": "Image"})
        );
        for g in f["row_groups"].as_array().unwrap() {
            rows_in_files += g["rows"].as_u64().unwrap();
            assert!(
                g["rows"] == json!(1) || g["bytes"].as_u64().unwrap() <= row_group + 8192,
                "row group over the size: {g}"
            );
            for (column, codec) in g["codecs"].as_object().unwrap() {
                let expected = if column.ends_with(".bytes") {
                    "UNCOMPRESSED"
                } else {
                    "ZSTD"
                };
                assert_eq!(codec, expected, "{column}");
            }
        }
    }
    assert_eq!(rows_in_files, all.len() as u64);
    assert!(
        files
            .iter()
            .any(|f| f["row_groups"].as_array().unwrap().len() > 1),
        "expected a file of several row groups: {got:#}"
    );
    assert!(fs::read_dir(out.join("data")).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".partial")
    }));
}

#[test]
fn an_empty_dataset_exports_one_loadable_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (ds, out) = (tmp.path().join("ds"), tmp.path().join("hf"));
    fixtures::write(&ds, &[], 64 << 10, 4);
    let o = editshard(
        crate::BIN,
        &["export", s(&ds), "--to", s(&out), "--format", "hf-parquet"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let got = load(&out, &[], &tmp.path().join("hf-home"));
    assert_eq!(got["rows"], json!([]));
    assert_eq!(
        got["files"][0]["name"],
        json!("data/train-00000-of-00001.parquet")
    );
    assert_eq!(got["image_columns"]["turn.mask"], json!(true));
}

/// An `Image` value's `path` is a bare file name on every OS whatever the record's path or
/// URL holds (backslash directories, a drive, NUL and other control characters, a device
/// name, nothing left but `..`), as `datasets` loads it; the info column keeps the path as it
/// was.
#[test]
fn image_paths_are_bare_file_names_on_every_os() {
    let tmp = tempfile::tempdir().unwrap();
    let (ds, out) = (tmp.path().join("ds"), tmp.path().join("hf"));
    let cases: [(&str, Option<&str>); 6] = [
        ("images\\positive-edit\\a.png", Some("a.png")),
        ("C:\\Users\\me\\b.png", Some("b.png")),
        ("images/x\0y.png", Some("xy.png")),
        ("images/z\u{1}\u{7f}.png\n", Some("z.png")),
        ("images/nul.png", Some("_nul.png")),
        ("images/sub\\..", None),
    ];
    let all: Vec<Record> = cases
        .iter()
        .enumerate()
        .map(|(n, (path, _))| {
            let mut r = records::sft(n as u32, n as u32);
            r.turns[0].output.path = Some(path.to_string());
            r.source.url = Some(format!("https://h/dir\\{n}\\s{n}.jpg"));
            r
        })
        .collect();
    fixtures::write(&ds, &all, 1 << 20, 4);
    let o = editshard(
        crate::BIN,
        &["export", s(&ds), "--to", s(&out), "--format", "hf-parquet"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let got = load(&out, &[], &tmp.path().join("hf-home"));
    let rows = got["rows"].as_array().unwrap();
    assert_eq!(rows.len(), cases.len());
    for (n, (row, (path, want))) in rows.iter().zip(cases).enumerate() {
        let turn = &row["turns"][0];
        assert_eq!(turn["output"]["path"], json!(want), "{path:?}");
        assert_eq!(turn["output_info"]["path"], json!(path), "{path:?}");
        assert_eq!(row["source_image"]["path"], json!(format!("s{n}.jpg")));
    }
}

/// `--force` over an earlier export of more files: the `train-NNNNN-of-MMMMM.parquet` files it
/// wrote that the new export does not write again are gone, with its leftover temporary
/// files, so `datasets` loads only the new rows; files of other names stay.
#[test]
fn force_over_a_larger_export_leaves_none_of_its_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (large, small, out) = (
        tmp.path().join("large"),
        tmp.path().join("small"),
        tmp.path().join("hf"),
    );
    fixtures::write(&large, &fixtures::mixed(12, Some(6000)), 1 << 20, 4);
    let few = fixtures::mixed(3, Some(6000));
    fixtures::write(&small, &few, 1 << 20, 4);
    let o = editshard(
        crate::BIN,
        &[
            "export",
            s(&large),
            "--to",
            s(&out),
            "--format",
            "hf-parquet",
            "--file-size",
            "20KB",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let earlier = fs::read_dir(out.join("data")).unwrap().count();
    assert!(earlier >= 3, "expected several files");
    let others = [
        "README.md",
        "data/notes.txt",
        "data/test-00000-of-00001.parquet.bak",
        "data/train-00000-of-00002.parquet.orig",
        "data/train-0000-of-0002.parquet.txt",
    ];
    for name in others {
        fs::write(out.join(name), b"someone else's").unwrap();
    }
    fs::write(
        out.join("data/train-00009.parquet.partial"),
        b"a killed run's",
    )
    .unwrap();
    let o = editshard(
        crate::BIN,
        &[
            "export",
            s(&small),
            "--to",
            s(&out),
            "--format",
            "hf-parquet",
            "--force",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let mut want: Vec<&str> = others.to_vec();
    want.push("data/train-00000-of-00001.parquet");
    want.sort();
    let got: Vec<String> = editshard_tools::cli::tree(&out).into_keys().collect();
    assert_eq!(got, want);
    let loaded = load(&out, &[], &tmp.path().join("hf-home"));
    let ids: Vec<&str> = loaded["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = few.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, want);
}
