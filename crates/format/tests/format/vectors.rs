//! Golden test vectors: tiny shards checked into `crates/format/tests/vectors/`, with a JSON
//! rendering of their content. The shards are regenerated from fixed inputs and compared byte
//! for byte, so the format cannot change silently. A deliberate format change means a new
//! version and new vectors: regenerate with
//! `EDITSHARD_BLESS=1 cargo test -p editshard-format --test format vectors::` and say so in the
//! commit and in spec/FORMAT.md.

use editshard_tools::records;

use std::path::PathBuf;

use bytes::Bytes;
use editshard_format::Record;
use editshard_format::shard::RandomAccessShard;
use editshard_format::shard::ShardReader;
use editshard_format::shard::{ShardSummary, ShardWriter, WriterOptions};

struct Vector {
    name: &'static str,
    records: Vec<Record>,
    compression_level: i32,
    /// The minor format version written: the 1.0 vectors stay as they were when 1.0 was the
    /// only version, written by today's writer asked for 1.0.
    minor: u16,
}

fn vectors() -> Vec<Vector> {
    vec![
        Vector {
            name: "empty",
            records: vec![],
            compression_level: 3,
            minor: 0,
        },
        // Stored (uncompressed) metadata: the one the spec's hex dump walks through.
        Vector {
            name: "sft-one",
            records: vec![records::sft(1, 1)],
            compression_level: 0,
            minor: 0,
        },
        Vector {
            name: "mixed",
            records: records::mixed(),
            compression_level: 3,
            minor: 0,
        },
        // Format 1.1: masks, captions, instruction variants, the new provenance fields, and
        // enough records for a metadata dictionary (a dictionary frame, codec 2).
        Vector {
            name: "editing-1.1",
            records: records::editing_v1_1_set(),
            compression_level: 3,
            minor: 1,
        },
    ]
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn encode(v: &Vector) -> Vec<u8> {
    write(v).0
}

/// The vector's shard, and the writer's summary of it.
fn write(v: &Vector) -> (Vec<u8>, ShardSummary) {
    let options = WriterOptions {
        compression_level: v.compression_level,
        minor_version: v.minor,
        ..Default::default()
    };
    let mut w = ShardWriter::with_options(Vec::new(), options).unwrap();
    for r in &v.records {
        w.append(r).unwrap();
    }
    w.finish().unwrap()
}

/// The JSON rendering: every record's metadata, each image's length and SHA-256, and the
/// image bytes in base64 so another implementation can check them without this crate.
fn render(records: &[Record], minor: u16) -> String {
    use base64::Engine;
    let list: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            let mut v = r.to_json();
            let data: Vec<String> = r
                .images()
                .map(|i| base64::engine::general_purpose::STANDARD.encode(i.data.as_ref().unwrap()))
                .collect();
            v["image_data_base64"] = serde_json::json!(data);
            v
        })
        .collect();
    let doc = serde_json::json!({ "format_version": format!("1.{minor}"), "records": list });
    serde_json::to_string_pretty(&doc).unwrap() + "\n"
}

#[test]
fn golden_vectors_are_byte_identical() {
    let bless = std::env::var_os("EDITSHARD_BLESS").is_some();
    for v in vectors() {
        let bytes = encode(&v);
        let json = render(&v.records, v.minor);
        let shard_path = dir().join(format!("{}.esd", v.name));
        let json_path = dir().join(format!("{}.json", v.name));
        if bless {
            std::fs::create_dir_all(dir()).unwrap();
            std::fs::write(&shard_path, &bytes).unwrap();
            std::fs::write(&json_path, &json).unwrap();
            continue;
        }
        let pinned =
            std::fs::read(&shard_path).unwrap_or_else(|e| panic!("{}: {e}", shard_path.display()));
        if let Some(at) = pinned.iter().zip(&bytes).position(|(a, b)| a != b) {
            panic!(
                "{}: the writer's output differs from the golden vector at byte {at}",
                v.name
            );
        }
        assert_eq!(
            pinned.len(),
            bytes.len(),
            "{}: length differs from the golden vector",
            v.name
        );
        assert_eq!(
            std::fs::read_to_string(&json_path).unwrap(),
            json,
            "{}: JSON rendering differs",
            v.name
        );
    }
}

#[test]
fn golden_vectors_read_back_as_their_json() {
    for v in vectors() {
        let pinned = std::fs::read(dir().join(format!("{}.esd", v.name))).unwrap();
        let json = std::fs::read_to_string(dir().join(format!("{}.json", v.name))).unwrap();
        let streamed: Vec<Record> = ShardReader::new(&pinned[..])
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(render(&streamed, v.minor), json, "{}", v.name);
        let shard = RandomAccessShard::open(Bytes::from(pinned), v.name).unwrap();
        let random: Vec<Record> = (0..shard.len()).map(|i| shard.get(i).unwrap()).collect();
        assert_eq!(random, streamed, "{}", v.name);
    }
}

#[test]
fn the_1_1_vector_has_a_dictionary_and_every_new_field() {
    let pinned = std::fs::read(dir().join("editing-1.1.esd")).unwrap();
    assert_eq!(&pinned[10..12], &[1, 0], "header minor 1");
    let shard = RandomAccessShard::open(Bytes::from(pinned), "editing-1.1").unwrap();
    let index = shard.index();
    assert!(index.dictionary.is_some(), "a dictionary frame");
    let dict_frames = index
        .frames()
        .iter()
        .filter(|f| f.frame_type == 0x03)
        .count();
    assert_eq!(dict_frames, 1);
    let codec2 = index.records().filter(|r| r.meta_codec == 2).count();
    assert!(
        codec2 > index.len() / 2,
        "{codec2} of {} use codec 2",
        index.len()
    );
    let r = shard.get(3).unwrap();
    assert!(r.needs_v1_1());
    assert!(r.turns[0].mask.is_some() && r.source.caption.is_some());
    assert_eq!(r.turns[0].instruction_variants.len(), 2);
    assert_eq!(r.provenance.dataset.as_deref(), Some("osunlp/MagicBrush"));
    assert_eq!(r.provenance.row, Some(3));
}

#[test]
fn the_1_0_vectors_say_1_0_and_a_1_0_writer_refuses_a_1_1_record() {
    for name in ["empty", "sft-one", "mixed"] {
        let pinned = std::fs::read(dir().join(format!("{name}.esd"))).unwrap();
        assert_eq!(&pinned[10..12], &[0, 0], "{name}: header minor 0");
    }
    let options = WriterOptions {
        minor_version: 0,
        ..Default::default()
    };
    let mut w = ShardWriter::with_options(Vec::new(), options).unwrap();
    let err = w.append(&records::editing_v1_1(1)).unwrap_err();
    assert!(
        matches!(err.kind(), editshard_format::ErrorKind::Rejected(_)),
        "{err}"
    );
    assert!(err.to_string().contains("format 1.0"), "{err}");
    assert!(err.to_string().contains("mask"), "{err}");
    // A 1.0 record is still accepted, and the writer refuses a minor it does not know.
    w.append(&records::sft(1, 1)).unwrap();
    let options = WriterOptions {
        minor_version: 2,
        ..Default::default()
    };
    assert!(ShardWriter::with_options(Vec::new(), options).is_err());
}

/// `digests.json` pins each vector's whole-file SHA-256 and CRC-64/NVME, computed outside
/// editshard: the writer's summary, a manifest entry made from it, and the CRC of the file's
/// bytes must all agree with it.
#[test]
fn the_manifest_digests_of_each_vector_are_pinned() {
    let pinned: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir().join("digests.json")).unwrap()).unwrap();
    assert_eq!(
        editshard_format::crc64::crc64nvme(b"123456789"),
        0xAE8B_1486_0A79_9888,
        "CRC-64/NVME's check value"
    );
    for v in vectors() {
        let want = &pinned["vectors"][v.name];
        let (bytes, summary) = write(&v);
        let file = std::fs::read(dir().join(format!("{}.esd", v.name))).unwrap();
        let mut m = editshard_format::Manifest::new(None);
        m.push_shard(format!("{}.esd", v.name), &summary);
        let entry = &m.shards[0];
        assert_eq!(entry.bytes, want["bytes"], "{}", v.name);
        assert_eq!(entry.sha256, want["sha256"], "{}", v.name);
        assert_eq!(
            entry.crc64nvme.as_deref(),
            want["crc64nvme"].as_str(),
            "{}",
            v.name
        );
        let crc = editshard_format::crc64::crc64nvme(&file);
        assert_eq!(crc, summary.crc64nvme, "{}", v.name);
        assert_eq!(
            editshard_format::crc64::crc64nvme(&bytes),
            crc,
            "{}",
            v.name
        );
        assert_eq!(entry.crc64nvme_value(), Some(crc), "{}", v.name);
        // The manifest keeps it through JSON, and a manifest without it stays valid.
        let again = editshard_format::Manifest::parse(&m.to_json().unwrap()).unwrap();
        assert_eq!(again.shards[0].crc64nvme, entry.crc64nvme);
        let mut old = m.clone();
        old.shards[0].crc64nvme = None;
        let json = String::from_utf8(old.to_json().unwrap()).unwrap();
        assert!(!json.contains("crc64nvme"), "{json}");
        assert_eq!(
            editshard_format::Manifest::parse(json.as_bytes())
                .unwrap()
                .shards[0]
                .crc64nvme,
            None
        );
        // A malformed value is refused, naming the shard.
        let mut bad = m.clone();
        bad.shards[0].crc64nvme = Some("not base64!!".into());
        let e = editshard_format::Manifest::parse(&bad.to_json().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("crc64nvme") && e.contains(v.name), "{e}");
    }
}
