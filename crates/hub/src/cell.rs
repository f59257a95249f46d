//! One value of a Parquet row, read out of an Arrow array: what the mapping and the record
//! builder work with, whatever Arrow type the file used for it.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, OffsetSizeTrait};
use arrow_schema::DataType;
use bytes::Bytes;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    /// A plain binary value (HQ-Edit stores its images so).
    Bytes(Bytes),
    /// The Hub's `Image` struct: `bytes` and `path` (a bare file name, not a location).
    Image {
        bytes: Option<Bytes>,
        path: Option<String>,
    },
    List(Vec<Cell>),
    /// Any other struct, field by field.
    Struct(Vec<(String, Cell)>),
}

/// Whether a column of this type holds images the Hub way: a struct of `bytes` (binary) and
/// `path` (string), or plain binary.
pub fn is_image_type(t: &DataType) -> bool {
    is_image_struct(t) || is_binary(t)
}

pub fn is_binary(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    )
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The `Image` feature's storage: `struct<bytes: binary, path: string>` (either field may be
/// missing, as `datasets` accepts).
pub fn is_image_struct(t: &DataType) -> bool {
    let DataType::Struct(fields) = t else {
        return false;
    };
    let ok = fields.iter().all(|f| match f.name().as_str() {
        "bytes" => is_binary(f.data_type()),
        "path" => is_string(f.data_type()),
        _ => false,
    });
    ok && fields.iter().any(|f| f.name() == "bytes")
}

/// The value at `row` of `array`; `Err` names a type this reader does not know.
pub fn read(array: &dyn Array, row: usize) -> Result<Cell, String> {
    if array.is_null(row) {
        return Ok(Cell::Null);
    }
    let t = array.data_type();
    macro_rules! int {
        ($ty:ty) => {
            Cell::Int(array.as_primitive::<$ty>().value(row) as i64)
        };
    }
    Ok(match t {
        DataType::Null => Cell::Null,
        DataType::Boolean => Cell::Bool(array.as_boolean().value(row)),
        DataType::Int8 => int!(Int8Type),
        DataType::Int16 => int!(Int16Type),
        DataType::Int32 => int!(Int32Type),
        DataType::Int64 => int!(Int64Type),
        DataType::UInt8 => int!(UInt8Type),
        DataType::UInt16 => int!(UInt16Type),
        DataType::UInt32 => int!(UInt32Type),
        DataType::UInt64 => {
            let v = array.as_primitive::<UInt64Type>().value(row);
            i64::try_from(v).map_or(Cell::Float(v as f64), Cell::Int)
        }
        DataType::Float16 => Cell::Float(array.as_primitive::<Float16Type>().value(row).into()),
        DataType::Float32 => Cell::Float(array.as_primitive::<Float32Type>().value(row).into()),
        DataType::Float64 => Cell::Float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => Cell::Text(array.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Cell::Text(array.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => Cell::Text(array.as_string_view().value(row).to_string()),
        DataType::Binary => Cell::Bytes(shared::<i32>(array, row)),
        DataType::LargeBinary => Cell::Bytes(shared::<i64>(array, row)),
        DataType::BinaryView => Cell::Bytes(shared_view(array, row)),
        DataType::List(_) => list::<i32>(array, row)?,
        DataType::LargeList(_) => list::<i64>(array, row)?,
        DataType::Struct(_) => {
            let s = array.as_struct();
            let mut fields = Vec::new();
            for (f, col) in s.fields().iter().zip(s.columns()) {
                fields.push((f.name().clone(), read(col.as_ref(), row)?));
            }
            if is_image_struct(t) {
                let mut bytes = None;
                let mut path = None;
                for (name, cell) in fields {
                    match (name.as_str(), cell) {
                        ("bytes", Cell::Bytes(b)) => bytes = Some(b),
                        ("path", Cell::Text(p)) => path = Some(p),
                        _ => {}
                    }
                }
                Cell::Image { bytes, path }
            } else {
                Cell::Struct(fields)
            }
        }
        other => return Err(format!("Arrow type {other} is not supported")),
    })
}

/// An Arrow buffer as the owner of [`Bytes`].
struct Owner(arrow_buffer::Buffer);

impl AsRef<[u8]> for Owner {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

/// The binary value at `row` without copying it: a view of the batch's values buffer (an
/// image is the bulk of a row; copying it would add its size again to what a batch takes).
fn shared<O: OffsetSizeTrait>(array: &dyn Array, row: usize) -> Bytes {
    let a = array.as_binary::<O>();
    let offsets = a.value_offsets();
    let (start, end) = (offsets[row].as_usize(), offsets[row + 1].as_usize());
    Bytes::from_owner(Owner(a.values().clone())).slice(start..end)
}

/// The binary value at `row` of a view array without copying it: a slice of the buffer its
/// view points into (the page it was read from: the reader decodes binary columns so, and an
/// image then goes from the page to the shard with no copy in between). Values of up to 12
/// bytes live in the view itself and are copied.
fn shared_view(array: &dyn Array, row: usize) -> Bytes {
    let a = array.as_binary_view();
    let view = a.views()[row];
    let len = view as u32 as usize;
    if len <= 12 {
        return Bytes::copy_from_slice(a.value(row));
    }
    // A long view: length, 4-byte prefix, buffer index, offset (32 bits each, low first).
    let (buffer, offset) = ((view >> 64) as u32 as usize, (view >> 96) as u32 as usize);
    match a.data_buffers().get(buffer) {
        Some(b) if offset.checked_add(len).is_some_and(|end| end <= b.len()) => {
            Bytes::from_owner(Owner(b.clone())).slice(offset..offset + len)
        }
        // Not what the reader makes; the array's own accessor says what it holds.
        _ => Bytes::copy_from_slice(a.value(row)),
    }
}

fn list<O: OffsetSizeTrait>(array: &dyn Array, row: usize) -> Result<Cell, String> {
    let values = array.as_list::<O>().value(row);
    (0..values.len())
        .map(|i| read(values.as_ref(), i))
        .collect::<Result<Vec<_>, _>>()
        .map(Cell::List)
}

impl Cell {
    pub fn is_null(&self) -> bool {
        matches!(self, Cell::Null)
    }

    /// The bytes of its binary and text values, nested ones included: what holding it costs,
    /// near enough to bound it.
    pub fn byte_len(&self) -> u64 {
        match self {
            Cell::Null | Cell::Bool(_) | Cell::Int(_) | Cell::Float(_) => 8,
            Cell::Text(t) => t.len() as u64,
            Cell::Bytes(b) => b.len() as u64,
            Cell::Image { bytes, path } => {
                bytes.as_ref().map_or(0, |b| b.len() as u64)
                    + path.as_ref().map_or(0, |p| p.len() as u64)
            }
            Cell::List(items) => items.iter().map(Cell::byte_len).sum(),
            Cell::Struct(fields) => fields
                .iter()
                .map(|(n, c)| n.len() as u64 + c.byte_len())
                .sum(),
        }
    }

    /// The value as text: strings as they are, numbers written out (for ids and keys).
    pub fn as_key(&self) -> Option<String> {
        match self {
            Cell::Text(s) => Some(s.clone()),
            Cell::Int(i) => Some(i.to_string()),
            Cell::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Int(i) => Some(*i as f64),
            Cell::Float(f) => Some(*f),
            Cell::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }

    /// The value as JSON, for a record's `extras`. Binary values (an image column no field
    /// maps) are kept whole as `{"base64": ...}` so nothing is dropped.
    pub fn to_json(&self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Int(i) => Value::from(*i),
            Cell::Float(f) => serde_json::Number::from_f64(*f).map_or_else(
                // JSON has no NaN or infinity: their names keep them readable.
                || Value::String(f.to_string()),
                Value::Number,
            ),
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Bytes(b) => bytes_json(b),
            Cell::Image { bytes, path } => {
                let mut m = Map::new();
                m.insert(
                    "bytes".into(),
                    bytes.as_ref().map_or(Value::Null, bytes_json),
                );
                m.insert("path".into(), path.clone().map_or(Value::Null, Value::from));
                Value::Object(m)
            }
            Cell::List(items) => Value::Array(items.iter().map(Cell::to_json).collect()),
            Cell::Struct(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

fn bytes_json(b: &Bytes) -> Value {
    use base64::Engine;
    let mut m = Map::new();
    m.insert(
        "base64".into(),
        base64::engine::general_purpose::STANDARD.encode(b).into(),
    );
    Value::Object(m)
}
