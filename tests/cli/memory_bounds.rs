//! The memory bound of each reading command (README, Guarantees), on records with large
//! images: peak resident memory stays near the largest record, however many records there
//! are and however large the dataset is.

use std::fs;

use editshard::Record;
use editshard::record::{Image, Kind, Turn};
use editshard::write::DatasetWriter;
use editshard_tools::cli::{editshard_cmd, run_with_peak_rss, s, text};

/// Each image's size: two images per record, so a record holds 96 MiB.
const IMAGE: usize = 48 << 20;
const RECORDS: u8 = 3;

fn big_image(seed: u8, k: u8) -> Image {
    // A real PNG's signature and header chunk, then distinct bulk (nothing deduplicated):
    // header checks pass; only the size matters here.
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        &[seed; 64 * 64 * 3],
        64,
        64,
        image::ExtendedColorType::Rgb8,
    )
    .unwrap();
    let mut data = vec![0u8; IMAGE];
    data[..33].copy_from_slice(&png[..33]);
    for (i, b) in data[33..].iter_mut().enumerate().step_by(4096) {
        *b = seed ^ k ^ (i >> 12) as u8;
    }
    data[IMAGE - 1] = seed;
    data[IMAGE - 2] = k;
    Image::with_info(data.into(), "image/png".into(), 64, 64)
}

/// An sft record as `convert` makes them (so that `export` can write it back as a release).
fn record(n: u8) -> Record {
    let mut source = big_image(n, 0);
    source.url = Some(format!("https://h/{n}.png"));
    let mut output = big_image(n, 1);
    output.path = Some(format!("images/{n}.png"));
    let mut turn = Turn::new(output);
    turn.instruction = Some("edit".into());
    let mut r = Record::new(format!("sft/{n}"), Kind::Sft, source, vec![turn]);
    r.provenance.subset = Some("sft".into());
    r.provenance.line = Some(u64::from(n) + 1);
    r.extras.insert(
        "editshard.release".into(),
        serde_json::json!({"keys": ["open_image_input_url", "text", "output_image"]}),
    );
    r
}

#[test]
fn reading_commands_stay_near_the_largest_record() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    let mut w = DatasetWriter::create(&ds).unwrap();
    for n in 0..RECORDS {
        w.append(&record(n)).unwrap();
    }
    w.finish().unwrap();
    let record_bytes = 2 * IMAGE as u64;
    let dataset_bytes = u64::from(RECORDS) * record_bytes;

    let out = |name: &str| tmp.path().join(name);
    // Streaming (export, mirror --subset, verify): 64 MiB read ahead, the record being
    // assembled from its frames and the one being written.
    let streamed = (64 << 20) + 2 * record_bytes;
    // mirror --subset also holds the record in the shard writer's open group.
    let rewritten = streamed + record_bytes;
    // hf-parquet also holds the row group being encoded (here one record: a record larger
    // than a row group is one alone) and the page being encoded (the record's Arrow row
    // shares its bytes: 402 MiB measured, 481 MiB when the row copied them).
    let hf_parquet = streamed + 2 * record_bytes;
    let cases: Vec<(&str, Vec<String>, u64)> = vec![
        // Random access (cat, get): the record being handed out; the next is fetched only
        // when the budget allows, and a record larger than it is fetched alone.
        (
            "cat --images",
            vec!["cat".into(), s(&ds).into(), "--images".into()],
            record_bytes,
        ),
        (
            "get",
            vec![
                "get".into(),
                s(&ds).into(),
                "sft/2".into(),
                "--out".into(),
                s(&out("get")).into(),
            ],
            record_bytes,
        ),
        (
            "export (release)",
            vec![
                "export".into(),
                s(&ds).into(),
                "--to".into(),
                s(&out("rel")).into(),
            ],
            streamed,
        ),
        (
            "export --format webdataset",
            vec![
                "export".into(),
                s(&ds).into(),
                "--format".into(),
                "webdataset".into(),
                "--to".into(),
                s(&out("wds")).into(),
            ],
            streamed,
        ),
        (
            "export --format hf-parquet",
            vec![
                "export".into(),
                s(&ds).into(),
                "--format".into(),
                "hf-parquet".into(),
                "--to".into(),
                s(&out("hf")).into(),
            ],
            hf_parquet,
        ),
        (
            "mirror --subset",
            vec![
                "mirror".into(),
                s(&ds).into(),
                s(&out("mirror")).into(),
                "--subset".into(),
                "kind=sft".into(),
            ],
            rewritten,
        ),
        ("verify", vec!["verify".into(), s(&ds).into()], streamed),
    ];
    for (name, args, bound) in cases {
        let mut cmd = editshard_cmd(crate::BIN);
        cmd.args(&args);
        let (o, peak) = run_with_peak_rss(cmd, &out("stdout"));
        assert!(
            o.status.success(),
            "{name}: {}\n--- stdout file\n{}",
            text(&o),
            String::from_utf8_lossy(&fs::read(out("stdout")).unwrap_or_default())
        );
        eprintln!(
            "{name}: peak RSS {} MiB (record {} MiB, dataset {} MiB)",
            peak >> 20,
            record_bytes >> 20,
            dataset_bytes >> 20
        );
        // The process itself (code, runtime, buffers) takes about 20 MiB.
        let bound = bound + (48 << 20);
        assert!(
            peak < bound,
            "{name}: peak RSS {} MiB, over the bound of {} MiB",
            peak >> 20,
            bound >> 20
        );
    }
    assert!(fs::metadata(out("stdout")).is_ok());
}
