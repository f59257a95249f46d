//! A dataset for `editshard view`'s tests and screenshots: every kind of record with real,
//! decodable images (JPEG sources, PNG edits, so thumbnails can be made), labels, scores,
//! provenance, a long instruction, and one record whose instruction is hostile HTML.

use std::path::Path;

use bytes::Bytes;
use editshard::manifest::Manifest;
use editshard::record::{Image, Kind, Provenance, Record, Score, Turn};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbImage};

/// The instruction of the record at [`HOSTILE_INDEX`]: it must show as text.
pub const HOSTILE_INSTRUCTION: &str = "<img src=x onerror=alert(1)>";
/// Global index of the record with the hostile instruction (an SFT record).
pub const HOSTILE_INDEX: u64 = 4;

const EDIT_TYPES: [(&str, &str); 4] = [
    ("Remove an existing object", "Object-Level Semantic"),
    (
        "Change overall color tone (warm ↔ cool)",
        "Pixel & Photometric",
    ),
    ("Add a new object to the scene", "Object-Level Semantic"),
    (
        "Change weather conditions (sunny/rainy/snowy)",
        "Scene Composition & Multi-Subject",
    ),
];

/// A picture keyed by `seed`: a sky-to-ground gradient, a sun and a "flag" rectangle; `edit`
/// shifts the tone and moves or drops the flag, so source and edit differ visibly.
fn picture(seed: u32, w: u32, h: u32, edit: u32) -> RgbImage {
    let hue = |v: u32| ((seed.wrapping_mul(67).wrapping_add(v * 41)) % 200) as u8 + 30;
    let (sky, ground) = ([hue(1), hue(2), 230u8], [hue(3), 150u8, hue(4)]);
    let warm = (edit * 40).min(120) as u8;
    RgbImage::from_fn(w, h, |x, y| {
        let t = y as f32 / h as f32;
        let mut px = [0u8; 3];
        let base = if t < 0.6 { sky } else { ground };
        for c in 0..3 {
            px[c] = (f32::from(base[c]) * (1.0 - 0.4 * t)) as u8;
        }
        let (sx, sy) = (w as i64 * 3 / 4, h as i64 / 5);
        let (dx, dy) = (x as i64 - sx, y as i64 - sy);
        if dx * dx + dy * dy < (h as i64 / 8).pow(2) {
            px = [250, 220, 80];
        }
        let fx = (seed * 13 + edit * 50) % (w / 2) + 10;
        if edit != 1 && x >= fx && x < fx + w / 8 && y >= h / 3 && y < h / 3 + h / 8 {
            px = [200, 30, 40];
        }
        px[0] = px[0].saturating_add(warm);
        px[2] = px[2].saturating_sub(warm / 2);
        image::Rgb(px)
    })
}

fn jpeg(img: &RgbImage) -> Image {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 85)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            ExtendedColorType::Rgb8,
        )
        .expect("encode jpeg");
    Image::from_bytes(Bytes::from(out)).expect("a JPEG we just wrote")
}

fn png(img: &RgbImage) -> Image {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            ExtendedColorType::Rgb8,
        )
        .expect("encode png");
    Image::from_bytes(Bytes::from(out)).expect("a PNG we just wrote")
}

fn judged(mut img: Image, base: f32) -> Image {
    for (i, name) in ["instruction_compliance", "realism", "overall"]
        .iter()
        .enumerate()
    {
        img.scores.push(Score {
            name: name.to_string(),
            value: (base - i as f32 * 0.05).clamp(0.0, 1.0),
        });
    }
    img
}

/// Record `n` of the view fixture (the kind cycles sft, preference, multi-turn, generic,
/// sft, ...; [`HOSTILE_INDEX`] is an SFT record with [`HOSTILE_INSTRUCTION`]).
pub fn record(n: u32) -> Record {
    let (w, h) = (320 + (n % 3) * 32, 240);
    let mut source = jpeg(&picture(n, w, h, 0));
    source.url = Some(format!("https://farm8.staticflickr.com/2915/{n}_o.jpg"));
    let (edit_type, category) = EDIT_TYPES[n as usize % EDIT_TYPES.len()];
    let labelled = |turn: &mut Turn, instruction: String| {
        turn.short_instruction = Some(instruction.split('.').next().unwrap_or("").to_string());
        turn.instruction = Some(instruction);
        turn.edit_type = Some(edit_type.to_string());
        turn.category = Some(category.to_string());
    };
    let kind = [Kind::Sft, Kind::Preference, Kind::MultiTurn, Kind::Generic][n as usize % 4];
    let (subset, id, turns) = match kind {
        Kind::Sft => {
            let mut out = png(&picture(n, w, h, 1));
            out.path = Some(format!("images/positive-edit/{n}.png"));
            let mut turn = Turn::new(out);
            labelled(
                &mut turn,
                format!(
                    "Remove the red flag number {n}. Extend the clear blue sky seamlessly over \
                     the area it covered, matching the gradient, the light and the grain of the \
                     rest of the photograph so that no trace of the flag remains."
                ),
            );
            if u64::from(n) == HOSTILE_INDEX {
                turn.instruction = Some(HOSTILE_INSTRUCTION.to_string());
                turn.short_instruction = Some(HOSTILE_INSTRUCTION.to_string());
            }
            (
                "sft",
                format!("sft/images/positive-edit/{n}.png"),
                vec![turn],
            )
        }
        Kind::Preference => {
            let score = 0.5 + (n % 5) as f32 * 0.1;
            let mut turn = Turn::new(judged(png(&picture(n, w, h, 2)), score));
            labelled(
                &mut turn,
                format!("Warm up the colours of scene {n}. Keep the sun."),
            );
            for k in 0..2 {
                let mut rej = judged(png(&picture(n, w, h, 3 + k)), score - 0.3 - k as f32 * 0.1);
                rej.path = Some(format!("images/negative-edit/{n}_{k}.png"));
                turn.rejected.push(rej);
            }
            (
                "preference",
                format!("preference/images/positive-edit/{n}.png"),
                vec![turn],
            )
        }
        Kind::MultiTurn => {
            let turns = (1..=3)
                .map(|t| {
                    let mut turn = Turn::new(png(&picture(n, w, h, t)));
                    labelled(
                        &mut turn,
                        format!("Turn {t}: make it a little warmer than before."),
                    );
                    turn
                })
                .collect();
            (
                "multi-turn",
                format!("multi-turn/images/multi-turn/{n}_turn3.png"),
                turns,
            )
        }
        Kind::Generic => ("generic", format!("generic/{n}"), Vec::new()),
    };
    let mut r = Record::new(id, kind, source, turns);
    r.provenance = Provenance {
        subset: Some(subset.to_string()),
        file: Some(format!("jsonl/{subset}.jsonl")),
        line: Some(u64::from(n) + 1),
        licence: Some("CC BY-NC-ND 4.0".to_string()),
        ..Provenance::default()
    };
    if kind == Kind::Generic {
        r.extras.insert(
            "note".into(),
            serde_json::json!({"from": "view fixture", "n": n}),
        );
    }
    r
}

/// Records made once per process and cloned after (image bytes are shared, so clones are
/// cheap): encoding the images is slow in debug builds, and every test wants them.
const CACHED: u32 = 64;

/// Records 0..n.
pub fn records(n: u32) -> Vec<Record> {
    static MADE: std::sync::OnceLock<Vec<Record>> = std::sync::OnceLock::new();
    if n > CACHED {
        return (0..n).map(record).collect();
    }
    MADE.get_or_init(|| (0..CACHED).map(record).collect())[..n as usize].to_vec()
}

/// Writes records 0..n to `dir` in small shards (about 64 KB, groups of 4): several shards,
/// so a page touches more than one.
pub fn write(dir: &Path, n: u32) -> Manifest {
    crate::fixtures::write(dir, &records(n), 64 << 10, 4)
}
