//! The Thrift types the `parquet` crate (59) decodes a footer with, and a walk that holds a
//! footer to them.
//!
//! The crate reads a field by its id alone: field 4 of a FileMetaData is read as a list of
//! row groups whatever type code the field carries. The bounded walk of [`crate::footer`]
//! reads a field by its type code. Where the two disagree (an id the crate knows, carrying
//! another type) they read different bytes, and the crate may then take a count the walk
//! never saw: a footer of 300 bytes once asked it for 19.5 GB. [`walk`] refuses any field
//! whose type code is not the one the crate reads it as, and any list whose element type is
//! not; after it passes, both read the same values from the same bytes, so every count the
//! crate allocates for is one the bounded walk held to the bytes left.
//!
//! Fields the crate does not know it skips by their type code, as the walk does. Unions are
//! walked as structs: the crate stops with an error at a second member, which is harmless.

use crate::thrift::{self, Compact};

/// How the crate reads a field's value.
#[derive(Clone, Copy)]
pub enum Ty {
    Bool,
    /// One byte (`i8`).
    Byte,
    I16,
    /// Also every enum.
    I32,
    I64,
    Double,
    /// Also strings.
    Binary,
    Struct(&'static Shape),
    List(&'static Ty),
}

/// A struct (or union) and the fields the crate reads by id, with their names in
/// parquet.thrift.
pub struct Shape {
    pub name: &'static str,
    /// What the crate keeps for one element of a list of these (bytes, at least its
    /// `size_of`): it reserves a list's whole count before reading any element. 0 for a
    /// shape never in a list.
    pub size: u64,
    pub fields: &'static [(i16, &'static str, Ty)],
}

impl Ty {
    /// The compact protocol's type code for a field of this type (booleans: either code).
    fn accepts(self, code: u8) -> bool {
        match self {
            Ty::Bool => code == thrift::BOOL_TRUE || code == thrift::BOOL_FALSE,
            _ => code == self.code(),
        }
    }

    /// The compact protocol's code for this type (a boolean: 1; as a field, 2 too).
    fn code(self) -> u8 {
        match self {
            Ty::Bool => thrift::BOOL_TRUE,
            Ty::Byte => thrift::BYTE,
            Ty::I16 => thrift::I16,
            Ty::I32 => thrift::I32,
            Ty::I64 => thrift::I64,
            Ty::Double => thrift::DOUBLE,
            Ty::Binary => thrift::BINARY,
            Ty::Struct(_) => thrift::STRUCT,
            Ty::List(_) => thrift::LIST,
        }
    }

    /// What the crate keeps for one list element of this type.
    fn size(self) -> u64 {
        match self {
            Ty::Bool | Ty::Byte => 1,
            Ty::I16 => 2,
            Ty::I32 => 4,
            Ty::I64 | Ty::Double => 8,
            Ty::Binary | Ty::List(_) => 24,
            Ty::Struct(s) => s.size,
        }
    }

    fn name(self) -> String {
        match self {
            Ty::Bool => "bool".into(),
            Ty::Byte => "i8".into(),
            Ty::I16 => "i16".into(),
            Ty::I32 => "i32".into(),
            Ty::I64 => "i64".into(),
            Ty::Double => "double".into(),
            Ty::Binary => "binary".into(),
            Ty::Struct(s) => s.name.into(),
            Ty::List(e) => format!("list<{}>", e.name()),
        }
    }
}

/// Walks a struct of shape `shape` at the reader's position, refusing any field or list
/// element whose type code is not the one the crate reads it as, and a field the struct
/// holds twice (the crate would decode both). Returns what the crate reserves for the
/// lists in it: each list's count times its element's size.
pub fn walk(r: &mut Compact, shape: &Shape) -> thrift::Result<u64> {
    let mut reserved = 0u64;
    // Known ids seen, a bit each (every known id is below 64: the largest is 18).
    let mut seen = 0u64;
    r.read_struct(|r, id, code| {
        let Some(&(_, field, ty)) = shape.fields.iter().find(|(f, _, _)| *f == id) else {
            return r.skip(code);
        };
        let at = format!("{}.{field} (field {id})", shape.name);
        let bit = 1u64 << (id as u32 % 64);
        if seen & bit != 0 {
            return Err(format!("{at} appears twice"));
        }
        seen |= bit;
        if !ty.accepts(code) {
            return Err(format!(
                "{at} has Thrift type {code}; the format reads it as {} (type {})",
                ty.name(),
                ty.code()
            ));
        }
        let bytes = value(r, ty).map_err(|e| format!("{at}: {e}"))?;
        reserved = reserved.saturating_add(bytes);
        Ok(())
    })?;
    Ok(reserved)
}

/// A value of type `ty`. Returns what the crate reserves for the lists in it.
fn value(r: &mut Compact, ty: Ty) -> thrift::Result<u64> {
    match ty {
        // A boolean field's value is its type code. (No list holds booleans: the crate
        // and the protocol disagree on their size, see `thrift`.)
        Ty::Bool => Ok(0),
        Ty::Struct(shape) => walk(r, shape),
        Ty::List(elem) => {
            let (code, count) = r.list()?;
            // An empty list may carry any element type (some writers put 0 there).
            if count > 0 && code != elem.code() {
                return Err(format!(
                    "a list of Thrift type {code} where the format has a list<{}>",
                    elem.name()
                ));
            }
            let mut reserved = count.saturating_mul(elem.size());
            r.enter()?;
            for _ in 0..count {
                reserved = reserved.saturating_add(value(r, *elem)?);
            }
            r.leave();
            Ok(reserved)
        }
        other => r.skip(other.code()).map(|()| 0),
    }
}

const EMPTY: Shape = Shape {
    name: "an empty struct",
    size: 0,
    fields: &[],
};

// The shapes below follow parquet 59's readers: `thrift_struct!` and `thrift_union!` in
// basic.rs, file/metadata/mod.rs and file/metadata/thrift/mod.rs, and the hand-written
// `read_row_group`, `read_column_chunk`, `read_column_metadata` and `ColumnOrder` there.
// With the `encryption` feature off, the crate skips FileMetaData's fields 8 and 9 and
// ColumnChunk's 8 and 9 by their type code; `crate::footer` refuses them anyway.

const TIME_UNIT: Shape = Shape {
    name: "TimeUnit",
    size: 0,
    fields: &[
        (1, "MILLIS", Ty::Struct(&EMPTY)),
        (2, "MICROS", Ty::Struct(&EMPTY)),
        (3, "NANOS", Ty::Struct(&EMPTY)),
    ],
};

const DECIMAL_TYPE: Shape = Shape {
    name: "DecimalType",
    size: 0,
    fields: &[(1, "scale", Ty::I32), (2, "precision", Ty::I32)],
};

/// TimeType and TimestampType (the crate reads both as one).
const TIMESTAMP_TYPE: Shape = Shape {
    name: "TimestampType",
    size: 0,
    fields: &[
        (1, "isAdjustedToUTC", Ty::Bool),
        (2, "unit", Ty::Struct(&TIME_UNIT)),
    ],
};

const INT_TYPE: Shape = Shape {
    name: "IntType",
    size: 0,
    fields: &[(1, "bitWidth", Ty::Byte), (2, "isSigned", Ty::Bool)],
};

const VARIANT_TYPE: Shape = Shape {
    name: "VariantType",
    size: 0,
    fields: &[(1, "specification_version", Ty::Byte)],
};

const GEOMETRY_TYPE: Shape = Shape {
    name: "GeometryType",
    size: 0,
    fields: &[(1, "crs", Ty::Binary)],
};

const GEOGRAPHY_TYPE: Shape = Shape {
    name: "GeographyType",
    size: 0,
    fields: &[(1, "crs", Ty::Binary), (2, "algorithm", Ty::I32)],
};

const LOGICAL_TYPE: Shape = Shape {
    name: "LogicalType",
    size: 0,
    fields: &[
        (1, "STRING", Ty::Struct(&EMPTY)),
        (2, "MAP", Ty::Struct(&EMPTY)),
        (3, "LIST", Ty::Struct(&EMPTY)),
        (4, "ENUM", Ty::Struct(&EMPTY)),
        (5, "DECIMAL", Ty::Struct(&DECIMAL_TYPE)),
        (6, "DATE", Ty::Struct(&EMPTY)),
        (7, "TIME", Ty::Struct(&TIMESTAMP_TYPE)),
        (8, "TIMESTAMP", Ty::Struct(&TIMESTAMP_TYPE)),
        (10, "INTEGER", Ty::Struct(&INT_TYPE)),
        (11, "UNKNOWN", Ty::Struct(&EMPTY)),
        (12, "JSON", Ty::Struct(&EMPTY)),
        (13, "BSON", Ty::Struct(&EMPTY)),
        (14, "UUID", Ty::Struct(&EMPTY)),
        (15, "FLOAT16", Ty::Struct(&EMPTY)),
        (16, "VARIANT", Ty::Struct(&VARIANT_TYPE)),
        (17, "GEOMETRY", Ty::Struct(&GEOMETRY_TYPE)),
        (18, "GEOGRAPHY", Ty::Struct(&GEOGRAPHY_TYPE)),
    ],
};

const SCHEMA_ELEMENT: Shape = Shape {
    name: "SchemaElement",
    size: 160,
    fields: &[
        (1, "type", Ty::I32),
        (2, "type_length", Ty::I32),
        (3, "repetition_type", Ty::I32),
        (4, "name", Ty::Binary),
        (5, "num_children", Ty::I32),
        (6, "converted_type", Ty::I32),
        (7, "scale", Ty::I32),
        (8, "precision", Ty::I32),
        (9, "field_id", Ty::I32),
        (10, "logicalType", Ty::Struct(&LOGICAL_TYPE)),
    ],
};

const STATISTICS: Shape = Shape {
    name: "Statistics",
    size: 0,
    fields: &[
        (1, "max", Ty::Binary),
        (2, "min", Ty::Binary),
        (3, "null_count", Ty::I64),
        (4, "distinct_count", Ty::I64),
        (5, "max_value", Ty::Binary),
        (6, "min_value", Ty::Binary),
        (7, "is_max_value_exact", Ty::Bool),
        (8, "is_min_value_exact", Ty::Bool),
    ],
};

const PAGE_ENCODING_STATS: Shape = Shape {
    name: "PageEncodingStats",
    size: 16,
    fields: &[
        (1, "page_type", Ty::I32),
        (2, "encoding", Ty::I32),
        (3, "count", Ty::I32),
    ],
};

const SIZE_STATISTICS: Shape = Shape {
    name: "SizeStatistics",
    size: 0,
    fields: &[
        (1, "unencoded_byte_array_data_bytes", Ty::I64),
        (2, "repetition_level_histogram", Ty::List(&Ty::I64)),
        (3, "definition_level_histogram", Ty::List(&Ty::I64)),
    ],
};

const BOUNDING_BOX: Shape = Shape {
    name: "BoundingBox",
    size: 0,
    fields: &[
        (1, "xmin", Ty::Double),
        (2, "xmax", Ty::Double),
        (3, "ymin", Ty::Double),
        (4, "ymax", Ty::Double),
        (5, "zmin", Ty::Double),
        (6, "zmax", Ty::Double),
        (7, "mmin", Ty::Double),
        (8, "mmax", Ty::Double),
    ],
};

const GEOSPATIAL_STATISTICS: Shape = Shape {
    name: "GeospatialStatistics",
    size: 0,
    fields: &[
        (1, "bbox", Ty::Struct(&BOUNDING_BOX)),
        (2, "geospatial_types", Ty::List(&Ty::I32)),
    ],
};

const KEY_VALUE: Shape = Shape {
    name: "KeyValue",
    size: 64,
    fields: &[(1, "key", Ty::Binary), (2, "value", Ty::Binary)],
};

const COLUMN_META_DATA: Shape = Shape {
    name: "ColumnMetaData",
    size: 0,
    fields: &[
        (1, "type", Ty::I32),
        (2, "encodings", Ty::List(&Ty::I32)),
        (3, "path_in_schema", Ty::List(&Ty::Binary)),
        (4, "codec", Ty::I32),
        (5, "num_values", Ty::I64),
        (6, "total_uncompressed_size", Ty::I64),
        (7, "total_compressed_size", Ty::I64),
        (8, "key_value_metadata", Ty::List(&Ty::Struct(&KEY_VALUE))),
        (9, "data_page_offset", Ty::I64),
        (10, "index_page_offset", Ty::I64),
        (11, "dictionary_page_offset", Ty::I64),
        (12, "statistics", Ty::Struct(&STATISTICS)),
        (
            13,
            "encoding_stats",
            Ty::List(&Ty::Struct(&PAGE_ENCODING_STATS)),
        ),
        (14, "bloom_filter_offset", Ty::I64),
        (15, "bloom_filter_length", Ty::I32),
        (16, "size_statistics", Ty::Struct(&SIZE_STATISTICS)),
        (
            17,
            "geospatial_statistics",
            Ty::Struct(&GEOSPATIAL_STATISTICS),
        ),
    ],
};

const COLUMN_CHUNK: Shape = Shape {
    name: "ColumnChunk",
    size: 512,
    fields: &[
        (1, "file_path", Ty::Binary),
        (2, "file_offset", Ty::I64),
        (3, "meta_data", Ty::Struct(&COLUMN_META_DATA)),
        (4, "offset_index_offset", Ty::I64),
        (5, "offset_index_length", Ty::I32),
        (6, "column_index_offset", Ty::I64),
        (7, "column_index_length", Ty::I32),
    ],
};

const SORTING_COLUMN: Shape = Shape {
    name: "SortingColumn",
    size: 16,
    fields: &[
        (1, "column_idx", Ty::I32),
        (2, "descending", Ty::Bool),
        (3, "nulls_first", Ty::Bool),
    ],
};

const ROW_GROUP: Shape = Shape {
    name: "RowGroup",
    size: 128,
    fields: &[
        (1, "columns", Ty::List(&Ty::Struct(&COLUMN_CHUNK))),
        (2, "total_byte_size", Ty::I64),
        (3, "num_rows", Ty::I64),
        (4, "sorting_columns", Ty::List(&Ty::Struct(&SORTING_COLUMN))),
        (5, "file_offset", Ty::I64),
        (6, "total_compressed_size", Ty::I64),
        (7, "ordinal", Ty::I16),
    ],
};

const COLUMN_ORDER: Shape = Shape {
    name: "ColumnOrder",
    size: 8,
    fields: &[(1, "TYPE_ORDER", Ty::Struct(&EMPTY))],
};

/// A footer's FileMetaData.
pub const FILE_META_DATA: Shape = Shape {
    name: "FileMetaData",
    size: 0,
    fields: &[
        (1, "version", Ty::I32),
        (2, "schema", Ty::List(&Ty::Struct(&SCHEMA_ELEMENT))),
        (3, "num_rows", Ty::I64),
        (4, "row_groups", Ty::List(&Ty::Struct(&ROW_GROUP))),
        (5, "key_value_metadata", Ty::List(&Ty::Struct(&KEY_VALUE))),
        (6, "created_by", Ty::Binary),
        (7, "column_orders", Ty::List(&Ty::Struct(&COLUMN_ORDER))),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    fn walk_bytes(bytes: &[u8]) -> thrift::Result<u64> {
        walk(&mut Compact::new(bytes), &FILE_META_DATA)
    }

    #[test]
    fn a_known_field_of_another_type_is_refused() {
        // Field 4 (row groups) as an i64: the crate would read its varint as a list header.
        let e = walk_bytes(&[0x46, 0xfc, 0x01, 0x00]).unwrap_err();
        assert!(
            e.contains("FileMetaData.row_groups (field 4) has Thrift type 6"),
            "{e}"
        );
        // The same field as a list of structs, empty: accepted.
        walk_bytes(&[0x49, 0x0c, 0x00]).unwrap();
        // An unknown field of any type is skipped, as the crate skips it: field 15, an i64.
        walk_bytes(&[0xf6, 0x02, 0x00]).unwrap();
    }

    #[test]
    fn a_list_of_another_element_type_is_refused() {
        // Field 2 (schema) as a list of one i32.
        let e = walk_bytes(&[0x29, 0x15, 0x02, 0x00]).unwrap_err();
        assert!(e.contains("list<SchemaElement>"), "{e}");
        // An empty list whose element type is 0 (some writers): accepted.
        walk_bytes(&[0x29, 0x00, 0x00]).unwrap();
    }

    #[test]
    fn a_field_given_twice_is_refused() {
        // Two empty schema lists (the second with its id in full: a delta of 0).
        let e = walk_bytes(&[0x29, 0x0c, 0x09, 0x04, 0x0c, 0x00]).unwrap_err();
        assert!(
            e.contains("FileMetaData.schema (field 2) appears twice"),
            "{e}"
        );
    }

    #[test]
    fn what_the_crate_reserves_for_lists_is_counted() {
        // Row groups: a list of 2 empty structs, then key-value metadata: 3 empty structs.
        let bytes = [0x49, 0x2c, 0x00, 0x00, 0x19, 0x3c, 0x00, 0x00, 0x00, 0x00];
        assert_eq!(
            walk_bytes(&bytes).unwrap(),
            2 * ROW_GROUP.size + 3 * KEY_VALUE.size
        );
    }

    /// The sizes counted are at least what the crate's types take (those it makes public).
    #[test]
    fn list_element_sizes_cover_the_crates_types() {
        use parquet::file::metadata::{
            ColumnChunkMetaData, KeyValue, PageEncodingStats, RowGroupMetaData, SortingColumn,
        };
        use std::mem::size_of;
        for (shape, bytes) in [
            (&ROW_GROUP, size_of::<RowGroupMetaData>()),
            (&COLUMN_CHUNK, size_of::<ColumnChunkMetaData>()),
            (&KEY_VALUE, size_of::<KeyValue>()),
            (&SORTING_COLUMN, size_of::<SortingColumn>()),
            (&PAGE_ENCODING_STATS, size_of::<PageEncodingStats>()),
            (&COLUMN_ORDER, size_of::<parquet::basic::ColumnOrder>()),
            // Its elements become these; SchemaElement itself is private to the crate.
            (&SCHEMA_ELEMENT, size_of::<parquet::schema::types::Type>()),
        ] {
            assert!(shape.size >= bytes as u64, "{}: {bytes} bytes", shape.name);
        }
    }

    #[test]
    fn nested_types_are_checked_too() {
        // A schema element whose logical type (field 10) is an integer type whose bit
        // width (an i8) comes as an i32.
        let bytes = [
            0x29, 0x1c, // field 2: list of 1 struct
            0xac, // SchemaElement field 10: struct (LogicalType)
            0xac, // LogicalType field 10: struct (IntType)
            0x15, 0x10, // IntType field 1 as an i32
            0x00, 0x00, 0x00, 0x00,
        ];
        let e = walk_bytes(&bytes).unwrap_err();
        assert!(
            e.contains("IntType.bitWidth (field 1) has Thrift type 5"),
            "{e}"
        );
    }
}
