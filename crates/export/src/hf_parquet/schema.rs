//! The export's Arrow schema and the Hugging Face `datasets` features describing it, built
//! side by side from one description so that the two cannot disagree.
//!
//! `datasets` reads the features from the Parquet key `huggingface`
//! (`{"info": {"features": {...}}}`) and casts the columns to them; an image column is stored
//! as `struct<bytes: binary, path: string>` and declared `{"_type": "Image"}`. Lists are
//! declared in the list form (`[feature]`), which every `datasets` version reads as a list
//! (3.x and 4.x+ alike; 4.x writes `{"_type": "List"}`, which 3.x does not know).
//!
//! | column | type |
//! |---|---|
//! | `id`, `kind` | string |
//! | `source_image` | Image |
//! | `source_info` | [`image_info`]: media type, size, SHA-256, url, path, rotation, caption, scores |
//! | `turns` | list of {instruction, short_instruction, edit_type, category, instruction_variants, output: Image, output_info, rejected: list of Image, rejected_info, mask: Image, mask_info} |
//! | `provenance` | {subset, file, line, licence, dataset, revision, row_group, row} |
//! | `extras` | string: the record's extras as a JSON object, null when it has none |

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema};
use serde_json::{Value, json};

/// An Arrow type and its `datasets` feature.
pub type Feature = (DataType, Value);

fn value(dt: DataType, dtype: &str) -> Feature {
    (dt, json!({"dtype": dtype, "_type": "Value"}))
}

fn string() -> Feature {
    value(DataType::Utf8, "string")
}

fn uint16() -> Feature {
    value(DataType::UInt16, "uint16")
}

fn uint32() -> Feature {
    value(DataType::UInt32, "uint32")
}

fn uint64() -> Feature {
    value(DataType::UInt64, "uint64")
}

fn float32() -> Feature {
    value(DataType::Float32, "float32")
}

/// The `Image` feature's storage: the bytes, and a bare file name or null.
pub fn image() -> Feature {
    let fields = Fields::from(vec![
        Field::new("bytes", DataType::Binary, true),
        Field::new("path", DataType::Utf8, true),
    ]);
    (DataType::Struct(fields), json!({"_type": "Image"}))
}

fn list(item: Feature) -> Feature {
    // `item` is the child name pyarrow and `datasets` give list elements.
    let field = Arc::new(Field::new("item", item.0, true));
    (DataType::List(field), json!([item.1]))
}

fn structure(members: Vec<(&str, Feature)>) -> Feature {
    let mut fields = Vec::with_capacity(members.len());
    let mut features = serde_json::Map::new();
    for (name, (dt, feature)) in members {
        fields.push(Field::new(name, dt, true));
        features.insert(name.to_string(), feature);
    }
    (
        DataType::Struct(Fields::from(fields)),
        Value::Object(features),
    )
}

/// What the record keeps about an image besides its bytes.
pub fn image_info() -> Feature {
    structure(vec![
        ("media_type", string()),
        ("width", uint32()),
        ("height", uint32()),
        ("sha256", string()),
        ("url", string()),
        ("path", string()),
        ("rotation", uint16()),
        ("caption", string()),
        (
            "scores",
            list(structure(vec![("name", string()), ("value", float32())])),
        ),
    ])
}

fn turn() -> Feature {
    structure(vec![
        ("instruction", string()),
        ("short_instruction", string()),
        ("edit_type", string()),
        ("category", string()),
        ("instruction_variants", list(string())),
        ("output", image()),
        ("output_info", image_info()),
        ("rejected", list(image())),
        ("rejected_info", list(image_info())),
        ("mask", image()),
        ("mask_info", image_info()),
    ])
}

fn provenance() -> Feature {
    structure(vec![
        ("subset", string()),
        ("file", string()),
        ("line", uint64()),
        ("licence", string()),
        ("dataset", string()),
        ("revision", string()),
        ("row_group", uint64()),
        ("row", uint64()),
    ])
}

/// One row per record.
pub fn row() -> Feature {
    structure(vec![
        ("id", string()),
        ("kind", string()),
        ("source_image", image()),
        ("source_info", image_info()),
        ("turns", list(turn())),
        ("provenance", provenance()),
        ("extras", string()),
    ])
}

/// The metadata key `datasets` reads its features from.
pub const FEATURES_KEY: &str = "huggingface";

/// The Arrow schema of the files, carrying the features under [`FEATURES_KEY`] (pyarrow
/// takes a file's schema metadata from the Arrow schema the writer embeds, so the key must
/// be there), and that key's value.
pub fn schema() -> (Arc<Schema>, String) {
    let (DataType::Struct(fields), features) = row() else {
        unreachable!("row() is a struct")
    };
    let metadata = json!({"info": {"features": features}}).to_string();
    let schema = Schema::new(fields).with_metadata(
        [(FEATURES_KEY.to_string(), metadata.clone())]
            .into_iter()
            .collect(),
    );
    (Arc::new(schema), metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_name_every_column_in_order() {
        let (schema, metadata) = schema();
        let v: Value = serde_json::from_str(&metadata).unwrap();
        let features = v["info"]["features"].as_object().unwrap();
        let names: Vec<&str> = features.keys().map(String::as_str).collect();
        let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, columns);
        assert_eq!(features["source_image"], json!({"_type": "Image"}));
        assert_eq!(
            features["turns"][0]["rejected"],
            json!([{"_type": "Image"}])
        );
    }
}
