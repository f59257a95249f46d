//! `editshard convert --preset`: each preset converts a fixture written in its dataset's
//! published Parquet schema (tools' `hub_parquet`), and every field and image byte of the
//! records is checked against the fixture.

use std::path::Path;

use editshard::record::{Kind, Record};
use editshard_tools::convert_support::{convert, failures, manifest, records, strings, text};
use editshard_tools::hub_parquet::{Col, ImageCell, corrupt_row_group, jpeg, png, write};

use crate::BIN;

pub fn sha(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}

pub fn run(preset: &str, src: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = strings(&["--preset", preset, editshard_tools::cli::s(src), "--out"]);
    args.push(out.display().to_string());
    args.extend(strings(extra));
    convert(BIN, &args)
}

fn img(b: &[u8], name: &str) -> ImageCell {
    Some((b.to_vec(), Some(name.to_string())))
}

/// MagicBrush rows: (img_id, turn_index, source, mask, instruction, target).
pub type MbRow = (
    &'static str,
    i32,
    Vec<u8>,
    Option<Vec<u8>>,
    &'static str,
    Vec<u8>,
);

pub fn magicbrush_file(path: &Path, rows: &[MbRow], per_group: usize) {
    let cols = vec![
        Col::text(
            "img_id",
            rows.iter().map(|r| Some(r.0.to_string())).collect(),
        ),
        Col::i32("turn_index", rows.iter().map(|r| Some(r.1)).collect()),
        Col::image(
            "source_img",
            rows.iter().map(|r| img(&r.2, "source.png")).collect(),
        ),
        Col::image(
            "mask_img",
            rows.iter()
                .map(|r| r.3.as_ref().and_then(|m| img(m, "mask.png")))
                .collect(),
        ),
        Col::text(
            "instruction",
            rows.iter().map(|r| Some(r.4.to_string())).collect(),
        ),
        Col::image(
            "target_img",
            rows.iter().map(|r| img(&r.5, "target.png")).collect(),
        ),
    ];
    write(path, cols, per_group, true);
}

/// Sessions: 100 (3 turns, rows out of order, across row groups), 200 (its turn 2's source
/// is not turn 1's output: split), 300 (across files, turn 2 without a mask), 400.
pub fn magicbrush_fixture(dir: &Path) -> Vec<Vec<u8>> {
    let i: Vec<Vec<u8>> = (0..16).map(|k| png(k, 6 + k, 5)).collect();
    let m = |k: u32| Some(png(100 + k, 4, 4));
    let f0: Vec<MbRow> = vec![
        ("100", 2, i[1].clone(), m(2), "add a hat", i[2].clone()),
        ("100", 1, i[0].clone(), m(1), "make it red", i[1].clone()),
        ("100", 3, i[2].clone(), m(3), "remove the dog", i[3].clone()),
        ("200", 1, i[4].clone(), m(4), "snow", i[5].clone()),
        ("200", 2, i[9].clone(), m(5), "night", i[6].clone()),
        ("300", 1, i[7].clone(), m(6), "sunset", i[8].clone()),
    ];
    let f1: Vec<MbRow> = vec![
        ("300", 2, i[8].clone(), None, "rain", i[10].clone()),
        ("400", 1, i[11].clone(), m(7), "blur", i[12].clone()),
    ];
    magicbrush_file(&dir.join("data/train-00000-of-00002-aaaa.parquet"), &f0, 2);
    magicbrush_file(&dir.join("data/train-00001-of-00002-bbbb.parquet"), &f1, 1);
    i
}

#[test]
fn magicbrush_sessions_are_rebuilt_across_row_groups_and_files() {
    let t = tempfile::tempdir().unwrap();
    let (src, out) = (t.path().join("mb"), t.path().join("out"));
    let i = magicbrush_fixture(&src);
    let o = run("magicbrush", &src, &out, &["--revision", "abc123"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("session splits      1"), "{}", text(&o));
    let recs = records(&out);
    let ids: Vec<&str> = recs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["100", "200", "200#2", "300", "400"]);
    let r = &recs[0];
    assert_eq!(r.kind, Kind::MultiTurn);
    assert_eq!(r.source.sha256, sha(&i[0]));
    assert_eq!(r.source.data.as_deref(), Some(&i[0][..]));
    assert_eq!(r.source.path.as_deref(), Some("source.png"));
    let outs: Vec<[u8; 32]> = r.turns.iter().map(|t| t.output.sha256).collect();
    assert_eq!(outs, [sha(&i[1]), sha(&i[2]), sha(&i[3])]);
    let instr: Vec<_> = r
        .turns
        .iter()
        .map(|t| t.instruction.as_deref().unwrap())
        .collect();
    assert_eq!(instr, ["make it red", "add a hat", "remove the dog"]);
    let masks: Vec<_> = r
        .turns
        .iter()
        .map(|t| t.mask.as_ref().unwrap().sha256)
        .collect();
    assert_eq!(
        masks,
        [
            sha(&png(101, 4, 4)),
            sha(&png(102, 4, 4)),
            sha(&png(103, 4, 4))
        ]
    );
    assert_eq!(r.turns[0].output.path.as_deref(), Some("target.png"));
    assert_eq!(
        serde_json::Value::Object(r.extras.clone()),
        serde_json::json!({"turn_index": [1, 2, 3]})
    );
    let p = &r.provenance;
    assert_eq!(p.dataset.as_deref(), Some("osunlp/MagicBrush"));
    assert_eq!(p.licence.as_deref(), Some("cc-by-4.0"));
    assert_eq!(p.revision.as_deref(), Some("abc123"));
    assert_eq!(
        p.file.as_deref(),
        Some("data/train-00000-of-00002-aaaa.parquet")
    );
    assert_eq!(p.subset.as_deref(), Some("train"));
    assert_eq!(
        (p.row_group, p.row),
        (Some(0), Some(1)),
        "the first turn's row"
    );
    // 200 splits where turn 2's source is not turn 1's output.
    assert_eq!(recs[1].turns.len(), 1);
    assert_eq!(recs[2].source.sha256, sha(&i[9]));
    assert_eq!(recs[2].turns[0].instruction.as_deref(), Some("night"));
    // 300 goes on in the next file; its second turn has no mask.
    let r = &recs[3];
    assert_eq!(r.turns.len(), 2);
    assert_eq!(r.turns[1].output.sha256, sha(&i[10]));
    assert!(r.turns[0].mask.is_some() && r.turns[1].mask.is_none());
    assert_eq!(
        recs[4].provenance.file.as_deref(),
        Some("data/train-00001-of-00002-bbbb.parquet")
    );
    assert_eq!(
        (recs[4].provenance.row_group, recs[4].provenance.row),
        (Some(1), Some(1))
    );
    assert!(failures(&out).is_empty());
    let m = manifest(&out);
    assert_eq!(m.records, 5);
    assert_eq!(m.licence.as_deref(), Some("cc-by-4.0"));
    // The same command again: complete, nothing written.
    let again = run("magicbrush", &src, &out, &["--revision", "abc123"]);
    assert!(
        again.status.success() && text(&again).contains("already holds"),
        "{}",
        text(&again)
    );
}

fn ip2p_fixture(dir: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..7)
        .map(|k| (jpeg(k, 9, 7), jpeg(50 + k, 9, 7)))
        .collect();
    let n = pairs.len();
    let cols = vec![
        Col::text(
            "original_prompt",
            (0..n).map(|k| Some(format!("a photo {k}"))).collect(),
        ),
        Col::image(
            "original_image",
            pairs.iter().map(|p| img(&p.0, "a.jpg")).collect(),
        ),
        Col::text(
            "edit_prompt",
            (0..n).map(|k| Some(format!("edit {k}"))).collect(),
        ),
        // A null caption, and a row whose edited image is null.
        Col::text(
            "edited_prompt",
            (0..n)
                .map(|k| (k != 2).then(|| format!("edited {k}")))
                .collect(),
        ),
        Col::image(
            "edited_image",
            pairs
                .iter()
                .enumerate()
                .map(|(k, p)| if k == 4 { None } else { img(&p.1, "b.jpg") })
                .collect(),
        ),
    ];
    write(
        &dir.join("data/train-00000-of-00001-cafe.parquet"),
        cols,
        3,
        true,
    );
    pairs
}

#[test]
fn instructpix2pix_rows_become_sft_records_with_captions() {
    let t = tempfile::tempdir().unwrap();
    let (src, out) = (t.path().join("ip2p"), t.path().join("out"));
    let pairs = ip2p_fixture(&src);
    let o = run("instructpix2pix", &src, &out, &[]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a failed row: exit 1\n{}",
        text(&o)
    );
    let recs = records(&out);
    assert_eq!(recs.len(), 6);
    let file = "data/train-00000-of-00001-cafe.parquet";
    for r in &recs {
        let k: usize = r.id.rsplit('#').next().unwrap().parse().unwrap();
        assert_eq!(r.id, format!("{file}#{k}"));
        assert_eq!(r.kind, Kind::Sft);
        assert_eq!(r.source.data.as_deref(), Some(&pairs[k].0[..]));
        assert_eq!(r.source.media_type, "image/jpeg");
        assert_eq!((r.source.width, r.source.height), (9, 7));
        assert_eq!(r.turns[0].output.data.as_deref(), Some(&pairs[k].1[..]));
        assert_eq!(r.source.caption, Some(format!("a photo {k}")));
        assert_eq!(
            r.turns[0].output.caption,
            (k != 2).then(|| format!("edited {k}"))
        );
        assert_eq!(r.turns[0].instruction, Some(format!("edit {k}")));
        assert!(r.extras.is_empty() && r.turns[0].mask.is_none());
        assert_eq!(r.provenance.licence, None, "the Hub copy states no licence");
        assert_eq!(r.provenance.row_group, Some(k as u64 / 3));
        assert_eq!(r.provenance.row, Some(k as u64));
    }
    let f = failures(&out);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["file"], file);
    assert_eq!(
        (f[0]["row_group"].as_u64(), f[0]["row"].as_u64()),
        (Some(1), Some(4))
    );
    assert_eq!(f[0]["reason"], "missing-image");
    assert!(f[0]["detail"].as_str().unwrap().contains("edited_image"));
}

fn ultraedit_cols(n: usize, region: bool, seed: u32) -> (Vec<Col>, Vec<[Vec<u8>; 3]>) {
    let imgs: Vec<[Vec<u8>; 3]> = (0..n as u32)
        .map(|k| {
            [
                png(seed + k, 5, 5),
                png(seed + 40 + k, 5, 5),
                png(seed + 80 + k, 5, 5),
            ]
        })
        .collect();
    let score = |b: f64| Col::f64("x", (0..n).map(|k| Some(b + k as f64 / 100.0)).collect());
    let mut cols = Vec::new();
    for (name, base) in [
        ("clip_sim_source", 0.1),
        ("clip_sim_target", 0.2),
        ("clip_sim_dir", 0.3),
        ("clip_sim_image", 0.4),
        ("dinov2_sim", 0.5),
        ("ssim", 0.6),
    ] {
        let mut c = score(base);
        c.name = name.into();
        cols.push(c);
    }
    cols.push(Col::text(
        "source_caption",
        (0..n).map(|k| Some(format!("src {k}"))).collect(),
    ));
    cols.push(Col::text(
        "target_caption",
        (0..n).map(|k| Some(format!("tgt {k}"))).collect(),
    ));
    cols.push(Col::i64(
        "idx",
        (0..n).map(|k| Some(seed as i64 + k as i64)).collect(),
    ));
    cols.push(Col::text(
        "edit_prompt",
        (0..n).map(|k| Some(format!("do {k}"))).collect(),
    ));
    if region {
        cols.push(Col::text(
            "edit_object",
            (0..n).map(|k| Some(format!("obj {k}"))).collect(),
        ));
    } else {
        cols.push(Col::null("edit_object", n));
    }
    cols.push(Col::image(
        "source_image",
        imgs.iter().map(|i| img(&i[0], "s.png")).collect(),
    ));
    cols.push(Col::image(
        "edited_image",
        imgs.iter().map(|i| img(&i[1], "e.png")).collect(),
    ));
    if region {
        cols.push(Col::image(
            "mask_image",
            imgs.iter().map(|i| img(&i[2], "m.png")).collect(),
        ));
    } else {
        cols.push(Col::null("mask_image", n));
    }
    (cols, imgs)
}

#[test]
fn ultraedit_free_form_and_region_based() {
    let t = tempfile::tempdir().unwrap();
    for (region, split) in [(false, "FreeForm"), (true, "RegionBase")] {
        let src = t.path().join(split);
        let out = t.path().join(format!("{split}-out"));
        let (cols, imgs) = ultraedit_cols(5, region, if region { 1000 } else { 0 });
        write(
            &src.join(format!("data/{split}-00000-of-00001.parquet")),
            cols,
            2,
            true,
        );
        let o = run("ultraedit", &src, &out, &[]);
        assert!(o.status.success(), "{}", text(&o));
        let recs = records(&out);
        assert_eq!(recs.len(), 5);
        for (k, r) in recs.iter().enumerate() {
            let base = if region { 1000 } else { 0 };
            assert_eq!(r.id, (base + k).to_string());
            assert_eq!(r.source.sha256, sha(&imgs[k][0]));
            assert_eq!(r.turns[0].output.sha256, sha(&imgs[k][1]));
            assert_eq!(
                r.turns[0].mask.as_ref().map(|m| m.sha256),
                region.then(|| sha(&imgs[k][2]))
            );
            let scores: Vec<(String, f32)> = r.turns[0]
                .output
                .scores
                .iter()
                .map(|s| (s.name.clone(), s.value))
                .collect();
            let want: Vec<(String, f32)> = [
                "clip_sim_source",
                "clip_sim_target",
                "clip_sim_dir",
                "clip_sim_image",
                "dinov2_sim",
                "ssim",
            ]
            .iter()
            .enumerate()
            .map(|(j, n)| {
                (
                    n.to_string(),
                    (0.1 * (j + 1) as f64 + k as f64 / 100.0) as f32,
                )
            })
            .collect();
            assert_eq!(scores, want);
            assert_eq!(r.source.caption, Some(format!("src {k}")));
            assert_eq!(r.turns[0].output.caption, Some(format!("tgt {k}")));
            assert_eq!(r.turns[0].instruction, Some(format!("do {k}")));
            let extras = serde_json::Value::Object(r.extras.clone());
            let want = if region {
                serde_json::json!({"edit_object": format!("obj {k}")})
            } else {
                serde_json::json!({})
            };
            assert_eq!(extras, want, "a null-typed column is absent");
            assert_eq!(r.provenance.subset.as_deref(), Some(split));
        }
    }
}

#[test]
fn hq_edit_binary_images_natural_file_order_and_a_corrupt_row_group() {
    let t = tempfile::tempdir().unwrap();
    let (src, out) = (t.path().join("hq"), t.path().join("out"));
    let mut expected: Vec<(String, u64, Vec<u8>, Vec<u8>)> = Vec::new();
    for (fi, n) in [(1u32, 3usize), (2, 4), (10, 2)] {
        let imgs: Vec<(Vec<u8>, Vec<u8>)> = (0..n as u32)
            .map(|k| (png(fi * 100 + k, 8, 8), png(fi * 100 + 50 + k, 8, 8)))
            .collect();
        let cols = vec![
            Col::text(
                "input",
                (0..n).map(|k| Some(format!("in {fi}.{k}"))).collect(),
            ),
            Col::binary(
                "input_image",
                imgs.iter().map(|i| Some(i.0.clone())).collect(),
            ),
            Col::text(
                "edit",
                (0..n).map(|k| Some(format!("edit {fi}.{k}"))).collect(),
            ),
            Col::text(
                "inverse_edit",
                (0..n).map(|k| Some(format!("undo {fi}.{k}"))).collect(),
            ),
            Col::text(
                "output",
                (0..n).map(|k| Some(format!("out {fi}.{k}"))).collect(),
            ),
            Col::binary(
                "output_image",
                imgs.iter().map(|i| Some(i.1.clone())).collect(),
            ),
        ];
        let rel = format!("data/HQ-Edit_{fi}.parquet");
        // pandas-written: no `huggingface` metadata.
        write(&src.join(&rel), cols, 2, false);
        for (k, i) in imgs.into_iter().enumerate() {
            expected.push((rel.clone(), k as u64, i.0, i.1));
        }
    }
    // Row group 1 of HQ-Edit_2 (its rows 2 and 3) cannot be read.
    let lost = corrupt_row_group(&src.join("data/HQ-Edit_2.parquet"), 1, 1);
    assert_eq!(lost, 2);
    let o = run("hq-edit", &src, &out, &["--allow-failures"]);
    assert!(o.status.success(), "{}", text(&o));
    let recs = records(&out);
    let kept: Vec<_> = expected
        .iter()
        .filter(|e| !(e.0.ends_with("_2.parquet") && e.1 >= 2))
        .collect();
    assert_eq!(recs.len(), kept.len());
    for (r, e) in recs.iter().zip(&kept) {
        assert_eq!(
            r.id,
            format!("{}#{}", e.0, e.1),
            "files in natural order: _1, _2, _10"
        );
        assert_eq!(r.source.data.as_deref(), Some(&e.2[..]));
        assert_eq!(r.turns[0].output.data.as_deref(), Some(&e.3[..]));
        let tag = format!("{}.{}", &e.0[13..e.0.len() - 8], e.1);
        assert_eq!(r.source.caption, Some(format!("in {tag}")));
        assert_eq!(r.turns[0].output.caption, Some(format!("out {tag}")));
        assert_eq!(r.turns[0].instruction, Some(format!("edit {tag}")));
        assert_eq!(
            serde_json::Value::Object(r.extras.clone()),
            serde_json::json!({"inverse_edit": format!("undo {tag}")})
        );
        assert_eq!(r.provenance.licence.as_deref(), Some("cc-by-nc-4.0"));
        assert!(r.source.path.is_none());
    }
    // Its two rows, as one line standing for both.
    let f = failures(&out);
    assert_eq!(f.len(), 1, "{f:?}");
    let x = &f[0];
    assert_eq!(x["file"], "data/HQ-Edit_2.parquet");
    assert_eq!(
        (
            x["row_group"].as_u64(),
            x["row"].as_u64(),
            x["rows"].as_u64()
        ),
        (Some(1), Some(2), Some(2))
    );
    assert_eq!(x["reason"], "unreadable-row-group");
    assert_eq!(x["line"], 6, "the first of the two rows, across the files");
    assert!(text(&o).contains("failed rows         2"), "{}", text(&o));
}

#[test]
fn omniedit_prompt_lists_scores_and_reasoning() {
    let t = tempfile::tempdir().unwrap();
    let (src, out) = (t.path().join("omni"), t.path().join("out"));
    let n = 4usize;
    let imgs: Vec<(Vec<u8>, Vec<u8>)> = (0..n as u32)
        .map(|k| (png(500 + k, 7, 3), jpeg(600 + k, 7, 3)))
        .collect();
    let cols = vec![
        Col::text(
            "omni_edit_id",
            (0..n).map(|k| Some(format!("omni-{k}"))).collect(),
        ),
        Col::text(
            "task",
            (0..n)
                .map(|k| Some(["add", "remove", "swap", "style"][k].to_string()))
                .collect(),
        ),
        Col::image(
            "src_img",
            imgs.iter().map(|i| img(&i.0, "src.png")).collect(),
        ),
        Col::image(
            "edited_img",
            imgs.iter().map(|i| img(&i.1, "dst.jpg")).collect(),
        ),
        Col::text_list(
            "edited_prompt_list",
            (0..n)
                .map(|k| (k != 3).then(|| vec![format!("long {k}"), format!("short {k}")]))
                .collect(),
        ),
        Col::i64("width", vec![Some(7); n]),
        Col::i64("height", vec![Some(3); n]),
        Col::i64("sc_score_1", (0..n).map(|k| Some(k as i64)).collect()),
        Col::i64("sc_score_2", (0..n).map(|k| Some(10 - k as i64)).collect()),
        Col::text(
            "sc_reasoning",
            (0..n).map(|k| Some(format!("sc why {k}"))).collect(),
        ),
        Col::i64("pq_score", (0..n).map(|k| (k != 1).then_some(8)).collect()),
        Col::text(
            "pq_reasoning",
            (0..n).map(|k| Some(format!("pq why {k}"))).collect(),
        ),
        Col::f64("o_score", (0..n).map(|k| Some(k as f64 + 0.5)).collect()),
    ];
    write(
        &src.join("data/train-00000-of-00001.parquet"),
        cols,
        3,
        true,
    );
    let o = run("omniedit", &src, &out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let recs: Vec<Record> = records(&out);
    assert_eq!(recs.len(), n);
    for (k, r) in recs.iter().enumerate() {
        assert_eq!(r.id, format!("omni-{k}"));
        let t = &r.turns[0];
        assert_eq!(r.source.data.as_deref(), Some(&imgs[k].0[..]));
        assert_eq!(t.output.data.as_deref(), Some(&imgs[k].1[..]));
        assert_eq!(
            t.edit_type.as_deref(),
            Some(["add", "remove", "swap", "style"][k])
        );
        if k == 3 {
            assert!(t.instruction.is_none() && t.instruction_variants.is_empty());
        } else {
            assert_eq!(t.instruction, Some(format!("long {k}")));
            assert_eq!(
                t.instruction_variants,
                [format!("long {k}"), format!("short {k}")]
            );
        }
        let scores: Vec<(&str, f32)> = t
            .output
            .scores
            .iter()
            .map(|s| (s.name.as_str(), s.value))
            .collect();
        let mut want = vec![("sc_score_1", k as f32), ("sc_score_2", 10.0 - k as f32)];
        if k != 1 {
            want.push(("pq_score", 8.0));
        }
        want.push(("o_score", k as f32 + 0.5));
        assert_eq!(scores, want, "a null score is left out");
        assert_eq!(
            serde_json::Value::Object(r.extras.clone()),
            serde_json::json!({"width": 7, "height": 3, "sc_reasoning": format!("sc why {k}"), "pq_reasoning": format!("pq why {k}")})
        );
        assert_eq!(r.provenance.licence.as_deref(), Some("mit"));
    }
}

#[test]
fn a_missing_column_names_the_file_and_the_column() {
    let t = tempfile::tempdir().unwrap();
    let (src, out) = (t.path().join("x"), t.path().join("out"));
    let cols = vec![
        Col::text("original_prompt", vec![Some("a".into())]),
        Col::image("original_image", vec![img(&png(1, 2, 2), "a.png")]),
        Col::text("edited_prompt", vec![Some("b".into())]),
        Col::image("edited_image", vec![img(&png(2, 2, 2), "b.png")]),
    ];
    write(
        &src.join("data/train-00000-of-00001.parquet"),
        cols,
        1,
        true,
    );
    let o = run("instructpix2pix", &src, &out, &[]);
    assert!(!o.status.success());
    let e = text(&o);
    assert!(
        e.contains("data/train-00000-of-00001.parquet") && e.contains("\"edit_prompt\""),
        "{e}"
    );
    assert!(!out.join("manifest.json").exists());
}

#[test]
fn a_mapping_file_converts_a_dataset_of_the_same_shape() {
    let t = tempfile::tempdir().unwrap();
    let (src, out) = (t.path().join("mine"), t.path().join("out"));
    let cols = vec![
        Col::i64("sample", vec![Some(7), Some(8)]),
        Col::binary("before", vec![Some(png(1, 3, 3)), Some(png(2, 3, 3))]),
        Col::binary("after", vec![Some(png(3, 3, 3)), Some(png(4, 3, 3))]),
        Col::text("prompt", vec![Some("p7".into()), Some("p8".into())]),
        Col::f64("quality", vec![Some(0.25), None]),
        Col::text("note", vec![Some("n7".into()), None]),
    ];
    write(&src.join("shards/part-1.parquet"), cols, 1, false);
    let mapping = t.path().join("mine.toml");
    std::fs::write(
        &mapping,
        "name = \"mine\"\ndataset = \"me/mine\"\nlicence = \"cc0-1.0\"\nfiles = [\"shards/*.parquet\"]\n\
         id = \"sample\"\nsource = \"before\"\noutput = \"after\"\ninstruction = \"prompt\"\nscores = [\"quality\"]\n",
    )
    .unwrap();
    let mut args = strings(&[
        "--mapping",
        editshard_tools::cli::s(&mapping),
        editshard_tools::cli::s(&src),
        "--out",
    ]);
    args.push(out.display().to_string());
    let o = convert(BIN, &args);
    assert!(o.status.success(), "{}", text(&o));
    let recs = records(&out);
    assert_eq!(
        recs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["7", "8"]
    );
    assert_eq!(recs[0].turns[0].output.scores[0].value, 0.25);
    assert!(recs[1].turns[0].output.scores.is_empty());
    assert_eq!(
        serde_json::Value::Object(recs[0].extras.clone()),
        serde_json::json!({"note": "n7"})
    );
    assert_eq!(
        serde_json::Value::Object(recs[1].extras.clone()),
        serde_json::json!({"note": null})
    );
    assert_eq!(recs[1].provenance.dataset.as_deref(), Some("me/mine"));
    assert_eq!(recs[1].provenance.row_group, Some(1));
}

#[test]
fn anyedit_keeps_its_visual_input_in_extras() {
    let t = tempfile::tempdir().unwrap();
    let (src, out) = (t.path().join("any"), t.path().join("out"));
    let visual = png(77, 3, 3);
    let cols = vec![
        Col::text("image_id", vec![Some("a1".into()), Some("a2".into())]),
        Col::text(
            "edit_instruction",
            vec![Some("turn left".into()), Some("add sketch".into())],
        ),
        Col::text(
            "edit_type",
            vec![Some("rotation_change".into()), Some("visual_sketch".into())],
        ),
        Col::image(
            "image_file",
            vec![img(&png(1, 4, 4), "i1.png"), img(&png(2, 4, 4), "i2.png")],
        ),
        Col::image(
            "edited_file",
            vec![img(&png(3, 4, 4), "o1.png"), img(&png(4, 4, 4), "o2.png")],
        ),
        Col::image("visual_input", vec![None, img(&visual, "v.png")]),
        Col::text("input", vec![Some("in1".into()), Some("in2".into())]),
        Col::text("output", vec![Some("out1".into()), Some("out2".into())]),
    ];
    write(
        &src.join("data/train-00000-of-00001.parquet"),
        cols,
        1,
        true,
    );
    let o = run("anyedit", &src, &out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let recs = records(&out);
    assert_eq!(recs[0].id, "a1");
    assert_eq!(
        recs[0].turns[0].edit_type.as_deref(),
        Some("rotation_change")
    );
    assert_eq!(recs[1].source.caption.as_deref(), Some("in2"));
    assert_eq!(recs[1].turns[0].output.caption.as_deref(), Some("out2"));
    assert_eq!(recs[0].extras["visual_input"], serde_json::Value::Null);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&visual);
    assert_eq!(
        recs[1].extras["visual_input"],
        serde_json::json!({"bytes": {"base64": b64}, "path": "v.png"})
    );
}

#[test]
fn the_readme_documents_every_preset_and_its_mapping_example_parses() {
    let readme = std::fs::read_to_string(crate::workspace().join("README.md")).unwrap();
    let section = readme
        .split("### Mapping files")
        .nth(1)
        .expect("a Mapping files section");
    let toml = section
        .split("```toml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let m = editshard_hub::Mapping::parse(toml, "README").unwrap();
    assert_eq!(m.session.unwrap().key, "session_id");
    for (name, _) in editshard_hub::mapping::PRESETS {
        assert!(
            readme.contains(&format!("--preset {name}")),
            "README has no `--preset {name}`"
        );
    }
}

#[test]
fn gzip_compressed_parquet_converts_like_uncompressed() {
    use editshard_tools::parquet_bytes as pq;
    let t = tempfile::tempdir().unwrap();
    let imgs: Vec<Vec<u8>> = (0..4).map(|k| png(k, 5, 5)).collect();
    let rows = [
        ("a", &imgs[0][..], &imgs[1][..]),
        ("b", &imgs[2][..], &imgs[3][..]),
    ];
    let map = crate::convert_hub_hostile::mapping(t.path());
    let mut outs = Vec::new();
    for (name, codec) in [("plain", pq::UNCOMPRESSED), ("gzip", pq::GZIP)] {
        let src = t.path().join(name);
        pq::simple_file(&src.join("a.parquet"), &rows, codec);
        let out = t.path().join(format!("{name}-out"));
        let (o, _) = crate::convert_hub_hostile::convert_measured(&map, &src, &out, &[]);
        assert!(o.status.success(), "{name}: {}", text(&o));
        outs.push(records(&out));
    }
    assert_eq!(outs[0].len(), 2);
    assert_eq!(
        outs[0][1].turns[0].output.data.as_deref(),
        Some(&imgs[3][..])
    );
    assert_eq!(
        outs[0], outs[1],
        "gzip pages give the records plain pages give"
    );
}

#[test]
fn an_id_column_of_the_wrong_type_is_named_with_its_type() {
    let t = tempfile::tempdir().unwrap();
    let (src, out) = (t.path().join("x"), t.path().join("out"));
    let cols = vec![
        Col::text_list("sample", vec![Some(vec!["a".into()]), Some(vec![])]),
        Col::binary("before", vec![Some(png(1, 3, 3)), Some(png(2, 3, 3))]),
        Col::binary("after", vec![Some(png(3, 3, 3)), Some(png(4, 3, 3))]),
        Col::i64("prompt", vec![Some(1), Some(2)]),
    ];
    write(&src.join("part-1.parquet"), cols, 2, false);
    let mapping = t.path().join("m.toml");
    for (id, instruction, column, role, arrow) in [
        ("id = \"sample\"\n", "x", "sample", "the id", "List("),
        ("", "prompt", "prompt", "the instruction", "Int64"),
    ] {
        let text_of_mapping = format!(
            "name = \"m\"\n{id}source = \"before\"\noutput = \"after\"\n\
             instruction = \"{instruction}\"\noptional = [\"x\"]\n"
        );
        std::fs::write(&mapping, text_of_mapping).unwrap();
        let mut args = strings(&[
            "--mapping",
            editshard_tools::cli::s(&mapping),
            editshard_tools::cli::s(&src),
            "--out",
        ]);
        args.push(out.display().to_string());
        let o = convert(BIN, &args);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let e = text(&o);
        assert!(
            e.contains("part-1.parquet")
                && e.contains(&format!("column {column:?} ({role}) is {arrow}"))
                && !e.contains("null or empty"),
            "{e}"
        );
        assert!(!out.join("manifest.json").exists());
    }
}
