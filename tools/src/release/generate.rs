//! Writing a mini release: rows, faults, images and files, deterministically by seed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::Path;

use super::images::*;
use super::text::*;
use super::vocab::*;
use super::*;

/// Writes a mini release under `root` (created if missing). Existing files at the
/// same paths are overwritten; nothing else under `root` is touched, so use an
/// empty directory for exact comparisons.
pub fn generate_release(root: &Path, spec: &ReleaseSpec) -> io::Result<GeneratedRelease> {
    let px = spec.image_px.max(8);
    let mut g = Gen {
        seed: spec.seed,
        px,
        src_rng: Rng::stream(spec.seed, "sources"),
        sources: Vec::new(),
        ids: BTreeSet::new(),
        images: BTreeMap::new(),
        positive_names: Namer::new(Rng::stream(spec.seed, "positive-names"), 2),
        rejected_names: Namer::new(Rng::stream(spec.seed, "rejected-names"), 1),
    };

    let mut sft = g.sft_rows(spec.sft);
    let (mut pref, derived) = g.preference_rows(spec.preference, &sft);
    let mut mt = g.multi_turn_rows(spec.multi_turn, !sft.is_empty(), &sft);

    let mut layouts = [
        rows_layout(sft.len()),
        rows_layout(pref.len()),
        rows_layout(mt.len()),
    ];
    if spec.faults {
        let mut rng = Rng::stream(spec.seed, "faults");
        if !sft.is_empty() {
            let candidates: Vec<usize> = (0..sft.len()).filter(|i| !derived.contains(i)).collect();
            let target = if candidates.is_empty() {
                rng.below(sft.len())
            } else {
                candidates[rng.below(candidates.len())]
            };
            let dup = g.duplicate_row(&mut rng, &sft[target]);
            sft[target].expect = Expect::Fail(FailReason::DuplicateOutputImage);
            sft.push(dup);
            layouts[0] = rows_layout(sft.len());
        }
        for (i, layout) in layouts.iter_mut().enumerate() {
            insert_faults(layout, Subset::ALL[i]);
        }
    }

    // Assign line numbers and the JSON text of every row.
    let mut rows = Vec::new();
    let mut malformed = Vec::new();
    let mut blank_lines = Vec::new();
    let mut jsonl_text: [String; 3] = Default::default();
    for (si, subset) in Subset::ALL.into_iter().enumerate() {
        let list: &mut Vec<GeneratedRow> = match subset {
            Subset::Sft => &mut sft,
            Subset::Preference => &mut pref,
            Subset::MultiTurn => &mut mt,
        };
        for (ln, item) in layouts[si].iter().enumerate() {
            let line = ln + 1;
            let text = match item {
                LineItem::Row(i) => {
                    list[*i].line = line;
                    list[*i].json.clone()
                }
                LineItem::Blank => {
                    blank_lines.push(FaultLine {
                        subset,
                        line,
                        text: String::new(),
                    });
                    String::new()
                }
                LineItem::Malformed(t) => {
                    malformed.push(FaultLine {
                        subset,
                        line,
                        text: t.clone(),
                    });
                    t.clone()
                }
            };
            jsonl_text[si].push_str(&text);
            jsonl_text[si].push('\n');
        }
    }
    // Preference rows point at the line of the sft row they copy.
    for p in pref.iter_mut() {
        if let Some(idx) = p.from_sft_line {
            p.from_sft_line = Some(sft[idx].line);
        }
    }
    for list in [sft, pref, mt] {
        let mut list = list;
        list.sort_by_key(|r| r.line);
        rows.extend(list);
    }

    // Write everything.
    fs::create_dir_all(root.join("jsonl"))?;
    fs::create_dir_all(root.join("manifest"))?;
    for (si, subset) in Subset::ALL.into_iter().enumerate() {
        fs::write(root.join(subset.jsonl_rel()), &jsonl_text[si])?;
        let mut seen = BTreeSet::new();
        let mut manifest = String::new();
        for r in rows.iter().filter(|r| r.subset == subset) {
            for img in r.edited_images() {
                if seen.insert(img.clone()) {
                    manifest.push_str(CDN_BASE);
                    manifest.push_str(&img);
                    manifest.push('\n');
                }
            }
        }
        fs::write(root.join(subset.manifest_rel()), manifest)?;
    }

    // Images are encoded and written on every core (large releases have hundreds of
    // thousands); each is a pure function of its path, so the bytes do not depend on it.
    let mut files = BTreeMap::new();
    let edits: Vec<(&String, &(u32, u32))> = g.images.iter().collect();
    let infos = par_map(&edits, |&(rel, &(w, h))| {
        let key = mix(g.seed ^ fnv1a(rel.as_bytes()));
        let bytes = encode_png(&draw(w, h, key), w, h)?;
        write_file(root, rel, &bytes)?;
        Ok(file_info(w, h, &bytes))
    })?;
    for ((rel, _), info) in edits.into_iter().zip(infos) {
        files.insert(rel.clone(), info);
    }
    let encoded = par_map(&g.sources, |s| {
        let key = mix(g.seed.rotate_left(7) ^ fnv1a(s.image_id.as_bytes()));
        let bytes = encode_jpeg(&draw(s.width, s.height, key), s.width, s.height)?;
        for rel in [&s.openimages_rel, &s.flickr_rel] {
            write_file(root, rel, &bytes)?;
        }
        Ok((base64(&md5(&bytes)), file_info(s.width, s.height, &bytes)))
    })?;
    for (s, (md5_b64, info)) in g.sources.iter_mut().zip(encoded) {
        s.original_size = info.len;
        s.original_md5 = md5_b64;
        s.sha256 = info.sha256.clone();
        for rel in [&s.openimages_rel, &s.flickr_rel] {
            files.insert(rel.clone(), info.clone());
        }
    }

    let decoys = g.decoys();
    let mut csv_rows: Vec<&GeneratedSource> = g.sources.iter().chain(decoys.iter()).collect();
    Rng::stream(spec.seed, "csv-order").shuffle(&mut csv_rows);
    let mut csv = OPENIMAGES_HEADER.join(",");
    csv.push('\n');
    for s in csv_rows {
        let size = s.original_size.to_string();
        let fields: [&str; 12] = [
            &s.image_id,
            "train",
            &s.url,
            &s.landing_url,
            CC_BY_2,
            &s.author_profile_url,
            &s.author,
            &s.title,
            &size,
            &s.original_md5,
            &s.thumbnail_url,
            &s.rotation,
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        csv.push_str(&line.join(","));
        csv.push('\n');
    }
    write_file(root, OPENIMAGES_CSV, csv.as_bytes())?;

    Ok(GeneratedRelease {
        root: root.to_path_buf(),
        spec: spec.clone(),
        rows,
        malformed,
        blank_lines,
        sources: g.sources,
        csv_decoys: decoys,
        files,
    })
}

#[derive(Clone, Debug)]
pub(super) enum LineItem {
    Row(usize),
    Blank,
    Malformed(String),
}

pub(super) fn rows_layout(n: usize) -> Vec<LineItem> {
    (0..n).map(LineItem::Row).collect()
}

/// One blank line after the first third of the rows and one malformed line after
/// two thirds (both in the middle of the file, so a reader must carry on after them).
pub(super) fn insert_faults(layout: &mut Vec<LineItem>, subset: Subset) {
    let n = layout.len();
    let bad = match subset {
        // Truncated object (a torn write).
        Subset::Sft => {
            "{\"open_image_input_url\": \"https://farm2.staticflickr.com/1234/5678901234_0a1b2c3d4e_o.jpg\", \"text\": \"Make the sky".to_string()
        }
        // Trailing comma in the list.
        Subset::Preference => {
            "{\"output_image\": \"images/positive-edit/999999.png\", \"rejected_images\": [\"images/rejected-edit/999999.png\",], \"text\": \"Add a hat\", \"edit_type\": \"Zoom in\", \"open_image_input_url\": \"https://farm2.staticflickr.com/1234/5678901234_0a1b2c3d4e_o.jpg\", \"summarized_text\": \"Hat.\"}".to_string()
        }
        // Missing closing brace.
        Subset::MultiTurn => {
            "{\"files\": [{\"id\": \"final_image\", \"url\": \"images/multi-turn/999999_attemptA_turn2.png\"}], \"metadata_edit_turn_prompts\": [\"Zoom in\", \"Make it snow\"]".to_string()
        }
    };
    layout.insert((2 * n).div_ceil(3), LineItem::Malformed(bad));
    layout.insert(n / 3, LineItem::Blank);
}

pub(super) struct Gen {
    seed: u64,
    px: u32,
    src_rng: Rng,
    sources: Vec<GeneratedSource>,
    ids: BTreeSet<String>,
    /// Edited images to write: relative path -> (width, height).
    images: BTreeMap<String, (u32, u32)>,
    positive_names: Namer,
    rejected_names: Namer,
}

impl Gen {
    pub(super) fn scaled(&self, (w, h): (u32, u32)) -> (u32, u32) {
        let l = self.px;
        if w >= h {
            (l, ((l * h + w / 2) / w).max(1))
        } else {
            (((l * w + h / 2) / h).max(1), l)
        }
    }

    pub(super) fn editor_size(&self, rng: &mut Rng) -> (u32, u32) {
        self.scaled(EDITOR_SIZES[rng.below(EDITOR_SIZES.len())])
    }

    pub(super) fn add_image(&mut self, rel: &str, size: (u32, u32)) {
        self.images.entry(rel.to_string()).or_insert(size);
    }

    /// A new referenced source with files; returns its index.
    pub(super) fn new_source(&mut self) -> usize {
        let idx = self.sources.len();
        let image_id = self.fresh_id('0');
        let s = self.source_fields(image_id, Some(idx));
        self.sources.push(s);
        idx
    }

    pub(super) fn fresh_id(&mut self, first: char) -> String {
        loop {
            let mut id = String::from(first);
            id.push_str(&hex_digits(&mut self.src_rng, 15));
            if self.ids.insert(id.clone()) {
                return id;
            }
        }
    }

    /// CSV fields of a source; `forced` (the source index) pins a few values so that
    /// even tiny releases contain every interesting case.
    pub(super) fn source_fields(
        &mut self,
        image_id: String,
        forced: Option<usize>,
    ) -> GeneratedSource {
        let rng = &mut self.src_rng;
        let farm = 1 + rng.below(9);
        let server = 1000 + rng.below(8999);
        let photo = 1_000_000_000 + rng.next_u64() % 14_000_000_000;
        let secret = hex_digits(rng, 10);
        let c1 = match forced {
            Some(1) => true,
            Some(0) => false,
            _ => rng.chance(20),
        };
        let (host, path) = if c1 {
            (
                "c1.staticflickr.com".to_string(),
                format!("{farm}/{server}/{photo}_{secret}_o.jpg"),
            )
        } else {
            (
                format!("farm{farm}.staticflickr.com"),
                format!("{server}/{photo}_{secret}_o.jpg"),
            )
        };
        let user = FLICKR_USERS[rng.below(FLICKR_USERS.len())];
        let author = match forced {
            Some(i) if i < 3 => AUTHORS[i],
            _ => AUTHORS[rng.below(AUTHORS.len())],
        };
        let title = match forced {
            Some(i) if i < 3 => TITLES[i],
            _ => TITLES[rng.below(TITLES.len())],
        };
        let rotation = match forced {
            Some(0) => "0.0",
            Some(1) => "90.0",
            Some(2) => "",
            _ => match rng.below(10) {
                0 => "90.0",
                1 => "",
                _ => "0.0",
            },
        };
        let thumbnail_url = if rng.chance(15) {
            String::new()
        } else {
            let secret2 = hex_digits(rng, 10);
            let cdn = 1 + rng.below(8);
            let zz = if rng.chance(30) { "?zz=1" } else { "" };
            format!("https://c{cdn}.staticflickr.com/{farm}/{server}/{photo}_{secret2}_z.jpg{zz}")
        };
        let ratio = SOURCE_RATIOS[rng.below(SOURCE_RATIOS.len())];
        let (width, height) = self.scaled(ratio);
        let with_files = forced.is_some();
        GeneratedSource {
            openimages_rel: if with_files {
                format!("{OPENIMAGES_IMAGE_DIR}/{image_id}.jpg")
            } else {
                String::new()
            },
            flickr_rel: if with_files {
                format!("{FLICKR_DIR}/{host}/{path}")
            } else {
                String::new()
            },
            image_id,
            url: format!("https://{host}/{path}"),
            landing_url: format!("https://www.flickr.com/photos/{user}/{photo}"),
            author_profile_url: format!("https://www.flickr.com/people/{user}/"),
            host,
            author: author.to_string(),
            title: title.to_string(),
            thumbnail_url,
            rotation: rotation.to_string(),
            width,
            height,
            original_size: 0,
            original_md5: String::new(),
            sha256: String::new(),
        }
    }

    /// CSV rows nobody references, with ImageIDs outside `train_0` and no files.
    pub(super) fn decoys(&mut self) -> Vec<GeneratedSource> {
        let n = 2 + self.sources.len() / 4;
        (0..n)
            .map(|_| {
                let first = char::from_digit(2 + self.src_rng.below(14) as u32, 16).unwrap_or('f');
                let id = self.fresh_id(first);
                let mut s = self.source_fields(id, None);
                s.original_size = 100_000 + self.src_rng.below(6_000_000) as u64;
                let fake: Vec<u8> = (0..16).map(|_| self.src_rng.next_u64() as u8).collect();
                s.original_md5 = base64(&fake);
                s
            })
            .collect()
    }

    pub(super) fn sft_rows(&mut self, n: usize) -> Vec<GeneratedRow> {
        let mut rng = Rng::stream(self.seed, "sft");
        let plan = plan_edit_types(&mut rng, n);
        let mut rows: Vec<GeneratedRow> = Vec::with_capacity(n);
        for (i, &ti) in plan.iter().enumerate() {
            let source = if i == 1 || (i > 1 && rng.chance(30)) {
                rows[rng.below(i)].source
            } else {
                self.new_source()
            };
            let edit_type = style_edit_type(&mut rng, ti, i == 2);
            let (text, summary) = fill_edit(&mut rng, ti);
            let output_image = format!("images/positive-edit/{}", self.positive_names.next());
            let size = self.editor_size(&mut rng);
            self.add_image(&output_image, size);
            // Row 0 (the ↔ type) escapes non-ASCII, row n/2 (the en dash type) writes it raw.
            let ascii = match i {
                0 => true,
                _ if i == n / 2 => false,
                _ => rng.chance(50),
            };
            rows.push(self.single_row(
                Subset::Sft,
                source,
                text,
                summary,
                edit_type,
                ti,
                output_image,
                Vec::new(),
                ascii,
            ));
        }
        rows
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn single_row(
        &self,
        subset: Subset,
        source: usize,
        text: String,
        summary: String,
        edit_type: String,
        edit_type_index: usize,
        output_image: String,
        rejected: Vec<String>,
        ascii: bool,
    ) -> GeneratedRow {
        let url = self.sources[source].url.clone();
        let json = match subset {
            Subset::Sft => format!(
                "{{\"open_image_input_url\": {}, \"text\": {}, \"output_image\": {}, \"edit_type\": {}, \"summarized_text\": {}}}",
                js(&url, ascii),
                js(&text, ascii),
                js(&output_image, ascii),
                js(&edit_type, ascii),
                js(&summary, ascii)
            ),
            _ => {
                let list: Vec<String> = rejected.iter().map(|r| js(r, ascii)).collect();
                format!(
                    "{{\"output_image\": {}, \"rejected_images\": [{}], \"text\": {}, \"edit_type\": {}, \"open_image_input_url\": {}, \"summarized_text\": {}}}",
                    js(&output_image, ascii),
                    list.join(", "),
                    js(&text, ascii),
                    js(&edit_type, ascii),
                    js(&url, ascii),
                    js(&summary, ascii)
                )
            }
        };
        GeneratedRow {
            subset,
            line: 0,
            json,
            key: output_image.clone(),
            source,
            source_url: url,
            text: Some(text),
            summarized_text: Some(summary),
            edit_type: Some(edit_type),
            edit_type_index: Some(edit_type_index),
            output_image: Some(output_image),
            rejected_images: rejected,
            turn_prompts: Vec::new(),
            turn_images: Vec::new(),
            file_ids: Vec::new(),
            from_sft_line: None,
            ascii_escaped: ascii,
            expect: Expect::Convert,
        }
    }

    /// Returns the rows and the set of sft row indices they were copied from.
    /// `from_sft_line` temporarily holds the sft row *index*.
    pub(super) fn preference_rows(
        &mut self,
        n: usize,
        sft: &[GeneratedRow],
    ) -> (Vec<GeneratedRow>, BTreeSet<usize>) {
        let mut rng = Rng::stream(self.seed, "preference");
        let mut order: Vec<usize> = (0..sft.len()).collect();
        rng.shuffle(&mut order);
        let mut next = 0;
        let mut derived = BTreeSet::new();
        let mut rows = Vec::with_capacity(n);
        let mut rejected_count = 0usize;
        for j in 0..n {
            let derive = next < order.len() && (j == 0 || rng.chance(75));
            let n_rejected = match j {
                0 => 2,
                1 => 1,
                _ => 1 + rng.below(2),
            };
            let size = self.editor_size(&mut rng);
            let mut rejected = Vec::with_capacity(n_rejected);
            for _ in 0..n_rejected {
                let local = format!("images/rejected-edit/{}", self.rejected_names.next());
                let size = self.editor_size(&mut rng);
                self.add_image(&local, size);
                let form = if rejected_count < 3 {
                    rejected_count
                } else {
                    rng.below(3)
                };
                rejected_count += 1;
                rejected.push(match form {
                    0 => local,
                    1 => format!("{}{local}", REJECTED_PREFIXES[0]),
                    _ => format!("{}{local}", REJECTED_PREFIXES[1]),
                });
            }
            let ascii = rng.chance(50);
            let row = if derive {
                let si = order[next];
                next += 1;
                derived.insert(si);
                let s = &sft[si];
                let mut row = self.single_row(
                    Subset::Preference,
                    s.source,
                    s.text.clone().unwrap_or_default(),
                    s.summarized_text.clone().unwrap_or_default(),
                    s.edit_type.clone().unwrap_or_default(),
                    s.edit_type_index.unwrap_or_default(),
                    s.output_image.clone().unwrap_or_default(),
                    rejected,
                    ascii,
                );
                row.from_sft_line = Some(si);
                row
            } else {
                let source = if !sft.is_empty() && rng.chance(50) {
                    sft[rng.below(sft.len())].source
                } else {
                    self.new_source()
                };
                let ti = rng.below(EDIT_TYPES.len());
                let edit_type = style_edit_type(&mut rng, ti, false);
                let (text, summary) = fill_edit(&mut rng, ti);
                let output_image = format!("images/positive-edit/{}", self.positive_names.next());
                self.add_image(&output_image, size);
                self.single_row(
                    Subset::Preference,
                    source,
                    text,
                    summary,
                    edit_type,
                    ti,
                    output_image,
                    rejected,
                    ascii,
                )
            };
            rows.push(row);
        }
        (rows, derived)
    }

    pub(super) fn multi_turn_rows(
        &mut self,
        n: usize,
        share_sft: bool,
        sft: &[GeneratedRow],
    ) -> Vec<GeneratedRow> {
        let mut rng = Rng::stream(self.seed, "multi-turn");
        let mut session = 100 + rng.below(50) as u64;
        let mut words = BTreeSet::new();
        let mut rows = Vec::with_capacity(n);
        for r in 0..n {
            let source = if share_sft && rng.chance(60) {
                sft[rng.below(sft.len())].source
            } else {
                self.new_source()
            };
            let turns = match r {
                0 => 5,
                1 => 2,
                _ => 2 + rng.below(4),
            };
            let name = if r == 1 || rng.chance(15) {
                loop {
                    let w = word(&mut rng);
                    if words.insert(w.clone()) {
                        break w;
                    }
                }
            } else {
                session += 1 + rng.below(7) as u64;
                session.to_string()
            };
            let attempt = ['A', 'B', 'C'][rng.below(3)];
            let size = self.editor_size(&mut rng);
            let urls: Vec<String> = (1..=turns)
                .map(|t| format!("images/multi-turn/{name}_attempt{attempt}_turn{t}.png"))
                .collect();
            for u in &urls {
                self.add_image(u, size);
            }
            let mut prompt_idx: Vec<usize> = (0..TURN_PROMPTS.len()).collect();
            rng.shuffle(&mut prompt_idx);
            let prompts: Vec<String> = prompt_idx[..turns]
                .iter()
                .map(|&p| fill(&mut rng, TURN_PROMPTS[p]))
                .collect();

            let url = self.sources[source].url.clone();
            let mut files: Vec<(String, String)> = (1..turns)
                .map(|t| (format!("edit_turn{t}"), urls[t - 1].clone()))
                .collect();
            files.push(("final_image".to_string(), urls[turns - 1].clone()));
            files.push(("original_input_image".to_string(), url.clone()));
            let variant = match r {
                2 => 1,
                3 => 2,
                _ if rng.chance(30) => 1 + rng.below(4),
                _ => 0,
            };
            match variant {
                1 => {
                    // original_input_image first
                    let o = files.pop().expect("original entry");
                    files.insert(0, o);
                }
                2 => {
                    // final_image in the middle of the edit turns
                    let f = files.remove(turns - 1);
                    files.insert((turns - 1) / 2, f);
                }
                3 => files.reverse(),
                4 => rng.shuffle(&mut files),
                _ => {}
            }
            let ascii = rng.chance(50);
            let entries: Vec<String> = files
                .iter()
                .map(|(id, u)| format!("{{\"id\": {}, \"url\": {}}}", js(id, ascii), js(u, ascii)))
                .collect();
            let prompt_json: Vec<String> = prompts.iter().map(|p| js(p, ascii)).collect();
            let json = format!(
                "{{\"files\": [{}], \"metadata_edit_turn_prompts\": [{}]}}",
                entries.join(", "),
                prompt_json.join(", ")
            );
            rows.push(GeneratedRow {
                subset: Subset::MultiTurn,
                line: 0,
                json,
                key: urls[turns - 1].clone(),
                source,
                source_url: url,
                text: None,
                summarized_text: None,
                edit_type: None,
                edit_type_index: None,
                output_image: None,
                rejected_images: Vec::new(),
                turn_prompts: prompts,
                turn_images: urls,
                file_ids: files.into_iter().map(|(id, _)| id).collect(),
                from_sft_line: None,
                ascii_escaped: ascii,
                expect: Expect::Convert,
            });
        }
        rows
    }

    /// A row with the same `output_image` as `target` but another source, edit type and text.
    pub(super) fn duplicate_row(&mut self, rng: &mut Rng, target: &GeneratedRow) -> GeneratedRow {
        let source = self.new_source();
        let mut ti = rng.below(EDIT_TYPES.len());
        if Some(ti) == target.edit_type_index {
            ti = (ti + 1) % EDIT_TYPES.len();
        }
        let edit_type = style_edit_type(rng, ti, false);
        let (text, summary) = fill_edit(rng, ti);
        let mut row = self.single_row(
            Subset::Sft,
            source,
            text,
            summary,
            edit_type,
            ti,
            target.key.clone(),
            Vec::new(),
            false,
        );
        row.expect = Expect::Fail(FailReason::DuplicateOutputImage);
        row
    }
}

/// Edit type indices for `n` rows: shuffled rounds over all 35, with the ↔ type
/// moved to row 0 and the en dash type to row `n / 2` (when `n` allows).
pub(super) fn plan_edit_types(rng: &mut Rng, n: usize) -> Vec<usize> {
    let mut plan = Vec::with_capacity(n + EDIT_TYPES.len());
    while plan.len() < n {
        let mut round: Vec<usize> = (0..EDIT_TYPES.len()).collect();
        rng.shuffle(&mut round);
        plan.extend(round);
    }
    let arrow = 0; // "Change overall color tone (warm ↔ cool)"
    let dash = EDIT_TYPES
        .iter()
        .position(|t| t.contains('–'))
        .expect("en dash type");
    for (slot, want) in [(0usize, arrow), (n / 2, dash)] {
        if slot >= n || (want == dash && slot == 0) {
            continue;
        }
        match plan[..n].iter().position(|&t| t == want) {
            Some(p) => plan.swap(p, slot),
            None => plan[slot] = want,
        }
    }
    plan.truncate(n);
    plan
}

pub(super) fn style_edit_type(rng: &mut Rng, index: usize, force_lower: bool) -> String {
    let t = EDIT_TYPES[index];
    if force_lower || rng.chance(25) {
        t.to_lowercase()
    } else {
        t.to_string()
    }
}

pub(super) fn fill_edit(rng: &mut Rng, index: usize) -> (String, String) {
    let (_, long, short) = EDIT_TEMPLATES[index];
    let objects = pick_objects(rng);
    let color = COLORS[rng.below(COLORS.len())];
    (
        fill_with(long, objects, color),
        fill_with(short, objects, color),
    )
}

pub(super) fn fill(rng: &mut Rng, template: &str) -> String {
    let objects = pick_objects(rng);
    let color = COLORS[rng.below(COLORS.len())];
    fill_with(template, objects, color)
}

pub(super) fn pick_objects(rng: &mut Rng) -> (usize, usize) {
    let a = rng.below(OBJECTS.len());
    let b = (a + 1 + rng.below(OBJECTS.len() - 1)) % OBJECTS.len();
    (a, b)
}

pub(super) fn fill_with(template: &str, (a, b): (usize, usize), color: &str) -> String {
    let cap = |s: &str| {
        let mut c = s.chars();
        match c.next() {
            Some(f) => f.to_uppercase().chain(c).collect::<String>(),
            None => String::new(),
        }
    };
    template
        .replace("{obj_short}", OBJECTS[a].1)
        .replace("{obj2_short}", OBJECTS[b].1)
        .replace("{a_obj2}", &format!("a {}", OBJECTS[b].0))
        .replace("{a_obj}", &format!("a {}", OBJECTS[a].0))
        .replace("{obj2}", &format!("the {}", OBJECTS[b].0))
        .replace("{obj}", &format!("the {}", OBJECTS[a].0))
        .replace("{Obj}", &cap(OBJECTS[a].1))
        .replace("{color}", color)
}

/// File names for one image directory: mostly increasing numbers with gaps, about a
/// fifth non-numeric (`kewsee_retry1.png`); the name with index `forced_word` is
/// always non-numeric.
pub(super) struct Namer {
    rng: Rng,
    counter: u64,
    issued: usize,
    forced_word: usize,
    used: BTreeSet<String>,
}

impl Namer {
    pub(super) fn new(mut rng: Rng, forced_word: usize) -> Namer {
        let counter = rng.below(3) as u64;
        Namer {
            rng,
            counter,
            issued: 0,
            forced_word,
            used: BTreeSet::new(),
        }
    }

    pub(super) fn next(&mut self) -> String {
        let wordy = self.issued == self.forced_word || self.rng.chance(22);
        self.issued += 1;
        loop {
            let name = if wordy {
                format!("{}_retry{}.png", word(&mut self.rng), 1 + self.rng.below(2))
            } else {
                self.counter += 1 + self.rng.below(4) as u64;
                format!("{}.png", self.counter)
            };
            if self.used.insert(name.clone()) {
                return name;
            }
        }
    }
}

/// A pronounceable lower-case word of six letters.
pub(super) fn word(rng: &mut Rng) -> String {
    const C: &[u8] = b"bdfghjklmnprstvwz";
    const V: &[u8] = b"aeiou";
    let mut s = String::new();
    for i in 0..6 {
        let set = if i % 2 == 0 { C } else { V };
        s.push(set[rng.below(set.len())] as char);
    }
    s
}
