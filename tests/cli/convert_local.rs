//! `editshard convert` on releases resolved from local files: the record mapping, the data
//! problems of the release (malformed and blank lines, collisions, rejected path forms,
//! non-ASCII edit types, out-of-order multi-turn files), path safety, scores, and
//! `--part` + `merge`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::Path;

use editshard::record::{Kind, Record};
use editshard_pico::rows::rebuild_row;
use editshard_tools::convert_support::*;
use editshard_tools::release::{
    EDIT_TYPES, Expect, FailReason, GeneratedRelease, ReleaseSpec, Subset, generate_release,
    normalize_release_path,
};

/// The category of `EDIT_TYPES[i]`, written out independently of the converter's table.
fn category_of(i: usize) -> &'static str {
    match i {
        0..=1 => "Pixel & Photometric",
        2..=7 => "Object-Level Semantic",
        8..=11 => "Scene Composition & Multi-Subject",
        12..=14 => "Stylistic",
        15..=18 => "Text & Symbol",
        19..=32 => "Human-Centric",
        33 => "Scale & Perspective",
        _ => "Spatial / Layout",
    }
}

fn local_args(rel: &GeneratedRelease, out: &Path) -> Vec<String> {
    let mut args = vec![
        rel.root.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    for m in rel.map_url_args() {
        args.push("--map-url".into());
        args.push(m);
    }
    args
}

fn by_id(records: Vec<Record>) -> HashMap<String, Record> {
    records.into_iter().map(|r| (r.id.clone(), r)).collect()
}

fn id_of(subset: Subset, key: &str) -> String {
    format!("{}/{key}", subset.name())
}

#[test]
fn every_field_is_mapped_and_rows_rebuild_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let rel = generate_release(&tmp.path().join("rel"), &ReleaseSpec::default()).unwrap();
    let out = tmp.path().join("out");
    let mut args = local_args(&rel, &out);
    args.extend([
        "--openimages-csv".into(),
        rel.openimages_csv().display().to_string(),
        "--openimages-dir".into(),
        rel.root.join("openimages").display().to_string(),
    ]);
    let o = convert(crate::BIN, &args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("records written     36"),
        "{}",
        text(&o)
    );
    // Progress, drawn by the command from what the engine reports: stderr is no terminal
    // here, so a plain line per row (`--log-interval 0`), the first and the last.
    let progress = String::from_utf8_lossy(&o.stderr);
    assert!(
        progress.contains("editshard convert: 1/") && progress.contains("rows (100.0%)"),
        "{progress}"
    );
    let m = manifest(&out);
    assert_eq!(m.records, 36);
    assert!(
        m.images.stored < m.images.referenced,
        "shared images were not deduplicated"
    );
    let recs = by_id(records(&out));
    assert_eq!(recs.len(), rel.rows.len());
    for row in &rel.rows {
        let id = id_of(row.subset, &row.key);
        let rec = recs.get(&id).unwrap_or_else(|| panic!("no record {id}"));
        let src = &rel.sources[row.source];
        assert_eq!(rec.source.sha256_hex(), src.sha256, "{id} source bytes");
        assert_eq!(rec.source.url.as_deref(), Some(row.source_url.as_str()));
        let rotation = match src.rotation.as_str() {
            "" => None,
            r => Some(r.parse::<f64>().unwrap() as u16),
        };
        assert_eq!(rec.source.rotation, rotation, "{id} rotation");
        assert_eq!(
            (rec.source.width, rec.source.height),
            (src.width, src.height)
        );
        assert_eq!(rec.provenance.line, Some(row.line as u64));
        assert_eq!(rec.provenance.file.as_deref(), Some(row.subset.jsonl_rel()));
        assert_eq!(rec.provenance.subset.as_deref(), Some(row.subset.name()));
        assert!(
            rec.provenance
                .licence
                .as_deref()
                .unwrap()
                .contains("CC BY-NC-ND 4.0")
        );
        match row.subset {
            Subset::Sft | Subset::Preference => {
                let kind = if row.subset == Subset::Sft {
                    Kind::Sft
                } else {
                    Kind::Preference
                };
                assert_eq!(rec.kind, kind);
                assert_eq!(rec.turns.len(), 1);
                let t = &rec.turns[0];
                assert_eq!(t.instruction, row.text);
                assert_eq!(t.short_instruction, row.summarized_text);
                assert_eq!(t.edit_type, row.edit_type, "edit type kept verbatim");
                assert_eq!(
                    t.category.as_deref(),
                    Some(category_of(row.edit_type_index.unwrap()))
                );
                let output = row.output_image.as_deref().unwrap();
                assert_eq!(t.output.path.as_deref(), Some(output));
                let f = &rel.files[output];
                assert_eq!(
                    (t.output.sha256_hex(), t.output.width, t.output.height),
                    (f.sha256.clone(), f.width, f.height)
                );
                let written: Vec<_> = t.rejected.iter().map(|r| r.path.clone().unwrap()).collect();
                assert_eq!(written, row.rejected_images, "rejected paths as written");
                for (r, w) in t.rejected.iter().zip(&row.rejected_images) {
                    let file = normalize_release_path(w).unwrap();
                    assert_eq!(r.sha256_hex(), rel.files[&file].sha256, "{w}");
                }
            }
            Subset::MultiTurn => {
                assert_eq!(rec.kind, Kind::MultiTurn);
                let outs: Vec<_> = rec
                    .turns
                    .iter()
                    .map(|t| t.output.path.clone().unwrap())
                    .collect();
                assert_eq!(outs, row.turn_images, "{id}: every turn, final_image last");
                let prompts: Vec<_> = rec
                    .turns
                    .iter()
                    .map(|t| t.instruction.clone().unwrap())
                    .collect();
                assert_eq!(prompts, row.turn_prompts);
                for t in &rec.turns {
                    let p = t.output.path.as_deref().unwrap();
                    assert_eq!(t.output.sha256_hex(), rel.files[p].sha256);
                    assert_eq!(
                        (t.edit_type.as_deref(), t.category.as_deref()),
                        (None, None)
                    );
                }
            }
        }
        // The source row comes back exactly: same keys, same order, same values.
        let rebuilt = rebuild_row(rec).expect("rebuildable");
        let original: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&row.json).unwrap();
        assert_eq!(
            rebuilt.keys().collect::<Vec<_>>(),
            original.keys().collect::<Vec<_>>(),
            "{id} key order"
        );
        assert_eq!(rebuilt, original, "{id} values");
    }
    // Rows with out-of-order `files` and non-ASCII edit types exist in this release.
    assert!(
        rel.rows
            .iter()
            .any(|r| r.file_ids.first().map(String::as_str) == Some("original_input_image"))
    );
    assert!(
        rel.rows
            .iter()
            .any(|r| r.edit_type.as_deref().is_some_and(|t| t.contains('↔')) && r.ascii_escaped)
    );
    assert!(
        rel.rows
            .iter()
            .any(|r| r.edit_type.as_deref().is_some_and(|t| t.contains('–')))
    );
    assert!(m.edit_types.keys().any(|k| k.contains('↔')));
    assert!(
        !fs::read(out.join("failures.jsonl"))
            .unwrap()
            .iter()
            .any(|_| true),
        "no failures expected"
    );
    assert!(
        !out.join(".editshard-work").exists(),
        "work directory left behind"
    );
}

#[test]
fn release_faults_are_reported_and_collision_policy_applies() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = ReleaseSpec {
        sft: 14,
        preference: 8,
        multi_turn: 8,
        seed: 5,
        image_px: 16,
        faults: true,
    };
    let rel = generate_release(&tmp.path().join("rel"), &spec).unwrap();
    let out = tmp.path().join("out");
    let o = convert(crate::BIN, &local_args(&rel, &out));
    assert_eq!(
        o.status.code(),
        Some(1),
        "failures must give exit code 1: {}",
        text(&o)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("malformed-json") && stdout.contains("collision"),
        "{stdout}"
    );

    let got: BTreeSet<(String, u64, String)> = failures(&out)
        .iter()
        .map(|f| {
            (
                f["subset"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
                f["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeSet<(String, u64, String)> = rel
        .expectations()
        .into_iter()
        .filter_map(|(s, line, e)| match e {
            Expect::Convert => None,
            Expect::Fail(FailReason::MalformedJson) => {
                Some((s.name().to_string(), line as u64, "malformed-json".into()))
            }
            Expect::Fail(FailReason::DuplicateOutputImage) => {
                Some((s.name().to_string(), line as u64, "collision".into()))
            }
        })
        .collect();
    assert_eq!(got, want);
    let blank: BTreeSet<_> = rel
        .blank_lines
        .iter()
        .map(|b| (b.subset.name().to_string(), b.line as u64))
        .collect();
    assert!(
        got.iter()
            .all(|(s, l, _)| !blank.contains(&(s.clone(), *l))),
        "blank lines are not failures"
    );
    for f in failures(&out) {
        if f["reason"] == "collision" {
            assert!(
                f["id"]
                    .as_str()
                    .unwrap()
                    .starts_with("sft/images/positive-edit/")
            );
            assert!(f["url"].as_str().unwrap().starts_with("https://"));
        }
    }
    let recs = by_id(records(&out));
    let expected: Vec<_> = Subset::ALL
        .iter()
        .flat_map(|&s| rel.expected_to_convert(s))
        .collect();
    assert_eq!(recs.len(), expected.len());
    for r in &expected {
        let rec = &recs[&id_of(r.subset, &r.key)];
        assert_eq!(
            rec.provenance.line,
            Some(r.line as u64),
            "line numbers count blank lines"
        );
    }

    // keep-first: the earlier row of the colliding pair is converted.
    let out2 = tmp.path().join("out2");
    let mut args = local_args(&rel, &out2);
    args.extend(strings(&[
        "--on-collision",
        "keep-first",
        "--allow-failures",
    ]));
    let o = convert(crate::BIN, &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let dup: Vec<_> = rel
        .rows
        .iter()
        .filter(|r| r.expect == Expect::Fail(FailReason::DuplicateOutputImage))
        .collect();
    assert_eq!(dup.len(), 2);
    let first = dup.iter().min_by_key(|r| r.line).unwrap();
    let recs = by_id(records(&out2));
    let kept = &recs[&id_of(Subset::Sft, &first.key)];
    assert_eq!(kept.provenance.line, Some(first.line as u64));
    assert_eq!(kept.turns[0].instruction, first.text);
    let collisions: Vec<_> = failures(&out2)
        .into_iter()
        .filter(|f| f["reason"] == "collision")
        .collect();
    assert_eq!(collisions.len(), 1);
    assert_eq!(
        collisions[0]["line"].as_u64(),
        Some(dup.iter().map(|r| r.line).max().unwrap() as u64)
    );
}

#[test]
fn hostile_paths_never_leave_their_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let rel = generate_release(
        &tmp.path().join("rel"),
        &ReleaseSpec {
            sft: 2,
            preference: 0,
            multi_turn: 0,
            seed: 3,
            image_px: 16,
            faults: false,
        },
    )
    .unwrap();
    let good = rel.rows[0].json.clone();
    let src = rel.rows[0].source_url.clone();
    let row = |url: &str, out: &str| {
        serde_json::json!({"open_image_input_url": url, "text": "t", "output_image": out, "edit_type": "Zoom in", "summarized_text": "s"}).to_string()
    };
    let huge = format!("{{\"text\": \"{}\"}}", "x".repeat(1_100_000));
    let lines = [
        good,
        row(&src, "../../outside.png"),
        row(&src, "/etc/passwd"),
        row(&src, "images/a\u{0}b.png"),
        row(&src, "images\\..\\x.png"),
        row(
            "https://farm1.staticflickr.com/../../../etc/passwd",
            "images/positive-edit/zz.png",
        ),
        row("file:///etc/passwd", "images/positive-edit/zy.png"),
        huge,
    ];
    fs::write(rel.jsonl(Subset::Sft), lines.join("\n") + "\n").unwrap();
    let out = tmp.path().join("out");
    let before: BTreeSet<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let mut args = local_args(&rel, &out);
    args.extend(strings(&[
        "--map-url",
        &format!("https://={}/flickr/", rel.root.display()),
        "--subsets",
        "sft",
    ]));
    let o = convert(crate::BIN, &args);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let f: BTreeMap<u64, String> = failures(&out)
        .iter()
        .map(|f| {
            (
                f["line"].as_u64().unwrap(),
                f["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // A NUL in the natural key is refused before any path is formed.
    let expect: BTreeMap<u64, String> = [2, 3, 5, 6, 7]
        .map(|l| (l, "unsafe-path".to_string()))
        .into_iter()
        .chain([(4, "bad-row".into()), (8, "line-too-long".into())])
        .collect();
    assert_eq!(f, expect);
    assert_eq!(manifest(&out).records, 1);
    let after: BTreeSet<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        after.difference(&before).count(),
        1,
        "only DEST was created"
    );
    let names: BTreeSet<String> = tree(&out).into_keys().collect();
    assert_eq!(
        names,
        ["failures.jsonl", "manifest.json", "shard-00000.esd"]
            .map(String::from)
            .into()
    );
}

#[test]
fn scores_attach_to_the_named_images() {
    let tmp = tempfile::tempdir().unwrap();
    let rel = generate_release(
        &tmp.path().join("rel"),
        &ReleaseSpec {
            sft: 3,
            preference: 2,
            multi_turn: 1,
            seed: 9,
            image_px: 16,
            faults: false,
        },
    )
    .unwrap();
    let pref = rel
        .rows
        .iter()
        .find(|r| r.subset == Subset::Preference)
        .unwrap();
    let mt = rel
        .rows
        .iter()
        .find(|r| r.subset == Subset::MultiTurn)
        .unwrap();
    let scores = [
        serde_json::json!({"id": id_of(Subset::Preference, &pref.key), "scores": {"instruction_compliance": 0.75, "realism": 0.5}}),
        serde_json::json!({"id": id_of(Subset::Preference, &pref.key), "image": pref.rejected_images[0], "overall": 0.25}),
        serde_json::json!({"id": id_of(Subset::MultiTurn, &mt.key), "overall": 1.0}),
    ];
    let file = tmp.path().join("scores.jsonl");
    fs::write(
        &file,
        scores
            .iter()
            .map(|s| s.to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let mut args = local_args(&rel, &out);
    args.extend(["--scores".into(), file.display().to_string()]);
    let o = convert(crate::BIN, &args);
    assert!(o.status.success(), "{}", text(&o));
    let recs = by_id(records(&out));
    let p = &recs[&id_of(Subset::Preference, &pref.key)].turns[0];
    let names: Vec<_> = p
        .output
        .scores
        .iter()
        .map(|s| (s.name.as_str(), s.value))
        .collect();
    assert_eq!(names, [("instruction_compliance", 0.75), ("realism", 0.5)]);
    assert_eq!(p.rejected[0].scores[0].value, 0.25);
    let m = &recs[&id_of(Subset::MultiTurn, &mt.key)];
    assert_eq!(m.turns.last().unwrap().output.scores[0].name, "overall");
    assert!(m.turns[0].output.scores.is_empty());
    assert!(
        recs[&id_of(Subset::Sft, &rel.rows[0].key)].turns[0]
            .output
            .scores
            .is_empty()
    );
}

#[test]
fn parts_merge_into_the_same_records_and_failures() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = ReleaseSpec {
        sft: 30,
        preference: 12,
        multi_turn: 12,
        seed: 11,
        image_px: 16,
        faults: true,
    };
    let rel = generate_release(&tmp.path().join("rel"), &spec).unwrap();
    let whole = tmp.path().join("whole");
    let mut args = local_args(&rel, &whole);
    args.push("--allow-failures".into());
    assert!(convert(crate::BIN, &args).status.success());

    let split = tmp.path().join("split");
    let n = 3;
    for i in 0..n {
        let mut args = local_args(&rel, &split);
        args.extend(strings(&[
            "--allow-failures",
            "--part",
            &format!("{i}/{n}"),
        ]));
        if i == 1 {
            // Before every part is finished, merge refuses and says which part is missing.
            let o = editshard(crate::BIN)
                .args(["merge", split.to_str().unwrap(), "--parts", "3"])
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(2), "{}", text(&o));
            assert!(
                text(&o).contains("part 1 of 3 is not finished"),
                "{}",
                text(&o)
            );
        }
        let o = convert(crate::BIN, &args);
        assert!(o.status.success(), "{}", text(&o));
    }
    // No source in two parts.
    let mut owner: HashMap<String, usize> = HashMap::new();
    for i in 0..n {
        for r in records(&split.join(format!("part-{i:04}-of-{n:04}"))) {
            let url = r.source.url.clone().unwrap();
            assert_eq!(
                *owner.entry(url.clone()).or_insert(i),
                i,
                "{url} in two parts"
            );
        }
    }
    assert!(
        owner.values().collect::<BTreeSet<_>>().len() > 1,
        "the split put everything in one part"
    );
    // A failures.jsonl without a manifest is someone else's: merge refuses to replace it.
    fs::write(split.join("failures.jsonl"), b"theirs\n").unwrap();
    let o = editshard(crate::BIN)
        .args(["merge", split.to_str().unwrap(), "--parts", "3"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(fs::read(split.join("failures.jsonl")).unwrap(), b"theirs\n");
    fs::remove_file(split.join("failures.jsonl")).unwrap();
    let o = editshard(crate::BIN)
        .args(["merge", split.to_str().unwrap(), "--parts", "3"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !split.join(".editshard-lock").exists(),
        "merge left its lock"
    );

    let canon = |dir: &Path| {
        let mut v: Vec<String> = records(dir)
            .iter()
            .map(|r| {
                let imgs: Vec<String> = r.images().map(|i| i.sha256_hex()).collect();
                format!("{} {}", r.to_json(), imgs.join(","))
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(canon(&split), canon(&whole));
    assert_eq!(
        fs::read(split.join("failures.jsonl")).unwrap(),
        fs::read(whole.join("failures.jsonl")).unwrap()
    );
    let (a, b) = (manifest(&split), manifest(&whole));
    assert_eq!(
        (a.records, &a.kinds, &a.edit_types, &a.categories),
        (b.records, &b.kinds, &b.edit_types, &b.categories)
    );
    assert!(a.shards.iter().all(|s| s.path.starts_with("part-")));
    assert_eq!(EDIT_TYPES.len(), 35);
}

#[test]
fn rerunning_a_finished_conversion_reports_it_complete_and_refuses_other_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let rel = generate_release(&tmp.path().join("rel"), &ReleaseSpec::default()).unwrap();
    let out = tmp.path().join("out");
    let args = local_args(&rel, &out);
    let o = convert(crate::BIN, &args);
    assert!(o.status.success(), "{}", text(&o));
    let before = tree(&out);

    // The same command again: complete, exit 0, nothing touched.
    let o = convert(crate::BIN, &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("already holds this conversion, complete"),
        "{}",
        text(&o)
    );
    assert_eq!(tree(&out), before, "a complete re-run must not write");

    // Other options or inputs: refused (exit 2), naming what differs, nothing touched.
    let mut other = args.clone();
    other.extend(strings(&["--limit", "3"]));
    let o = convert(crate::BIN, &other);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("different conversion") && err.contains("--limit"),
        "{}",
        text(&o)
    );
    assert!(!err.contains("--validate"), "only what differs: {err}");
    assert_eq!(tree(&out), before, "a refused run must not write");

    // Another input (a row less) with the same options: refused, naming the input.
    let sft = rel.root.join("jsonl/sft.jsonl");
    let jsonl = fs::read_to_string(&sft).unwrap();
    let first_line_end = jsonl.find('\n').unwrap() + 1;
    fs::write(&sft, &jsonl[first_line_end..]).unwrap();
    let o = convert(crate::BIN, &args);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the JSONL rows") && !err.contains("--limit"),
        "{}",
        text(&o)
    );
    assert_eq!(tree(&out), before);
}

/// A cluster job killed after the manifest was written but before its work directory was
/// removed is requeued with the same command: it reports the dataset complete, exits 0 (ending
/// the requeue loop) and removes the work directory.
#[cfg(unix)]
#[test]
fn a_run_killed_after_its_manifest_completes_on_requeue() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().unwrap();
    let rel = generate_release(&tmp.path().join("rel"), &ReleaseSpec::default()).unwrap();
    let reference = tmp.path().join("reference");
    assert!(
        convert(crate::BIN, &local_args(&rel, &reference))
            .status
            .success()
    );

    let out = tmp.path().join("out");
    let args = local_args(&rel, &out);
    let o = editshard(crate::BIN)
        .arg("convert")
        .args(&args)
        .args(["--log-interval", "0"])
        .env("EDITSHARD_TEST_KILL_AT", "manifest:1")
        .output()
        .unwrap();
    assert_eq!(o.status.signal(), Some(9), "expected SIGKILL: {}", text(&o));
    assert!(out.join("manifest.json").exists());
    assert!(out.join(".editshard-work").exists());

    let o = convert(crate::BIN, &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("complete") && stdout.contains("removed the work directory"),
        "{}",
        text(&o)
    );
    assert!(!out.join(".editshard-work").exists(), "work directory left");
    assert_same_tree(&reference, &out);
}

/// A run that fails before converting anything (a wrong argument, a missing input) leaves
/// nothing behind: no work directory, and no DEST it created. Its advice does not tell the
/// user to run the same command again when the cause is an argument.
#[test]
fn a_failed_run_leaves_nothing_and_blames_the_argument() {
    let tmp = tempfile::tempdir().unwrap();
    let rel = generate_release(&tmp.path().join("rel"), &ReleaseSpec::default()).unwrap();
    fs::remove_file(rel.jsonl(Subset::Preference)).unwrap();
    let out = tmp.path().join("new-dest");
    let o = convert(crate::BIN, &local_args(&rel, &out));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("preference.jsonl"), "{}", text(&o));
    assert!(!out.exists(), "a failed run left {}", out.display());

    // DEST existed (empty): it stays, without a work directory in it.
    fs::create_dir_all(&out).unwrap();
    let o = convert(crate::BIN, &local_args(&rel, &out));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(fs::read_dir(&out).unwrap().count(), 0, "left files in DEST");

    // --out names a file: the advice is about the path, not about trying again.
    let file = tmp.path().join("a-file");
    fs::write(&file, b"x").unwrap();
    let mut args = local_args(&rel, &file);
    args.extend(strings(&["--subsets", "sft"]));
    let o = convert(crate::BIN, &args);
    assert!(!o.status.success());
    let shown = text(&o);
    assert!(!shown.contains("run the same command again"), "{shown}");
    assert!(shown.contains("check the paths given"), "{shown}");
    assert_eq!(fs::read(&file).unwrap(), b"x");

    // A wrong --scores or --openimages-csv file is a wrong argument: no advice about shards.
    let mut args = local_args(&rel, &tmp.path().join("scores"));
    args.extend(strings(&[
        "--subsets",
        "sft",
        "--scores",
        file.to_str().unwrap(),
    ]));
    let shown = text(&convert(crate::BIN, &args));
    assert!(shown.contains("--scores line 1"), "{shown}");
    assert!(shown.contains("fix the call"), "{shown}");
    assert!(!shown.contains("damaged"), "{shown}");
    let mut args = local_args(&rel, &tmp.path().join("csv"));
    args.extend(strings(&[
        "--subsets",
        "sft",
        "--openimages-csv",
        "/nonexistent.csv",
    ]));
    let shown = text(&convert(crate::BIN, &args));
    assert!(
        shown.contains("--openimages-csv: cannot open it"),
        "{shown}"
    );
    assert!(!shown.contains("manifest.json"), "{shown}");
}

/// `--out` naming a directory that holds someone else's files (no manifest, no work
/// directory of ours) is refused, naming them, and nothing there is touched; an empty
/// directory is fine.
#[test]
fn a_directory_holding_foreign_files_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let rel = generate_release(&tmp.path().join("rel"), &ReleaseSpec::default()).unwrap();
    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("shard-00000.esd"), b"someone else's shard").unwrap();
    fs::write(out.join("failures.jsonl"), b"{\"theirs\": true}\n").unwrap();
    let before = tree(&out);
    let o = convert(crate::BIN, &local_args(&rel, &out));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("holds files this conversion did not write: failures.jsonl, shard-00000.esd")
            && err.contains("choose another --out"),
        "{err}"
    );
    assert_eq!(tree(&out), before, "a refused run wrote into DEST");

    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let o = convert(crate::BIN, &local_args(&rel, &empty));
    assert!(o.status.success(), "{}", text(&o));
}

/// The work directory is deleted when a conversion completes, so convert works only in one it
/// made: a `--work-dir` holding the user's files, a `.editshard-work` holding someone else's,
/// or a symbolic link at either name (or at the lock's) is refused and left exactly as it was.
#[test]
fn work_directories_and_locks_that_are_not_ours_are_refused_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let rel = generate_release(&tmp.path().join("rel"), &ReleaseSpec::default()).unwrap();
    let victim = tmp.path().join("victim");
    fs::create_dir_all(&victim).unwrap();
    fs::write(victim.join("mine.txt"), b"precious").unwrap();
    let victim_file = tmp.path().join("victim.txt");
    fs::write(&victim_file, b"precious").unwrap();
    let refused = |args: &[String], why: &str| {
        let o = convert(crate::BIN, args);
        assert_eq!(o.status.code(), Some(2), "{why}: {}", text(&o));
        assert_eq!(
            fs::read(victim.join("mine.txt")).unwrap(),
            b"precious",
            "{why}"
        );
        assert_eq!(
            fs::read_dir(&victim).unwrap().count(),
            1,
            "{why}: wrote into it"
        );
        assert_eq!(fs::read(&victim_file).unwrap(), b"precious", "{why}");
        text(&o)
    };

    let mut args = local_args(&rel, &tmp.path().join("a"));
    args.extend(strings(&["--work-dir", victim.to_str().unwrap()]));
    let shown = refused(&args, "--work-dir with files");
    assert!(shown.contains("not an editshard work directory"), "{shown}");

    let out = tmp.path().join("b");
    fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::symlink(&victim, out.join(".editshard-work")).unwrap();
    let shown = refused(&local_args(&rel, &out), "a linked .editshard-work");
    assert!(shown.contains("symbolic link"), "{shown}");

    let out = tmp.path().join("c");
    fs::create_dir_all(out.join(".editshard-work")).unwrap();
    fs::write(out.join(".editshard-work/notes.txt"), b"theirs").unwrap();
    refused(&local_args(&rel, &out), "a foreign .editshard-work");
    assert_eq!(
        fs::read(out.join(".editshard-work/notes.txt")).unwrap(),
        b"theirs"
    );

    let out = tmp.path().join("d");
    fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::symlink(&victim_file, out.join(".editshard-lock")).unwrap();
    let shown = refused(&local_args(&rel, &out), "a linked lock");
    assert!(shown.contains("symbolic link"), "{shown}");

    // A hard link at the lock's name (to a file elsewhere), a FIFO there (whose read would
    // block), a link one level down in a marked work directory.
    let out = tmp.path().join("f");
    fs::create_dir_all(&out).unwrap();
    fs::hard_link(&victim_file, out.join(".editshard-lock")).unwrap();
    refused(&local_args(&rel, &out), "a hard-linked lock");
    let out = tmp.path().join("g");
    fs::create_dir_all(&out).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(out.join(".editshard-lock"))
            .status()
            .unwrap()
            .success()
    );
    refused(&local_args(&rel, &out), "a FIFO lock");
    let out = tmp.path().join("h");
    fs::create_dir_all(out.join(".editshard-work")).unwrap();
    fs::write(out.join(".editshard-work/editshard-work"), b"").unwrap();
    std::os::unix::fs::symlink(&victim, out.join(".editshard-work/staging")).unwrap();
    let shown = refused(&local_args(&rel, &out), "a link inside the work directory");
    assert!(shown.contains("symbolic link"), "{shown}");

    // A marked --work-dir that also holds the user's files: the conversion completes and
    // removes only what it made there.
    let marked = tmp.path().join("marked-work");
    fs::create_dir_all(&marked).unwrap();
    fs::write(marked.join("editshard-work"), b"").unwrap();
    fs::write(marked.join("notes.txt"), b"mine").unwrap();
    let mut args = local_args(&rel, &tmp.path().join("i"));
    args.extend(strings(&["--work-dir", marked.to_str().unwrap()]));
    let o = convert(crate::BIN, &args);
    assert!(o.status.success(), "{}", text(&o));
    let left: Vec<String> = fs::read_dir(&marked)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["notes.txt"]);

    // An empty --work-dir is taken, and deleted with the conversion's work when it completes.
    let work = tmp.path().join("empty-work");
    fs::create_dir_all(&work).unwrap();
    let mut args = local_args(&rel, &tmp.path().join("e"));
    args.extend(strings(&["--work-dir", work.to_str().unwrap()]));
    let o = convert(crate::BIN, &args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!work.exists());
}

/// A symbolic link planted in DEST where convert makes a directory (the next `retry-N/` of a
/// finished dataset, a `--part` directory) is refused with exit 2, naming it; nothing is
/// written through it.
#[test]
fn a_link_planted_in_dest_is_not_written_through() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = ReleaseSpec {
        sft: 4,
        preference: 0,
        multi_turn: 0,
        ..ReleaseSpec::default()
    };
    let rel = generate_release(&tmp.path().join("rel"), &spec).unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let refused = |o: &std::process::Output| editshard_tools::cli::assert_refused_link(o, &outside);

    // One edited image missing: a finished dataset with one failure, to retry.
    let edit = rel
        .files
        .keys()
        .find(|k| k.starts_with("images/"))
        .unwrap()
        .clone();
    let aside = tmp.path().join("aside.png");
    fs::rename(rel.path(&edit), &aside).unwrap();
    let out = tmp.path().join("out");
    let mut args = local_args(&rel, &out);
    args.push("--allow-failures".into());
    let o = convert(crate::BIN, &args);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(failures(&out).len(), 1);
    fs::rename(&aside, rel.path(&edit)).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("retry-1")).unwrap();
    let mut retry = local_args(&rel, &out);
    retry.push("--retry-failed".into());
    refused(&convert(crate::BIN, &retry));

    let parts = tmp.path().join("parts");
    fs::create_dir(&parts).unwrap();
    std::os::unix::fs::symlink(&outside, parts.join("part-0000-of-0002")).unwrap();
    let mut part = local_args(&rel, &parts);
    part.extend(strings(&["--part", "0/2"]));
    refused(&convert(crate::BIN, &part));
    // The other part, a directory convert makes itself, converts.
    let mut part = local_args(&rel, &parts);
    part.extend(strings(&["--part", "1/2"]));
    let o = convert(crate::BIN, &part);
    assert!(o.status.success(), "{}", text(&o));
    assert!(parts.join("part-0001-of-0002/manifest.json").is_file());
}
