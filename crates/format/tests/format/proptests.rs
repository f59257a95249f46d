//! Property: any record (any strings, any number of turns, rejected images and masks, any
//! scores, captions, instruction variants and extras, images shared or not) written by
//! `ShardWriter` reads back equal through the sync reader, the async decoder and the
//! random-access reader, with and without compression.

use bytes::Bytes;
use editshard_format::record::{Image, Kind, Provenance, Record, Score, Turn};
use editshard_format::shard::RandomAccessShard;
use editshard_format::shard::ShardDecoder;
use editshard_format::shard::ShardReader;
use editshard_format::shard::{ShardWriter, WriterOptions};
use futures_util::StreamExt;
use proptest::prelude::*;
use tokio_util::codec::FramedRead;

/// Images come from a small pool so that records share some of them.
fn image(pool: &[Bytes]) -> impl Strategy<Value = Image> + '_ {
    (
        0..pool.len(),
        "[a-z]{1,8}/[a-z0-9.+-]{1,12}",
        1u32..70_000,
        1u32..70_000,
        proptest::option::of(".{0,40}"),
        proptest::option::of("[ -~]{0,40}"),
        proptest::option::of(any::<u16>()),
        proptest::collection::vec(("[a-z_]{1,20}", -1.0e6f32..1.0e6), 0..6),
        proptest::option::of(".{0,60}"),
    )
        .prop_map(
            move |(k, media, w, h, url, path, rotation, scores, caption)| {
                let mut img = Image::with_info(pool[k].clone(), media, w, h);
                img.url = url;
                img.path = path;
                img.rotation = rotation;
                img.scores = scores
                    .into_iter()
                    .map(|(name, value)| Score { name, value })
                    .collect();
                img.caption = caption;
                img
            },
        )
}

fn turn(pool: &[Bytes]) -> impl Strategy<Value = Turn> + '_ {
    (
        proptest::option::of(".{0,200}"),
        proptest::option::of(".{0,60}"),
        proptest::option::of(".{0,60}"),
        proptest::option::of(".{0,30}"),
        image(pool),
        proptest::collection::vec(image(pool), 0..3),
        proptest::option::of(image(pool)),
        proptest::collection::vec(".{0,40}", 0..3),
    )
        .prop_map(
            |(
                instruction,
                short_instruction,
                edit_type,
                category,
                output,
                rejected,
                mask,
                instruction_variants,
            )| Turn {
                instruction,
                short_instruction,
                edit_type,
                category,
                output,
                rejected,
                mask,
                instruction_variants,
            },
        )
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn record(pool: &[Bytes]) -> impl Strategy<Value = Record> + '_ {
    (
        (0u8..4).prop_map(|k| Kind::from_code(k).unwrap()),
        image(pool),
        proptest::collection::vec(turn(pool), 0..4),
        proptest::option::of("[a-z-]{1,12}"),
        proptest::option::of(any::<u64>()),
        proptest::collection::btree_map("[a-z_]{1,10}", json_value(), 0..4),
        proptest::option::of((any::<u64>(), any::<u64>())),
    )
        .prop_map(|(kind, source, turns, subset, line, extras, rows)| {
            let mut r = Record::new(String::new(), kind, source, turns);
            r.provenance = Provenance {
                subset: subset.clone(),
                file: subset.clone(),
                line,
                licence: None,
                dataset: subset.clone().map(|s| format!("org/{s}")),
                revision: subset,
                row_group: rows.map(|(g, _)| g),
                row: rows.map(|(_, r)| r),
            };
            r.extras = extras.into_iter().collect();
            r
        })
}

fn pool() -> Vec<Bytes> {
    (0..6u8)
        .map(|i| Bytes::from(vec![i; 1 + i as usize * 37]))
        .collect()
}

fn round_trip(records: Vec<Record>, level: i32) -> Result<(), TestCaseError> {
    let options = WriterOptions {
        compression_level: level,
        max_group_records: 3,
        ..Default::default()
    };
    let mut w = ShardWriter::with_options(Vec::new(), options).unwrap();
    for r in &records {
        w.append(r).unwrap();
    }
    let bytes = w.finish().unwrap().0;

    let streamed: Vec<Record> = ShardReader::new(&bytes[..])
        .collect::<Result<_, _>>()
        .unwrap();
    prop_assert_eq!(&streamed, &records);

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let decoded: Vec<Record> = rt.block_on(async {
        FramedRead::new(&bytes[..], ShardDecoder::new())
            .map(|r| r.unwrap())
            .collect()
            .await
    });
    prop_assert_eq!(&decoded, &records);

    let shard = RandomAccessShard::open(Bytes::from(bytes), "p.esd").unwrap();
    for (i, want) in records.iter().enumerate() {
        prop_assert_eq!(&shard.get(i).unwrap(), want);
        prop_assert_eq!(&shard.get_by_id(&want.id).unwrap().unwrap(), want);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn records_survive_every_reader(
        records in proptest::collection::vec(record(Box::leak(Box::new(pool()))), 0..8),
        compress in any::<bool>(),
    ) {
        let records: Vec<Record> = records
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| { r.id = format!("id/{i}/ü"); r })
            .collect();
        round_trip(records, if compress { 3 } else { 0 })?;
    }
}
