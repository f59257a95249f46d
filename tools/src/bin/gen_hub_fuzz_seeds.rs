//! Writes the seeds of the Hub Parquet fuzz targets (`fuzz/seeds/hub_footer`,
//! `fuzz/seeds/hub_row_group`): small files of every shape the converter reads (plain,
//! dictionary, gzip, zstd and Snappy pages, data pages v1 and v2, image structs, lists,
//! MagicBrush sessions). Run from the workspace root:
//! `cargo run -p editshard-tools --bin gen_hub_fuzz_seeds`.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, BinaryArray, Int32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use editshard_tools::hub_parquet::{Col, png, write};
use editshard_tools::parquet_bytes::{self as pq, Chunk, Page, RowGroup, SchemaElement};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::{WriterProperties, WriterVersion};

fn main() {
    let dir = Path::new("fuzz/seeds/hub_row_group");
    std::fs::create_dir_all(dir).unwrap();
    let imgs: Vec<Vec<u8>> = (0..6).map(|k| png(k, 2, 2)).collect();
    let rows = [
        ("a", &imgs[0][..], &imgs[1][..]),
        ("b", &imgs[2][..], &imgs[3][..]),
        ("a", &imgs[4][..], &imgs[5][..]),
    ];
    pq::simple_file(&dir.join("plain.parquet"), &rows, pq::UNCOMPRESSED);
    pq::simple_file(&dir.join("gzip.parquet"), &rows, pq::GZIP);
    pq::simple_file(&dir.join("zstd.parquet"), &rows, pq::ZSTD);
    dictionary(&dir.join("dictionary.parquet"), &imgs[0]);
    list(&dir.join("list.parquet"), &imgs);
    // The Arrow writer: image structs, Snappy, row groups of 2.
    let n = 3;
    let img = |k: usize| Some((imgs[k].clone(), Some(format!("{k}.png"))));
    write(
        &dir.join("ip2p.parquet"),
        vec![
            Col::text(
                "original_prompt",
                (0..n).map(|k| Some(format!("p{k}"))).collect(),
            ),
            Col::image("original_image", (0..n).map(img).collect()),
            Col::text(
                "edit_prompt",
                (0..n).map(|k| Some(format!("e{k}"))).collect(),
            ),
            Col::text("edited_prompt", vec![None, Some("d".into()), None]),
            Col::image("edited_image", (0..n).map(|k| img(k + 3)).collect()),
        ],
        2,
        true,
    );
    write(
        &dir.join("magicbrush.parquet"),
        vec![
            Col::text(
                "img_id",
                vec![Some("9".into()), Some("8".into()), Some("9".into())],
            ),
            Col::i32("turn_index", vec![Some(2), Some(1), Some(1)]),
            Col::image("source_img", vec![img(1), img(2), img(0)]),
            Col::image("mask_img", vec![img(3), None, img(4)]),
            Col::text(
                "instruction",
                vec![Some("x".into()), Some("y".into()), None],
            ),
            Col::image("target_img", vec![img(5), img(3), img(1)]),
        ],
        2,
        true,
    );
    v2(&dir.join("v2-dictionary.parquet"), &imgs);
    // The footer target takes whole files too.
    let footers = Path::new("fuzz/seeds/hub_footer");
    std::fs::create_dir_all(footers).unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, footers.join(p.file_name().unwrap())).unwrap();
    }
}

/// `after` from a one-entry dictionary, its index run over 4 rows.
fn dictionary(path: &Path, value: &[u8]) {
    let ids: Vec<&[u8]> = vec![b"w", b"x", b"y", b"z"];
    let body = pq::plain(&[value]);
    pq::write(
        path,
        &[pq::text("id"), pq::binary("before"), pq::binary("after")],
        &[RowGroup {
            num_rows: 4,
            columns: vec![
                Chunk::new(
                    &["id"],
                    pq::BYTE_ARRAY,
                    pq::UNCOMPRESSED,
                    vec![Page::data(4, pq::PLAIN, pq::plain(&ids))],
                ),
                Chunk::new(
                    &["before"],
                    pq::BYTE_ARRAY,
                    pq::UNCOMPRESSED,
                    vec![Page::data(
                        4,
                        pq::PLAIN,
                        pq::plain(&[value, value, value, value]),
                    )],
                ),
                Chunk::new(
                    &["after"],
                    pq::BYTE_ARRAY,
                    pq::UNCOMPRESSED,
                    vec![
                        Page::dictionary(1, body),
                        Page::data(
                            4,
                            pq::RLE_DICTIONARY,
                            pq::indices(1, &[pq::rle_run(4, 0, 1)]),
                        ),
                    ],
                ),
            ],
        }],
    );
}

/// A `tags` list<int32> column beside the mapped ones: rows [5, 5, 5] and [5].
fn list(path: &Path, imgs: &[Vec<u8>]) {
    let mut body = pq::levels(&[
        pq::rle_run(1, 0, 1),
        pq::rle_run(2, 1, 1),
        pq::rle_run(1, 0, 1),
    ]);
    body.extend(pq::levels(&[pq::rle_run(4, 3, 2)]));
    body.extend(pq::indices(1, &[pq::rle_run(4, 0, 1)]));
    pq::write(
        path,
        &[
            pq::text("id"),
            pq::binary("before"),
            pq::binary("after"),
            SchemaElement::group("tags", pq::OPTIONAL, 1, Some(pq::LIST)),
            SchemaElement::group("list", pq::REPEATED, 1, None),
            SchemaElement::leaf("element", pq::INT32, pq::OPTIONAL, None),
        ],
        &[RowGroup {
            num_rows: 2,
            columns: vec![
                Chunk::new(
                    &["id"],
                    pq::BYTE_ARRAY,
                    pq::UNCOMPRESSED,
                    vec![Page::data(2, pq::PLAIN, pq::plain(&[b"p", b"q"]))],
                ),
                Chunk::new(
                    &["before"],
                    pq::BYTE_ARRAY,
                    pq::UNCOMPRESSED,
                    vec![Page::data(2, pq::PLAIN, pq::plain(&[&imgs[0], &imgs[1]]))],
                ),
                Chunk::new(
                    &["after"],
                    pq::BYTE_ARRAY,
                    pq::UNCOMPRESSED,
                    vec![Page::data(2, pq::PLAIN, pq::plain(&[&imgs[2], &imgs[3]]))],
                ),
                Chunk::new(
                    &["tags", "list", "element"],
                    pq::INT32,
                    pq::UNCOMPRESSED,
                    vec![
                        Page::dictionary(1, 5i32.to_le_bytes().to_vec()),
                        Page::data(4, pq::RLE_DICTIONARY, body),
                    ],
                ),
            ],
        }],
    );
}

/// The Arrow writer's data pages v2, dictionaries and small pages.
fn v2(path: &Path, imgs: &[Vec<u8>]) {
    let n = 6;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("before", DataType::Binary, true),
        Field::new("after", DataType::Binary, true),
        Field::new("n", DataType::Int32, true),
    ]));
    let ids: Vec<Option<String>> = (0..n)
        .map(|k| (k != 2).then(|| format!("v{}", k % 3)))
        .collect();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids)),
        Arc::new(BinaryArray::from(
            (0..n).map(|k| Some(&imgs[k % 2][..])).collect::<Vec<_>>(),
        )),
        Arc::new(BinaryArray::from(
            (0..n)
                .map(|k| Some(&imgs[k % 3 + 2][..]))
                .collect::<Vec<_>>(),
        )),
        Arc::new(Int32Array::from(
            (0..n as i32).map(Some).collect::<Vec<_>>(),
        )),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    let props = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_data_page_row_count_limit(2)
        .set_write_batch_size(2)
        .set_max_row_group_row_count(Some(4))
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .build();
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}
