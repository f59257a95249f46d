//! Checks the mini-release generator in `tools/src/release.rs`: determinism,
//! the exact JSONL schema, that every referenced file exists, the Open Images CSV,
//! the deliberate faults, and that the committed sample is up to date.

use editshard_tools::release;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use editshard_tools::release::{
    EDIT_TYPES, Expect, FailReason, GeneratedRelease, OPENIMAGES_HEADER, REJECTED_PREFIXES,
    ReleaseSpec, Subset, base64, generate_release, md5, normalize_release_path, parse_csv,
};
use serde_json::Value;

fn spec(faults: bool) -> ReleaseSpec {
    ReleaseSpec {
        sft: 20,
        preference: 14,
        multi_turn: 16,
        seed: 7,
        image_px: 48,
        faults,
    }
}

fn generate(spec: &ReleaseSpec) -> (tempfile::TempDir, GeneratedRelease) {
    let dir = tempfile::tempdir().expect("tempdir");
    let rel = generate_release(dir.path(), spec).expect("generate_release");
    (dir, rel)
}

/// Every file under `root`, as relative path -> bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root").to_path_buf();
                out.insert(rel, fs::read(&path).expect("read file"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect()
}

/// The string value of `v[key]`.
fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

#[test]
fn md5_and_base64_match_known_vectors() {
    assert_eq!(release::hex(&md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(
        release::hex(&md5(b"abc")),
        "900150983cd24fb0d6963f7d28e17f72"
    );
    let long = b"12345678901234567890123456789012345678901234567890123456789012345678901234567890";
    assert_eq!(release::hex(&md5(long)), "57edf4a22be3c955ac49da2e2107b67a");
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}

#[test]
fn generation_is_deterministic() {
    for faults in [false, true] {
        let (a, _) = generate(&spec(faults));
        let (b, _) = generate(&spec(faults));
        let (ta, tb) = (tree(a.path()), tree(b.path()));
        assert!(!ta.is_empty());
        assert_eq!(
            ta.keys().collect::<Vec<_>>(),
            tb.keys().collect::<Vec<_>>(),
            "same file list"
        );
        for (path, bytes) in &ta {
            assert!(
                tb[path] == *bytes,
                "{} differs between runs",
                path.display()
            );
        }
    }
    // Another seed gives other content.
    let (a, _) = generate(&spec(false));
    let (c, _) = generate(&ReleaseSpec {
        seed: 8,
        ..spec(false)
    });
    let sft = Path::new("jsonl/sft.jsonl");
    assert_ne!(tree(a.path())[sft], tree(c.path())[sft]);
}

#[test]
fn jsonl_lines_parse_with_release_key_order() {
    for faults in [false, true] {
        let (_dir, rel) = generate(&spec(faults));
        for subset in Subset::ALL {
            let text = fs::read_to_string(rel.jsonl(subset)).expect("read jsonl");
            assert!(text.ends_with('\n'));
            let blank: BTreeSet<usize> = rel
                .blank_lines
                .iter()
                .filter(|f| f.subset == subset)
                .map(|f| f.line)
                .collect();
            let bad: BTreeSet<usize> = rel
                .malformed
                .iter()
                .filter(|f| f.subset == subset)
                .map(|f| f.line)
                .collect();
            let rows: BTreeMap<usize, _> = rel.rows_of(subset).map(|r| (r.line, r)).collect();
            assert_eq!(blank.len(), usize::from(faults));
            assert_eq!(bad.len(), usize::from(faults));
            let mut parsed = 0;
            for (i, line) in text.lines().enumerate() {
                let n = i + 1;
                if blank.contains(&n) {
                    assert!(line.trim().is_empty(), "{subset:?}:{n} should be blank");
                    continue;
                }
                assert!(!line.trim().is_empty(), "{subset:?}:{n} unexpectedly blank");
                let value = serde_json::from_str::<Value>(line);
                if bad.contains(&n) {
                    assert!(value.is_err(), "{subset:?}:{n} should be malformed");
                    continue;
                }
                let v = value.unwrap_or_else(|e| panic!("{subset:?}:{n}: {e}: {line}"));
                parsed += 1;
                let row = rows[&n];
                assert_eq!(row.json, line);
                assert_eq!(keys(&v), subset.keys(), "{subset:?}:{n} key order");
                match subset {
                    Subset::Sft | Subset::Preference => {
                        assert_eq!(Some(s(&v, "text")), row.text.as_deref());
                        assert_eq!(Some(s(&v, "edit_type")), row.edit_type.as_deref());
                        assert_eq!(s(&v, "open_image_input_url"), row.source_url);
                        assert_eq!(s(&v, "output_image"), row.key);
                        assert!(!s(&v, "summarized_text").is_empty());
                        if subset == Subset::Preference {
                            let rejected: Vec<&str> = v["rejected_images"]
                                .as_array()
                                .expect("rejected_images list")
                                .iter()
                                .map(|x| x.as_str().expect("string"))
                                .collect();
                            assert!((1..=2).contains(&rejected.len()));
                            assert_eq!(rejected, row.rejected_images);
                        }
                    }
                    Subset::MultiTurn => {
                        let files = v["files"].as_array().expect("files list");
                        let prompts = v["metadata_edit_turn_prompts"]
                            .as_array()
                            .expect("prompts list");
                        let turns = prompts.len();
                        assert!((2..=5).contains(&turns), "{turns} turns");
                        assert_eq!(files.len(), turns + 1);
                        let mut by_id = BTreeMap::new();
                        for f in files {
                            assert_eq!(keys(f), ["id", "url"]);
                            assert!(by_id.insert(s(f, "id"), s(f, "url")).is_none());
                        }
                        // The last turn appears only as final_image.
                        assert!(!by_id.contains_key(format!("edit_turn{turns}").as_str()));
                        for t in 1..turns {
                            assert!(by_id.contains_key(format!("edit_turn{t}").as_str()));
                        }
                        assert_eq!(by_id["final_image"], row.key);
                        assert_eq!(by_id["original_input_image"], row.source_url);
                        assert!(row.source_url.starts_with("https://"));
                        assert!(!row.key.contains("://"));
                    }
                }
            }
            assert_eq!(parsed, rows.len());
            let expected = match subset {
                Subset::Sft => rel.spec.sft + usize::from(faults),
                Subset::Preference => rel.spec.preference,
                Subset::MultiTurn => rel.spec.multi_turn,
            };
            assert_eq!(parsed, expected);
        }
    }
}

#[test]
fn referenced_files_exist_and_decode() {
    let (_dir, rel) = generate(&spec(true));
    let mut edited = BTreeSet::new();
    for row in &rel.rows {
        for img in row.edited_images() {
            assert!(img.starts_with("images/"), "{img}");
            assert!(rel.path(&img).is_file(), "{img} missing");
            assert!(rel.files.contains_key(&img), "{img} not recorded");
            edited.insert(img);
        }
        if row.subset == Subset::MultiTurn {
            assert!(
                rel.path(&row.key).is_file(),
                "final image {} missing",
                row.key
            );
        }
        // The source resolves both through the Flickr mirror and through Open Images.
        let src = &rel.sources[row.source];
        assert_eq!(src.url, row.source_url);
        let via_flickr = rel.flickr_path_for(&row.source_url).expect("https url");
        let via_oi = rel
            .openimages_image_dir()
            .join(format!("{}.jpg", src.image_id));
        assert_eq!(
            fs::read(&via_flickr).expect("flickr copy"),
            fs::read(&via_oi).expect("open images copy")
        );
        let mapped = rel
            .map_url_args()
            .iter()
            .filter_map(|arg| {
                let (prefix, dir) = arg.split_once('=')?;
                let rest = row.source_url.strip_prefix(prefix)?;
                Some(PathBuf::from(format!("{dir}{rest}")))
            })
            .next()
            .expect("a --map-url prefix matches the source url");
        assert_eq!(mapped, via_flickr);
    }
    // Every written image decodes at its recorded size, stays tiny, and differs from every other path.
    let mut hashes = BTreeMap::new();
    for (path, info) in &rel.files {
        let bytes = fs::read(rel.path(path)).expect("read image");
        assert_eq!(bytes.len() as u64, info.len);
        assert!(bytes.len() < 4096, "{path} is {} bytes", bytes.len());
        let img = image::load_from_memory(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(
            (img.width(), img.height()),
            (info.width, info.height),
            "{path}"
        );
        assert!(info.width.max(info.height) == 48);
        if path.ends_with(".png") {
            assert_eq!(
                image::guess_format(&bytes).expect("format"),
                image::ImageFormat::Png
            );
        } else {
            assert_eq!(
                image::guess_format(&bytes).expect("format"),
                image::ImageFormat::Jpeg
            );
        }
        if !path.starts_with("flickr/") {
            // Each source is written twice (train_0 and flickr); all else is unique.
            if let Some(other) = hashes.insert(info.sha256.clone(), path.clone()) {
                panic!("{path} and {other} have identical bytes");
            }
        }
    }
    // Nothing written that no row references (besides the sources).
    let pngs: BTreeSet<String> = rel
        .files
        .keys()
        .filter(|p| p.starts_with("images/"))
        .cloned()
        .collect();
    assert_eq!(pngs, edited);
    // Edited images use the editor's aspect ratios.
    let sizes: BTreeSet<(u32, u32)> = rel
        .files
        .iter()
        .filter(|(p, _)| p.starts_with("images/"))
        .map(|(_, f)| (f.width, f.height))
        .collect();
    for size in &sizes {
        assert!(
            [(48, 48), (48, 32), (32, 48), (48, 35), (48, 37)].contains(size),
            "{size:?}"
        );
    }
    assert!(sizes.len() >= 3, "{sizes:?}");
    // Manifests list every edited image once, as an absolute CDN URL.
    for subset in Subset::ALL {
        let text = fs::read_to_string(rel.path(subset.manifest_rel())).expect("manifest");
        for url in text.lines() {
            let local = normalize_release_path(url).expect("a CDN url");
            assert!(rel.path(&local).is_file(), "{url}");
        }
    }
}

#[test]
fn openimages_csv_parses_and_matches_sources() {
    let (_dir, rel) = generate(&spec(false));
    let text = fs::read_to_string(rel.openimages_csv()).expect("csv");
    let records = parse_csv(&text).expect("valid csv");
    assert_eq!(records[0], OPENIMAGES_HEADER);
    let body = &records[1..];
    assert_eq!(body.len(), rel.sources.len() + rel.csv_decoys.len());
    let col = |name: &str| {
        OPENIMAGES_HEADER
            .iter()
            .position(|h| *h == name)
            .expect("column")
    };
    let mut rotations = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for r in body {
        assert_eq!(r.len(), 12, "{r:?}");
        let id = &r[col("ImageID")];
        assert_eq!(id.len(), 16);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert!(ids.insert(id.clone()), "duplicate ImageID {id}");
        assert_eq!(r[col("Subset")], "train");
        assert!(
            r[col("OriginalURL")].starts_with("https://")
                && r[col("OriginalURL")].contains(".staticflickr.com/")
        );
        rotations.insert(r[col("Rotation")].clone());
    }
    assert_eq!(
        rotations,
        ["", "0.0", "90.0"].map(String::from).into_iter().collect()
    );
    // Quoted commas and doubled quotes round-trip.
    assert!(
        body.iter()
            .any(|r| r[col("Title")] == "Beach, \"golden\" hour")
    );
    assert!(body.iter().any(|r| r[col("Author")] == "Smith, John"));
    assert!(text.contains("\"Beach, \"\"golden\"\" hour\""));
    // Every referenced source: a CSV row whose OriginalURL is the row's url, whose
    // ImageID names the local JPEG, and whose size and MD5 describe its bytes.
    for src in &rel.sources {
        let r = body
            .iter()
            .find(|r| r[col("ImageID")] == src.image_id)
            .expect("source in csv");
        assert_eq!(r[col("OriginalURL")], src.url);
        assert_eq!(r[col("Author")], src.author);
        assert_eq!(r[col("Title")], src.title);
        let jpeg = fs::read(
            rel.openimages_image_dir()
                .join(format!("{}.jpg", src.image_id)),
        )
        .expect("train_0 jpeg");
        assert_eq!(r[col("OriginalSize")], jpeg.len().to_string());
        assert_eq!(r[col("OriginalMD5")], base64(&md5(&jpeg)));
        assert!(src.image_id.starts_with('0'));
    }
    for d in &rel.csv_decoys {
        assert!(!d.image_id.starts_with('0'));
        assert!(
            !rel.openimages_image_dir()
                .join(format!("{}.jpg", d.image_id))
                .exists()
        );
    }
    // Parser edge cases.
    assert_eq!(
        parse_csv("a,\"b,\"\"c\"\"\nd\",\r\ne,f\n").expect("csv"),
        vec![vec!["a", "b,\"c\"\nd", ""], vec!["e", "f"]]
    );
    assert!(parse_csv("a,\"b\n").is_none());
}

#[test]
fn release_has_the_realistic_quirks() {
    let (_dir, rel) = generate(&spec(false));
    let sft: Vec<_> = rel.rows_of(Subset::Sft).collect();
    let pref: Vec<_> = rel.rows_of(Subset::Preference).collect();
    let mt: Vec<_> = rel.rows_of(Subset::MultiTurn).collect();

    // Preference rows reuse sft rows: same source, text and chosen image.
    let derived: Vec<_> = pref.iter().filter(|p| p.from_sft_line.is_some()).collect();
    assert!(!derived.is_empty());
    for p in derived {
        let line = p.from_sft_line.expect("line");
        let s = sft.iter().find(|s| s.line == line).expect("sft row");
        assert_eq!(
            (&p.key, &p.source_url, &p.text),
            (&s.key, &s.source_url, &s.text)
        );
    }
    // Several rows share a source; multi-turn sessions reuse sft sources.
    let mut per_source = BTreeMap::<usize, usize>::new();
    for r in &rel.rows {
        *per_source.entry(r.source).or_default() += 1;
    }
    assert!(per_source.values().any(|&n| n >= 3));
    let sft_sources: BTreeSet<usize> = sft.iter().map(|r| r.source).collect();
    assert!(mt.iter().any(|r| sft_sources.contains(&r.source)));

    // All three rejected path forms.
    let all_rejected: Vec<&String> = pref.iter().flat_map(|p| &p.rejected_images).collect();
    assert!(all_rejected.iter().any(|r| r.starts_with("images/")));
    for prefix in REJECTED_PREFIXES {
        assert!(
            all_rejected.iter().any(|r| r.starts_with(prefix)),
            "{prefix}"
        );
    }
    assert!(pref.iter().any(|p| p.rejected_images.len() == 1));
    assert!(pref.iter().any(|p| p.rejected_images.len() == 2));

    // Multi-turn: 2 and 5 turns, out-of-order files.
    let turns: BTreeSet<usize> = mt.iter().map(|r| r.turn_images.len()).collect();
    assert!(turns.contains(&2) && turns.contains(&5), "{turns:?}");
    assert!(mt.iter().any(|r| r.file_ids[0] == "original_input_image"));
    assert!(mt.iter().any(|r| {
        let pos = r.file_ids.iter().position(|id| id == "final_image");
        pos.is_some_and(|p| p + 2 < r.file_ids.len())
    }));

    // Names that are not numbers, and numbers.
    let names: Vec<&str> = rel
        .files
        .keys()
        .filter(|p| p.starts_with("images/"))
        .map(|p| p.rsplit('/').next().expect("file name"))
        .collect();
    assert!(names.iter().any(|n| n.contains("_retry")));
    assert!(
        names
            .iter()
            .any(|n| n.trim_end_matches(".png").parse::<u64>().is_ok())
    );

    // Edit types: all known (case-insensitively), some lower-cased, some non-ASCII.
    let types: Vec<&str> = sft
        .iter()
        .chain(&pref)
        .map(|r| r.edit_type.as_deref().expect("edit type"))
        .collect();
    for t in &types {
        assert!(
            EDIT_TYPES
                .iter()
                .any(|k| k.to_lowercase() == t.to_lowercase()),
            "{t}"
        );
    }
    assert!(
        types.iter().any(|t| !EDIT_TYPES.contains(t)),
        "a lower-cased type"
    );
    assert!(types.iter().any(|t| t.contains('↔')));
    assert!(types.iter().any(|t| t.contains('–')));
    // Non-ASCII is written both raw and as \u escapes.
    assert!(rel.rows.iter().any(|r| r.json.contains("\\u2194")));
    assert!(rel.rows.iter().any(|r| r.json.contains('–')));
}

#[test]
fn faults_are_recorded_exactly() {
    let (_dir, clean) = generate(&spec(false));
    assert!(
        clean
            .expectations()
            .iter()
            .all(|(_, _, e)| *e == Expect::Convert)
    );
    assert!(clean.malformed.is_empty() && clean.blank_lines.is_empty());

    let (_dir, rel) = generate(&spec(true));
    assert_eq!(rel.malformed.len(), 3);
    assert_eq!(rel.blank_lines.len(), 3);
    let dups: Vec<_> = rel
        .rows
        .iter()
        .filter(|r| r.expect == Expect::Fail(FailReason::DuplicateOutputImage))
        .collect();
    assert_eq!(dups.len(), 2);
    assert!(dups.iter().all(|r| r.subset == Subset::Sft));
    assert_eq!(dups[0].key, dups[1].key);
    assert_ne!(dups[0].text, dups[1].text);
    // Sft keys are otherwise unique; so are preference and multi-turn keys.
    for subset in Subset::ALL {
        let keys: Vec<&str> = rel
            .rows_of(subset)
            .filter(|r| r.expect == Expect::Convert)
            .map(|r| r.key.as_str())
            .collect();
        let unique: BTreeSet<&str> = keys.iter().copied().collect();
        assert_eq!(keys.len(), unique.len(), "{subset:?}");
        assert!(!keys.contains(&dups[0].key.as_str()) || subset != Subset::Sft);
    }
    // Every non-blank line has exactly one expectation.
    let exp = rel.expectations();
    let lines: usize = Subset::ALL
        .iter()
        .map(|s| {
            fs::read_to_string(rel.jsonl(*s))
                .expect("jsonl")
                .lines()
                .filter(|l| !l.is_empty())
                .count()
        })
        .sum();
    assert_eq!(exp.len(), lines);
    let fails = exp.iter().filter(|(_, _, e)| *e != Expect::Convert).count();
    assert_eq!(fails, 5);
    // The clean rows are the same rows with or without faults.
    let clean_json: BTreeSet<&str> = clean.rows.iter().map(|r| r.json.as_str()).collect();
    let faulty_convert: BTreeSet<&str> = rel
        .rows
        .iter()
        .filter(|r| !(r.subset == Subset::Sft && r.line == dups[1].line))
        .map(|r| r.json.as_str())
        .collect();
    assert_eq!(clean_json, faulty_convert);
}

#[test]
fn committed_sample_is_up_to_date() {
    let sample = crate::workspace().join("examples/sample-release");
    let (dir, rel) = generate(&ReleaseSpec::default());
    assert_eq!(rel.rows.len(), 36);
    for subset in Subset::ALL {
        let committed =
            fs::read_to_string(sample.join(subset.jsonl_rel())).expect("committed sample jsonl");
        let fresh = fs::read_to_string(dir.path().join(subset.jsonl_rel())).expect("fresh jsonl");
        assert!(
            committed == fresh,
            "{} is stale: run `cargo run -p editshard-tools --bin gen_sample_release -- examples/sample-release`",
            subset.jsonl_rel()
        );
    }
    // Every image the committed JSONL references is committed too.
    for row in &rel.rows {
        for img in row.edited_images() {
            assert!(sample.join(&img).is_file(), "{img} not in the sample");
        }
        assert!(
            sample
                .join(&rel.sources[row.source].openimages_rel)
                .is_file()
        );
        assert!(sample.join(&rel.sources[row.source].flickr_rel).is_file());
    }
}
