//! Multi-turn sessions whatever the row order: a MagicBrush download whose rows are shuffled
//! across files and row groups converts to its sessions, as does any `--mapping` with a
//! session key, whole, in parts, or resumed after a kill; sessions interleaved so that all
//! are open at once stay within the budget; a session of thousands of turns is refused row
//! by row instead of held.

use std::path::Path;

use editshard::record::Kind;
use editshard_tools::cli::{editshard_cmd, s, text};
use editshard_tools::convert_support::{convert, failures, records, strings};
use editshard_tools::hub_parquet::png;
use editshard_tools::parquet_bytes::{self as pq, Chunk, Page, RowGroup, SchemaElement};

use crate::BIN;
use crate::convert_hub::{MbRow, assert_kills_resume_to, magicbrush_file, run, sha};
use crate::convert_hub_hostile::convert_measured;

/// Four sessions (3, 2, 4 and 1 turns, each turn's source the previous turn's output), as
/// rows `(key, turn, source, mask, instruction, target)` in session order.
fn sessions() -> Vec<MbRow> {
    let mut rows = Vec::new();
    let mut seed = 0;
    for (key, turns) in [("101", 3), ("202", 2), ("303", 4), ("404", 1)] {
        let mut source = png(seed, 6, 5);
        for t in 1..=turns {
            seed += 1;
            let target = png(seed, 6, 5);
            let instruction: &'static str = ["red", "hat", "dog", "sky"][t as usize - 1];
            rows.push((
                key,
                t,
                source,
                Some(png(500 + seed, 4, 4)),
                instruction,
                target.clone(),
            ));
            source = target;
        }
        seed += 1;
    }
    rows
}

/// The rows shuffled (a fixed permutation) over three files of row groups of two.
fn shuffled(dir: &Path) -> Vec<MbRow> {
    let rows = sessions();
    let order = [7, 2, 9, 0, 5, 3, 8, 1, 6, 4];
    let shuffled: Vec<MbRow> = order.iter().map(|&i| rows[i].clone()).collect();
    magicbrush_file(
        &dir.join("data/train-00000-of-00003-a.parquet"),
        &shuffled[..4],
        2,
    );
    magicbrush_file(
        &dir.join("data/train-00001-of-00003-b.parquet"),
        &shuffled[4..7],
        2,
    );
    magicbrush_file(
        &dir.join("data/train-00002-of-00003-c.parquet"),
        &shuffled[7..],
        2,
    );
    rows
}

/// A turn as the rows decide it: source and output image hashes, instruction.
type TurnOf = ([u8; 32], [u8; 32], String);

/// Records reduced to what the rows decide (ids, turns' images and instructions), by id.
fn sessions_of(out: &Path) -> Vec<(String, Vec<TurnOf>)> {
    let mut v: Vec<_> = records(out)
        .into_iter()
        .map(|r| {
            assert_eq!(r.kind, Kind::MultiTurn);
            let mut source = r.source.sha256;
            let turns = r
                .turns
                .iter()
                .map(|t| {
                    let turn = (source, t.output.sha256, t.instruction.clone().unwrap());
                    source = t.output.sha256;
                    turn
                })
                .collect();
            (r.id, turns)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_shuffled_magicbrush_download_converts_to_its_sessions() {
    let t = tempfile::tempdir().unwrap();
    let (src, out) = (t.path().join("mb"), t.path().join("out"));
    let rows = shuffled(&src);
    let o = run("magicbrush", &src, &out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(failures(&out).is_empty(), "{:?}", failures(&out));
    assert!(text(&o).contains("session splits      0"), "{}", text(&o));
    let got = sessions_of(&out);
    let want: Vec<_> = ["101", "202", "303", "404"]
        .iter()
        .map(|k| {
            let turns = rows
                .iter()
                .filter(|r| r.0 == *k)
                .map(|r| (sha(&r.2), sha(&r.5), r.4.to_string()))
                .collect();
            (k.to_string(), turns)
        })
        .collect();
    assert_eq!(got, want);
    // In three parts, then merged: the same sessions (each in the part of its first row).
    let split = t.path().join("split");
    for i in 0..3 {
        let o = run("magicbrush", &src, &split, &["--part", &format!("{i}/3")]);
        assert!(o.status.success(), "part {i}: {}", text(&o));
    }
    let o = editshard_cmd(BIN)
        .args(["merge", s(&split), "--parts", "3"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(sessions_of(&split), want);
    // Killed after each of the first records (one shard each), then resumed: the same bytes.
    let reference = t.path().join("reference");
    let small = ["--shard-size", "1"];
    assert!(run("magicbrush", &src, &reference, &small).status.success());
    let kills = ["appended:1", "published:2", "saved:3"];
    assert_kills_resume_to("magicbrush", &src, &small, &reference, &kills, t.path());
}

#[test]
fn a_mapping_with_a_session_key_converts_rows_in_any_order() {
    let t = tempfile::tempdir().unwrap();
    let (src, out) = (t.path().join("mine"), t.path().join("out"));
    // Another schema: binary images, an integer session key, turns in any order.
    let rows = sessions();
    let order = [9, 4, 0, 6, 2, 8, 5, 1, 3, 7];
    let picked: Vec<&MbRow> = order.iter().map(|&i| &rows[i]).collect();
    use editshard_tools::hub_parquet::{Col, write};
    let cols = vec![
        Col::i64(
            "sid",
            picked.iter().map(|r| Some(r.0.parse().unwrap())).collect(),
        ),
        Col::i32("step", picked.iter().map(|r| Some(r.1)).collect()),
        Col::binary("before", picked.iter().map(|r| Some(r.2.clone())).collect()),
        Col::binary("after", picked.iter().map(|r| Some(r.5.clone())).collect()),
        Col::text(
            "say",
            picked.iter().map(|r| Some(r.4.to_string())).collect(),
        ),
    ];
    write(&src.join("part-1.parquet"), cols, 3, false);
    let mapping = t.path().join("mine.toml");
    std::fs::write(
        &mapping,
        "name = \"mine\"\nsource = \"before\"\noutput = \"after\"\ninstruction = \"say\"\n\
         [session]\nkey = \"sid\"\nturn = \"step\"\n",
    )
    .unwrap();
    let mut args = strings(&["--mapping", s(&mapping), s(&src), "--out"]);
    args.push(out.display().to_string());
    let o = convert(BIN, &args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(failures(&out).is_empty());
    let got = sessions_of(&out);
    assert_eq!(
        got.iter()
            .map(|g| (g.0.as_str(), g.1.len()))
            .collect::<Vec<_>>(),
        [("101", 3), ("202", 2), ("303", 4), ("404", 1)]
    );
    let r = records(&out).into_iter().find(|r| r.id == "303").unwrap();
    assert_eq!(r.extras["step"], serde_json::json!([1, 2, 3, 4]));
}

/// A MagicBrush-shaped file (binary image columns) of `rows` rows, written by hand: every
/// row's images are one `image`-byte value each, from dictionaries (a few kB on disk
/// whatever `image` is), keyed `keys(row)` with turn `turns(row)`.
fn dictionary_sessions(
    path: &Path,
    rows: usize,
    image: usize,
    keys: impl Fn(usize) -> String,
    turns: impl Fn(usize) -> i32,
) {
    let img = {
        let mut v = png(1, 4, 4);
        v.resize(image, 0);
        v
    };
    let dict = |value: &[u8]| {
        let body = pq::plain(&[value]);
        let mut d = Page::dictionary(1, pq::zstd(&body));
        d.uncompressed_size = body.len() as i32;
        let idx = pq::indices(1, &[pq::rle_run(rows as u32, 0, 1)]);
        let mut p = Page::data(rows as i32, pq::RLE_DICTIONARY, pq::zstd(&idx));
        p.uncompressed_size = idx.len() as i32;
        vec![d, p]
    };
    let keys: Vec<String> = (0..rows).map(keys).collect();
    let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
    let turns: Vec<u8> = (0..rows).flat_map(|r| turns(r).to_le_bytes()).collect();
    let chunk = |name: &str, ty, codec, pages| Chunk::new(&[name], ty, codec, pages);
    pq::write(
        path,
        &[
            pq::text("img_id"),
            SchemaElement::leaf("turn_index", pq::INT32, pq::REQUIRED, None),
            pq::binary("source_img"),
            pq::binary("mask_img"),
            pq::text("instruction"),
            pq::binary("target_img"),
        ],
        &[RowGroup {
            num_rows: rows as i64,
            columns: vec![
                chunk(
                    "img_id",
                    pq::BYTE_ARRAY,
                    pq::UNCOMPRESSED,
                    vec![Page::data(rows as i32, pq::PLAIN, pq::plain(&keys))],
                ),
                chunk(
                    "turn_index",
                    pq::INT32,
                    pq::UNCOMPRESSED,
                    vec![Page::data(rows as i32, pq::PLAIN, turns)],
                ),
                chunk("source_img", pq::BYTE_ARRAY, pq::ZSTD, dict(&img)),
                chunk("mask_img", pq::BYTE_ARRAY, pq::ZSTD, dict(&img)),
                chunk("instruction", pq::BYTE_ARRAY, pq::ZSTD, dict(b"again")),
                chunk("target_img", pq::BYTE_ARRAY, pq::ZSTD, dict(&img)),
            ],
        }],
    );
}

#[test]
fn a_session_of_four_thousand_turns_is_refused_row_by_row() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("long");
    // 4000 turns of one session, three 256 kB images a turn (3 GB if held): each turn's
    // source is the previous turn's output.
    dictionary_sessions(
        &src.join("a.parquet"),
        4000,
        256 << 10,
        |_| "s".into(),
        |r| r as i32 + 1,
    );
    let map = t.path().join("mb.toml");
    std::fs::write(&map, editshard_hub::mapping::PRESETS[0].1).unwrap();
    let out = t.path().join("out");
    let (o, peak) = convert_measured(&map, &src, &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let f = failures(&out);
    assert_eq!(f.len(), 4000);
    assert!(
        f.iter().all(|x| x["reason"] == "session-too-long"),
        "{:?}",
        f[0]
    );
    assert_eq!(
        (f[3999]["row"].as_u64(), f[3999]["id"].as_str()),
        (Some(3999), Some("s"))
    );
    assert!(
        f[0]["detail"].as_str().unwrap().contains("more than 64"),
        "{:?}",
        f[0]
    );
    eprintln!("a 4000-turn session: peak RSS {} MiB", peak >> 20);
    assert!(peak < 192 << 20, "peak RSS {} MiB", peak >> 20);
}

#[test]
fn interleaved_sessions_are_held_within_the_budget() {
    const SESSIONS: usize = 120;
    const IMAGE: usize = 2 << 20;
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("interleaved");
    // Every session's first turn, then every second turn: all 120 sessions are open at
    // once, 720 MiB of images if their turns were all kept.
    dictionary_sessions(
        &src.join("a.parquet"),
        2 * SESSIONS,
        IMAGE,
        |r| format!("s{}", r % SESSIONS),
        |r| (r / SESSIONS) as i32 + 1,
    );
    let map = t.path().join("mb.toml");
    std::fs::write(&map, editshard_hub::mapping::PRESETS[0].1).unwrap();
    let out = t.path().join("out");
    let (o, peak) = convert_measured(&map, &src, &out, &["--batch-memory", "16MiB"]);
    assert!(o.status.success(), "{}", text(&o));
    let recs = records(&out);
    assert_eq!(recs.len(), SESSIONS);
    assert!(recs.iter().all(|r| r.turns.len() == 2));
    eprintln!(
        "{SESSIONS} interleaved sessions: peak RSS {} MiB",
        peak >> 20
    );
    // The open sessions' budget and the batch (16 MiB each, the batch's pages and values
    // twice), the shard writer's open group, the process.
    assert!(
        peak < (2 * 16 + 32 + 64 + 64) << 20,
        "peak RSS {} MiB",
        peak >> 20
    );
}

/// Converts one file of `turns` (session key `s` for every row; each turn's source the
/// previous turn's output) written by `turn_col`, returning the run's output and DEST.
fn one_session_with_turns(
    dir: &Path,
    turn_col: editshard_tools::hub_parquet::Col,
    rows: usize,
) -> (std::process::Output, std::path::PathBuf) {
    use editshard_tools::hub_parquet::{Col, write};
    let (src, out) = (dir.join("src"), dir.join("out"));
    let images: Vec<Vec<u8>> = (0..=rows as u32).map(|k| png(k, 4, 4)).collect();
    let cols = vec![
        Col::text("sid", vec![Some("s".into()); rows]),
        turn_col,
        Col::binary(
            "before",
            (0..rows).map(|k| Some(images[k].clone())).collect(),
        ),
        Col::binary(
            "after",
            (0..rows).map(|k| Some(images[k + 1].clone())).collect(),
        ),
        Col::text("say", vec![Some("red".into()); rows]),
    ];
    write(&src.join("a.parquet"), cols, rows, false);
    let mapping = dir.join("m.toml");
    std::fs::write(
        &mapping,
        "name = \"m\"\nsource = \"before\"\noutput = \"after\"\ninstruction = \"say\"\n\
         [session]\nkey = \"sid\"\nturn = \"step\"\n",
    )
    .unwrap();
    let mut args = strings(&["--mapping", s(&mapping), s(&src), "--out"]);
    args.push(out.display().to_string());
    (convert(BIN, &args), out)
}

#[test]
fn turn_numbers_are_compared_exactly_and_out_of_range_ones_refused() {
    use editshard_tools::hub_parquet::Col;
    // Integer turns past 2^53 differ by one: two turns, not a duplicate (an f64 would
    // round both to the same number).
    let t = tempfile::tempdir().unwrap();
    let big = 1i64 << 53;
    let (o, out) = one_session_with_turns(
        t.path(),
        Col::i64("step", vec![Some(big), Some(big + 1)]),
        2,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(failures(&out).is_empty(), "{:?}", failures(&out));
    let got = sessions_of(&out);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.len(), 2, "{got:?}");
    // A float turn beyond the integers' range is not an integer turn (not i64::MAX).
    let t = tempfile::tempdir().unwrap();
    let (o, out) =
        one_session_with_turns(t.path(), Col::f64("step", vec![Some(1.0), Some(1e300)]), 2);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let f = failures(&out);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["row"], 1);
    assert!(
        f[0]["detail"].as_str().unwrap().contains("not an integer"),
        "{f:?}"
    );
    assert_eq!(records(&out).len(), 1);
}

/// A session whose turns' images cannot fit one record (18 turns of 60 MiB images, 1.05 GiB
/// in an 80 kB file): each of its rows is refused as too large, by position, and the
/// conversion goes on; before, the shard writer's refusal of the record's frame ended the
/// whole conversion (exit 2, no manifest).
#[test]
fn a_session_too_large_for_one_record_is_refused_row_by_row() {
    const TURNS: usize = 18;
    const SIZE: u64 = 60 << 20;
    let t = tempfile::tempdir().unwrap();
    let (src, out) = (t.path().join("src"), t.path().join("out"));
    let page = |k: u32| {
        let mut head = ((SIZE - 4) as u32).to_le_bytes().to_vec();
        head.extend_from_slice(&png(k, 4, 4));
        let mut p = Page::data(1, pq::PLAIN, pq::zstd_zeros_after(&head, SIZE));
        p.uncompressed_size = SIZE as i32;
        p
    };
    // Rows: the big session's turns, then one small session that converts.
    let rows = TURNS + 1;
    let mut keys: Vec<&[u8]> = vec![b"big"; TURNS];
    keys.push(b"small");
    let mut turns: Vec<u8> = (0..TURNS as i32).flat_map(|t| t.to_le_bytes()).collect();
    turns.extend(0i32.to_le_bytes());
    let small_page = |k: u32| {
        let body = pq::plain(&[&png(k, 4, 4)]);
        let mut p = Page::data(1, pq::PLAIN, pq::zstd(&body));
        p.uncompressed_size = body.len() as i32;
        p
    };
    let mut before: Vec<Page> = (0..TURNS as u32).map(page).collect();
    before.push(small_page(900));
    let mut after: Vec<Page> = (1..=TURNS as u32).map(page).collect();
    after.push(small_page(901));
    let schema = [
        pq::text("sid"),
        SchemaElement::leaf("step", pq::INT32, pq::REQUIRED, None),
        pq::binary("before"),
        pq::binary("after"),
    ];
    let columns = vec![
        Chunk::new(
            &["sid"],
            pq::BYTE_ARRAY,
            pq::UNCOMPRESSED,
            vec![Page::data(rows as i32, pq::PLAIN, pq::plain(&keys))],
        ),
        Chunk::new(
            &["step"],
            pq::INT32,
            pq::UNCOMPRESSED,
            vec![Page::data(rows as i32, pq::PLAIN, turns)],
        ),
        Chunk::new(&["before"], pq::BYTE_ARRAY, pq::ZSTD, before),
        Chunk::new(&["after"], pq::BYTE_ARRAY, pq::ZSTD, after),
    ];
    pq::write(
        &src.join("a.parquet"),
        &schema,
        &[RowGroup {
            num_rows: rows as i64,
            columns,
        }],
    );
    let mapping = t.path().join("m.toml");
    std::fs::write(
        &mapping,
        "name = \"m\"\nsource = \"before\"\noutput = \"after\"\n\
         [session]\nkey = \"sid\"\nturn = \"step\"\n",
    )
    .unwrap();
    let (o, peak) = convert_measured(&mapping, &src, &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // The session is read again once it outgrows the open-session budget, and that read
    // stops once its rows pass what one record may hold: at most that, the row that passed
    // it (two 60 MiB images), and the process. Measured: 1204 MiB; 2283 MiB when the whole
    // session was read before being refused.
    let room = editshard::format::Limits::DEFAULT.record_image_room();
    let bound = room + 4 * SIZE + (128 << 20);
    assert!(
        peak < bound,
        "peak RSS {} MiB, over {} MiB",
        peak >> 20,
        bound >> 20
    );
    let f = failures(&out);
    assert_eq!(f.len(), TURNS, "{f:?}");
    let mut rows_failed: Vec<u64> = f.iter().map(|x| x["row"].as_u64().unwrap()).collect();
    rows_failed.sort();
    assert_eq!(rows_failed, (0..TURNS as u64).collect::<Vec<_>>());
    assert!(f.iter().all(|x| x["reason"] == "too-large"), "{f:?}");
    let ids: Vec<String> = records(&out).into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["small"]);
}
