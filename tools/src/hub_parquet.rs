//! Parquet files in the published schemas of the Hub's editing datasets (MagicBrush,
//! InstructPix2Pix, UltraEdit, HQ-Edit, OmniEdit), written with the `parquet` crate for the
//! `convert --preset` tests and benchmark: columns are built one by one ([`Col`]) with the
//! exact Arrow types the real files have, row groups of a chosen size, and the `huggingface`
//! schema metadata where `datasets` writes it.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, ListBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, BinaryArray, Float64Array, Int32Array, Int64Array, NullArray, RecordBatch,
    StringArray, StructArray,
};
use arrow_schema::{DataType, Field, Fields, Schema};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

/// An image cell of the Hub's `Image` struct: bytes and the bare file name.
pub type ImageCell = Option<(Vec<u8>, Option<String>)>;

/// One column: its name, Arrow array, and `datasets` feature (JSON) for the metadata.
pub struct Col {
    pub name: String,
    pub array: ArrayRef,
    pub feature: serde_json::Value,
}

fn value(dtype: &str) -> serde_json::Value {
    serde_json::json!({"dtype": dtype, "_type": "Value"})
}

impl Col {
    pub fn text(name: &str, v: Vec<Option<String>>) -> Col {
        Col {
            name: name.into(),
            array: Arc::new(StringArray::from(v)),
            feature: value("string"),
        }
    }
    pub fn i32(name: &str, v: Vec<Option<i32>>) -> Col {
        Col {
            name: name.into(),
            array: Arc::new(Int32Array::from(v)),
            feature: value("int32"),
        }
    }
    pub fn i64(name: &str, v: Vec<Option<i64>>) -> Col {
        Col {
            name: name.into(),
            array: Arc::new(Int64Array::from(v)),
            feature: value("int64"),
        }
    }
    pub fn f64(name: &str, v: Vec<Option<f64>>) -> Col {
        Col {
            name: name.into(),
            array: Arc::new(Float64Array::from(v)),
            feature: value("float64"),
        }
    }
    /// `dtype: 'null'`: an all-null column of Arrow type `null` (UltraEdit free-form).
    pub fn null(name: &str, rows: usize) -> Col {
        Col {
            name: name.into(),
            array: Arc::new(NullArray::new(rows)),
            feature: value("null"),
        }
    }
    /// Plain binary (HQ-Edit's images, written by pandas).
    pub fn binary(name: &str, v: Vec<Option<Vec<u8>>>) -> Col {
        let refs: Vec<Option<&[u8]>> = v.iter().map(|b| b.as_deref()).collect();
        Col {
            name: name.into(),
            array: Arc::new(BinaryArray::from(refs)),
            feature: value("binary"),
        }
    }
    /// The `Image` feature: `struct<bytes: binary, path: string>`.
    pub fn image(name: &str, v: Vec<ImageCell>) -> Col {
        let mut bytes = BinaryBuilder::new();
        let mut paths = StringBuilder::new();
        let mut valid = Vec::new();
        for cell in &v {
            match cell {
                Some((b, p)) => {
                    bytes.append_value(b);
                    paths.append_option(p.as_deref());
                    valid.push(true);
                }
                None => {
                    bytes.append_null();
                    paths.append_null();
                    valid.push(false);
                }
            }
        }
        let fields = Fields::from(vec![
            Field::new("bytes", DataType::Binary, true),
            Field::new("path", DataType::Utf8, true),
        ]);
        let array = StructArray::new(
            fields,
            vec![Arc::new(bytes.finish()), Arc::new(paths.finish())],
            Some(valid.into()),
        );
        Col {
            name: name.into(),
            array: Arc::new(array),
            feature: serde_json::json!({"_type": "Image"}),
        }
    }
    /// `sequence: string` (`list<string>`).
    pub fn text_list(name: &str, v: Vec<Option<Vec<String>>>) -> Col {
        let mut b = ListBuilder::new(StringBuilder::new());
        for cell in v {
            match cell {
                Some(items) => {
                    for i in items {
                        b.values().append_value(i);
                    }
                    b.append(true);
                }
                None => b.append(false),
            }
        }
        Col {
            name: name.into(),
            array: Arc::new(b.finish()),
            feature: serde_json::json!({"feature": value("string"), "_type": "Sequence"}),
        }
    }
}

/// Writes `cols` to `path` with `rows_per_group` rows per row group; with `hf_metadata`, the
/// `huggingface` key `datasets` writes (`{"info": {"features": ...}}`). Images are stored
/// uncompressed, the rest with Snappy, as the Hub's files are.
pub fn write(path: &Path, cols: Vec<Col>, rows_per_group: usize, hf_metadata: bool) {
    let mut features = serde_json::Map::new();
    let mut fields = Vec::new();
    let mut arrays = Vec::new();
    for c in cols {
        fields.push(Field::new(&c.name, c.array.data_type().clone(), true));
        features.insert(c.name.clone(), c.feature);
        arrays.push(c.array);
    }
    let mut schema = Schema::new(fields);
    if hf_metadata {
        let meta = serde_json::json!({"info": {"features": features}}).to_string();
        schema = schema.with_metadata([("huggingface".to_string(), meta)].into());
    }
    let schema = Arc::new(schema);
    let batch = RecordBatch::try_new(schema.clone(), arrays).expect("columns of equal length");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows_per_group.max(1)))
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("fixture dir");
    }
    let mut w = ArrowWriter::try_new(
        File::create(path).expect("fixture file"),
        schema,
        Some(props),
    )
    .expect("parquet writer");
    w.write(&batch).expect("write rows");
    w.close().expect("close parquet");
}

/// Overwrites the first bytes of the column chunk `column` of row group `rg` with garbage,
/// so that row group cannot be read (its page header is not Thrift any more); returns the
/// number of rows in that row group.
pub fn corrupt_row_group(path: &Path, rg: usize, column: usize) -> u64 {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use std::os::unix::fs::FileExt;
    let reader = SerializedFileReader::new(File::open(path).unwrap()).unwrap();
    let g = reader.metadata().row_group(rg);
    let c = g.column(column);
    let start = c.dictionary_page_offset().unwrap_or(c.data_page_offset()) as u64;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&[0xff; 24], start).unwrap();
    g.num_rows() as u64
}

/// A small distinct PNG (`w` x `h`, colour from `seed`).
pub fn png(seed: u32, w: u32, h: u32) -> Vec<u8> {
    let mut img = image::RgbImage::new(w, h);
    for (x, y, p) in img.enumerate_pixels_mut() {
        let s = seed.wrapping_mul(2_654_435_761);
        *p = image::Rgb([
            (s >> 8) as u8 ^ x as u8,
            (s >> 16) as u8 ^ y as u8,
            (s >> 24) as u8,
        ]);
    }
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// A small distinct JPEG.
pub fn jpeg(seed: u32, w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (seed as u8).wrapping_add(x as u8),
            (seed >> 8) as u8 ^ y as u8,
            90,
        ])
    });
    let mut out = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut out),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    out
}
