//! The mapping's columns checked against a file's schema, before any row is read: every
//! column the mapping names is there (unless `optional`), and holds what its field needs.
//! A column of the wrong type is named with its type once, for the file, instead of failing
//! every row.

use arrow_schema::{DataType, Field, Schema};
use serde_json::{Map, Value};

use crate::cell;
use crate::mapping::Mapping;

/// What a mapped column holds for its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holds {
    Image,
    /// An id or a session key: a string, an integer or a boolean.
    Key,
    /// A turn order: a number.
    Number,
    Text,
    /// A list of strings.
    TextList,
}

impl Holds {
    fn accepts(self, t: &DataType) -> bool {
        match self {
            Holds::Image => cell::is_image_type(t),
            Holds::Key => is_text(t) || t.is_integer() || t == &DataType::Boolean,
            Holds::Number => t.is_numeric() || t == &DataType::Boolean,
            Holds::Text => is_text(t),
            Holds::TextList => match t {
                DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) => {
                    is_text(f.data_type())
                }
                _ => false,
            },
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Holds::Image => "images (the Hub's Image struct, or binary)",
            Holds::Key => "strings or integers",
            Holds::Number => "numbers",
            Holds::Text => "strings",
            Holds::TextList => "lists of strings",
        }
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Each mapped column, what it is for, and what it must hold.
fn roles(m: &Mapping) -> Vec<(&str, &'static str, Holds)> {
    let mut out = vec![
        (m.source.as_str(), "the source image", Holds::Image),
        (m.output.as_str(), "the output image", Holds::Image),
    ];
    fn opt<'a>(
        c: &'a Option<String>,
        what: &'static str,
        holds: Holds,
    ) -> Option<(&'a str, &'static str, Holds)> {
        c.as_deref().map(|c| (c, what, holds))
    }
    out.extend(
        [
            opt(&m.mask, "the mask", Holds::Image),
            opt(&m.id, "the id", Holds::Key),
            opt(&m.instruction, "the instruction", Holds::Text),
            opt(
                &m.instruction_variants,
                "the instruction variants",
                Holds::TextList,
            ),
            opt(&m.source_caption, "the source caption", Holds::Text),
            opt(&m.output_caption, "the output caption", Holds::Text),
            opt(&m.edit_type, "the edit type", Holds::Text),
        ]
        .into_iter()
        .flatten(),
    );
    out.extend(
        m.scores
            .iter()
            .map(|s| (s.as_str(), "a score", Holds::Number)),
    );
    if let Some(s) = &m.session {
        out.push((s.key.as_str(), "the session key", Holds::Key));
        out.push((s.turn.as_str(), "the turn order", Holds::Number));
    }
    out
}

/// Checks `schema` (with the file's `datasets` features `hf`, if any) against `mapping`.
pub fn check(
    schema: &Schema,
    hf: Option<&Map<String, Value>>,
    mapping: &Mapping,
) -> Result<(), String> {
    let present = |c: &str| -> Option<&Field> {
        schema
            .field_with_name(c)
            .ok()
            .filter(|f| f.data_type() != &DataType::Null)
    };
    let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    for c in mapping.columns() {
        if present(c).is_none() && !mapping.is_optional(c) {
            if schema.field_with_name(c).is_ok() {
                // Arrow's `null` type: a column every row of which is null (what pyarrow
                // writes for a column of Nones), which is as good as absent.
                return Err(format!(
                    "the {} mapping needs column {c:?}, which holds only nulls in this file \
                     (Arrow type null): fill it, or list the column under `optional`",
                    mapping.name
                ));
            }
            return Err(format!(
                "the {} mapping needs column {c:?}, which the file does not have (its \
                 columns: {}); check the preset or the mapping file, or list the column under \
                 `optional`",
                mapping.name,
                columns.join(", ")
            ));
        }
    }
    for (c, what, holds) in roles(mapping) {
        let Some(field) = present(c) else { continue };
        let declared = hf
            .and_then(|h| h.get(c))
            .and_then(|f| f.get("_type"))
            .and_then(|t| t.as_str());
        let wrong_feature = holds == Holds::Image && declared.is_some_and(|t| t != "Image");
        if !holds.accepts(field.data_type()) || wrong_feature {
            let feature = match declared {
                Some(t) => format!(", Hugging Face feature {t}"),
                None if holds == Holds::Image => ", no Hugging Face feature".to_string(),
                None => String::new(),
            };
            return Err(format!(
                "column {c:?} ({what}) is {}{feature}, which does not hold {}: check the \
                 mapping",
                field.data_type(),
                holds.expected()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_list_id_is_named_with_its_type() {
        let m = Mapping::parse(
            "name = \"x\"\nid = \"tags\"\nsource = \"a\"\noutput = \"b\"\n",
            "test",
        )
        .unwrap();
        let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        let schema = Schema::new(vec![
            Field::new("tags", list, true),
            Field::new("a", DataType::Binary, true),
            Field::new("b", DataType::Binary, true),
        ]);
        let e = check(&schema, None, &m).unwrap_err();
        assert!(
            e.contains("\"tags\" (the id) is List(") && e.contains("Utf8"),
            "{e}"
        );
        let ok = Schema::new(vec![
            Field::new("tags", DataType::Int64, true),
            Field::new("a", DataType::Binary, true),
            Field::new("b", DataType::Binary, true),
        ]);
        check(&ok, None, &m).unwrap();
    }

    #[test]
    fn a_needed_column_of_nulls_is_not_called_missing() {
        let m = Mapping::parse(
            "name = \"x\"\nid = \"k\"\nsource = \"a\"\noutput = \"b\"\n",
            "test",
        )
        .unwrap();
        let schema = Schema::new(vec![
            Field::new("k", DataType::Null, true),
            Field::new("a", DataType::Binary, true),
            Field::new("b", DataType::Binary, true),
        ]);
        let e = check(&schema, None, &m).unwrap_err();
        assert!(e.contains("\"k\", which holds only nulls"), "{e}");
        assert!(!e.contains("does not have"), "{e}");
    }
}
