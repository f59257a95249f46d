//! Deterministic records for format tests: every kind, shared images, scores, extras.

use bytes::Bytes;
use editshard::record::{Image, Kind, Provenance, Record, Score, Turn};

/// A tiny but real image: the bytes differ per `seed`, and the media type and size are given
/// (the format stores bytes as they are, so they need not decode). Deterministic across crate
/// versions, unlike an encoder's output.
pub fn image(seed: u32, media_type: &str, width: u32, height: u32, len: usize) -> Image {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let data: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect();
    Image::with_info(Bytes::from(data), media_type.to_string(), width, height)
}

pub fn source(seed: u32) -> Image {
    let mut img = image(seed, "image/jpeg", 64, 48, 40 + seed as usize % 23);
    img.url = Some(format!("https://farm8.staticflickr.com/2915/{seed}_o.jpg"));
    img
}

pub fn edit(seed: u32) -> Image {
    let mut img = image(1000 + seed, "image/png", 48, 32, 50 + seed as usize % 17);
    img.path = Some(format!("images/positive-edit/{seed}.png"));
    img
}

fn judge(img: &mut Image, base: f32) {
    for (i, name) in [
        "instruction_compliance",
        "realism",
        "preservation",
        "technical_quality",
        "overall",
    ]
    .iter()
    .enumerate()
    {
        img.scores.push(Score {
            name: name.to_string(),
            value: base - i as f32 * 0.05,
        });
    }
}

fn provenance(subset: &str, line: u64) -> Provenance {
    Provenance {
        subset: Some(subset.to_string()),
        file: Some(format!("jsonl/{subset}.jsonl")),
        line: Some(line),
        licence: Some("CC BY-NC-ND 4.0".to_string()),
        ..Provenance::default()
    }
}

pub fn sft(n: u32, source_seed: u32) -> Record {
    let mut turn = Turn::new(edit(n));
    turn.instruction = Some(format!(
        "Remove the red flag number {n} and extend the clear blue sky seamlessly."
    ));
    turn.short_instruction = Some("Flag removed.".to_string());
    turn.edit_type = Some("Remove an existing object".to_string());
    turn.category = Some("Object-Level Semantic".to_string());
    let mut r = Record::new(
        format!("sft/images/positive-edit/{n}.png"),
        Kind::Sft,
        source(source_seed),
        vec![turn],
    );
    r.provenance = provenance("sft", u64::from(n));
    r
}

/// A preference row reusing the SFT row `n`'s source and chosen image.
pub fn preference(n: u32, source_seed: u32, rejected: u32) -> Record {
    let mut turn = Turn::new(edit(n));
    turn.instruction = Some(format!(
        "Remove the red flag number {n} and extend the clear blue sky seamlessly."
    ));
    turn.short_instruction = Some("Flag removed.".to_string());
    turn.edit_type = Some("Change overall color tone (warm ↔ cool)".to_string());
    turn.category = Some("Pixel & Photometric".to_string());
    judge(&mut turn.output, 0.9);
    for k in 0..rejected {
        let mut rej = image(5000 + n * 10 + k, "image/png", 48, 32, 45);
        rej.path = Some(format!("images/rejected-edit/{n}_{k}.png"));
        judge(&mut rej, 0.4);
        turn.rejected.push(rej);
    }
    let mut r = Record::new(
        format!("preference/images/positive-edit/{n}.png"),
        Kind::Preference,
        source(source_seed),
        vec![turn],
    );
    r.provenance = provenance("preference", u64::from(n));
    r
}

pub fn multi_turn(n: u32, source_seed: u32, turns: u32) -> Record {
    let turns = (1..=turns)
        .map(|t| {
            let mut img = image(9000 + n * 10 + t, "image/png", 32, 48, 48);
            img.path = Some(format!("images/multi-turn/{n}_attemptB_turn{t}.png"));
            let mut turn = Turn::new(img);
            turn.instruction = Some(format!(
                "Turn {t}: shift the colour tone to a warmer, golden hue"
            ));
            turn
        })
        .collect();
    let mut r = Record::new(
        format!("multi-turn/images/multi-turn/{n}_attemptB_turn3.png"),
        Kind::MultiTurn,
        source(source_seed),
        turns,
    );
    r.provenance = provenance("multi-turn", u64::from(n));
    r.source.rotation = Some(90);
    r
}

pub fn generic(n: u32) -> Record {
    let mut r = Record::new(
        format!("generic/{n}"),
        Kind::Generic,
        image(77 + n, "image/webp", 16, 16, 30),
        vec![],
    );
    r.extras
        .insert("local_input_image".into(), serde_json::Value::Null);
    r.extras
        .insert("note".into(), serde_json::json!({"nested": [1, 2.5, "ü"]}));
    r
}

/// A small mix of every kind, with sharing: sft 1 and preference 1 share source and chosen
/// image; multi-turn 7 shares sft 2's source.
pub fn mixed() -> Vec<Record> {
    vec![
        sft(1, 1),
        preference(1, 1, 2),
        sft(2, 2),
        multi_turn(7, 2, 3),
        generic(3),
        sft(4, 4),
    ]
}

/// A record as a converter of another editing dataset (MagicBrush, UltraEdit, ...) makes it
/// under format 1.1: a mask per turn, captions of source and output, several phrasings of the
/// instruction, and provenance naming the dataset, revision, Parquet file, row group and row.
pub fn editing_v1_1(n: u32) -> Record {
    const VERBS: [&str; 4] = ["Put", "Add", "Replace", "Paint"];
    const THINGS: [&str; 5] = ["a red kite", "two sheep", "a wooden boat", "snow", "a lamp"];
    let thing = THINGS[n as usize % THINGS.len()];
    let turns = (1..=1 + n % 2)
        .map(|t| {
            let mut output = image(
                20_000 + n * 10 + t,
                "image/png",
                64,
                64,
                40 + (n % 13) as usize,
            );
            output.caption = Some(format!("a photo of a field with {thing}, turn {t}"));
            let mut mask = image(30_000 + n * 10 + t, "image/png", 64, 64, 24);
            mask.path = Some(format!("masks/{n}-{t}.png"));
            let mut turn = Turn::new(output);
            turn.instruction = Some(format!(
                "{} {thing} in the middle of the field",
                VERBS[(n + t) as usize % VERBS.len()]
            ));
            turn.instruction_variants = vec![
                format!("let there be {thing} in the field"),
                format!("the field should have {thing}"),
            ];
            turn.mask = Some(mask);
            turn
        })
        .collect();
    let mut source = image(40_000 + n, "image/jpeg", 64, 64, 30 + (n % 11) as usize);
    source.caption = Some("a photo of an empty green field under a grey sky".to_string());
    let mut r = Record::new(
        format!("magicbrush/train/{n}"),
        Kind::Generic,
        source,
        turns,
    );
    r.provenance = Provenance {
        dataset: Some("osunlp/MagicBrush".to_string()),
        revision: Some("4dd1ee6b3c2f0d81e2a7c0bd96f4f3a1d2ee0b9a".to_string()),
        file: Some(format!("data/train-{:05}-of-00051.parquet", n / 20)),
        row_group: Some(u64::from(n % 20 / 10)),
        row: Some(u64::from(n % 10)),
        licence: Some("CC BY 4.0".to_string()),
        ..Provenance::default()
    };
    r
}

/// Enough format 1.1 records for the writer to train a metadata dictionary on.
pub fn editing_v1_1_set() -> Vec<Record> {
    (0..80).map(editing_v1_1).collect()
}
