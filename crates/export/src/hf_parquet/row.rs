//! One record as one Arrow row: the record is first laid out as a tree of [`Val`]s in the
//! schema's shape ([`super::schema`]), then [`batch`] builds the columns from the schema's
//! types, so the layout is written once, next to the schema it follows.

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BinaryArray, Float32Array, ListArray, RecordBatch, StringArray, StructArray,
    UInt16Array, UInt32Array, UInt64Array,
};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Schema};
use bytes::Bytes;

use super::file_name::file_name;
use editshard::hex::hex;
use editshard::record::{Image, Provenance, Record, Turn};

/// A value in the schema's shape. Image bytes are borrowed from the record.
#[derive(Debug, Clone)]
pub enum Val<'a> {
    Null,
    Str(Cow<'a, str>),
    U64(u64),
    F32(f32),
    /// Image bytes, shared with the record (a lone value goes into the array uncopied).
    Bin(&'a Bytes),
    List(Vec<Val<'a>>),
    Struct(Vec<Val<'a>>),
}

fn text(s: &Option<String>) -> Val<'_> {
    s.as_deref()
        .map_or(Val::Null, |s| Val::Str(Cow::Borrowed(s)))
}

fn number(n: Option<u64>) -> Val<'static> {
    n.map_or(Val::Null, Val::U64)
}

fn image<'a>(img: &'a Image, id: &str) -> Result<Val<'a>, String> {
    let bytes = img
        .data
        .as_ref()
        .ok_or_else(|| format!("{id}: an image's bytes were not read"))?;
    let name = file_name(img).map_or(Val::Null, |n| Val::Str(Cow::Owned(n)));
    Ok(Val::Struct(vec![Val::Bin(bytes), name]))
}

fn info(img: &Image) -> Val<'_> {
    let scores = img
        .scores
        .iter()
        .map(|s| Val::Struct(vec![Val::Str(Cow::Borrowed(&s.name)), Val::F32(s.value)]))
        .collect();
    Val::Struct(vec![
        Val::Str(Cow::Borrowed(&img.media_type)),
        Val::U64(u64::from(img.width)),
        Val::U64(u64::from(img.height)),
        Val::Str(Cow::Owned(hex(&img.sha256))),
        text(&img.url),
        text(&img.path),
        number(img.rotation.map(u64::from)),
        text(&img.caption),
        Val::List(scores),
    ])
}

fn turn<'a>(t: &'a Turn, id: &str) -> Result<Val<'a>, String> {
    let variants = t
        .instruction_variants
        .iter()
        .map(|v| Val::Str(Cow::Borrowed(v)))
        .collect();
    let rejected = t
        .rejected
        .iter()
        .map(|r| image(r, id))
        .collect::<Result<_, _>>()?;
    let (mask, mask_info) = match &t.mask {
        Some(m) => (image(m, id)?, info(m)),
        None => (Val::Null, Val::Null),
    };
    Ok(Val::Struct(vec![
        text(&t.instruction),
        text(&t.short_instruction),
        text(&t.edit_type),
        text(&t.category),
        Val::List(variants),
        image(&t.output, id)?,
        info(&t.output),
        Val::List(rejected),
        Val::List(t.rejected.iter().map(info).collect()),
        mask,
        mask_info,
    ]))
}

fn provenance(p: &Provenance) -> Val<'_> {
    Val::Struct(vec![
        text(&p.subset),
        text(&p.file),
        number(p.line),
        text(&p.licence),
        text(&p.dataset),
        text(&p.revision),
        number(p.row_group),
        number(p.row),
    ])
}

/// The record's columns, in the schema's order. Fails (naming the record) only when an
/// image's bytes were not read.
pub fn columns(r: &Record) -> Result<Vec<Val<'_>>, String> {
    let extras = if r.extras.is_empty() {
        Val::Null
    } else {
        let json = serde_json::to_string(&r.extras).map_err(|e| format!("{}: {e}", r.id))?;
        Val::Str(Cow::Owned(json))
    };
    Ok(vec![
        Val::Str(Cow::Borrowed(&r.id)),
        Val::Str(Cow::Borrowed(r.kind.name())),
        image(&r.source, &r.id)?,
        info(&r.source),
        Val::List(
            r.turns
                .iter()
                .map(|t| turn(t, &r.id))
                .collect::<Result<_, _>>()?,
        ),
        provenance(&r.provenance),
        extras,
    ])
}

/// A batch of `rows` (each from [`columns`]) in `schema`.
pub fn batch(schema: &Arc<Schema>, rows: &[Vec<Val<'_>>]) -> Result<RecordBatch, String> {
    let mut arrays = Vec::with_capacity(schema.fields().len());
    for (c, field) in schema.fields().iter().enumerate() {
        let column: Vec<&Val> = rows
            .iter()
            .map(|r| r.get(c).ok_or("a row has fewer columns than the schema"))
            .collect::<Result<_, _>>()?;
        arrays
            .push(build(field.data_type(), &column).map_err(|e| format!("{}: {e}", field.name()))?);
    }
    RecordBatch::try_new(schema.clone(), arrays).map_err(|e| e.to_string())
}

fn mismatch(dt: &DataType, v: &Val) -> String {
    format!("a {v:?} where the schema has {dt} (the row layout and the schema disagree)")
}

/// One array of type `dt` from `vals`, recursively.
fn build(dt: &DataType, vals: &[&Val]) -> Result<ArrayRef, String> {
    let null = Val::Null;
    Ok(match dt {
        DataType::Utf8 => {
            let v: Vec<Option<&str>> = vals
                .iter()
                .map(|v| match v {
                    Val::Str(s) => Ok(Some(s.as_ref())),
                    Val::Null => Ok(None),
                    other => Err(mismatch(dt, other)),
                })
                .collect::<Result<_, _>>()?;
            Arc::new(StringArray::from(v))
        }
        DataType::Binary => {
            let v: Vec<Option<&Bytes>> = vals
                .iter()
                .map(|v| match v {
                    Val::Bin(b) => Ok(Some(*b)),
                    Val::Null => Ok(None),
                    other => Err(mismatch(dt, other)),
                })
                .collect::<Result<_, _>>()?;
            Arc::new(binary(v)?)
        }
        DataType::Float32 => {
            let v: Vec<Option<f32>> = vals
                .iter()
                .map(|v| match v {
                    Val::F32(x) => Ok(Some(*x)),
                    Val::Null => Ok(None),
                    other => Err(mismatch(dt, other)),
                })
                .collect::<Result<_, _>>()?;
            Arc::new(Float32Array::from(v))
        }
        DataType::UInt16 => Arc::new(UInt16Array::from(unsigned(dt, vals)?)),
        DataType::UInt32 => Arc::new(UInt32Array::from(unsigned(dt, vals)?)),
        DataType::UInt64 => Arc::new(UInt64Array::from(unsigned::<u64>(dt, vals)?)),
        DataType::List(item) => {
            let mut lengths = Vec::with_capacity(vals.len());
            let mut valid = Vec::with_capacity(vals.len());
            let mut children = Vec::new();
            for v in vals {
                match v {
                    Val::List(xs) => {
                        lengths.push(xs.len());
                        valid.push(true);
                        children.extend(xs.iter());
                    }
                    Val::Null => {
                        lengths.push(0);
                        valid.push(false);
                    }
                    other => return Err(mismatch(dt, other)),
                }
            }
            let values = build(item.data_type(), &children)?;
            let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
            let offsets = OffsetBuffer::from_lengths(lengths);
            Arc::new(
                ListArray::try_new(item.clone(), offsets, values, nulls)
                    .map_err(|e| e.to_string())?,
            )
        }
        DataType::Struct(fields) => {
            let mut valid = Vec::with_capacity(vals.len());
            for v in vals {
                match v {
                    Val::Struct(xs) if xs.len() == fields.len() => valid.push(true),
                    Val::Null => valid.push(false),
                    other => return Err(mismatch(dt, other)),
                }
            }
            let mut arrays = Vec::with_capacity(fields.len());
            for (i, field) in fields.iter().enumerate() {
                let children: Vec<&Val> = vals
                    .iter()
                    .map(|v| match v {
                        Val::Struct(xs) => &xs[i],
                        _ => &null,
                    })
                    .collect();
                arrays.push(
                    build(field.data_type(), &children)
                        .map_err(|e| format!("{}: {e}", field.name()))?,
                );
            }
            let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
            Arc::new(
                StructArray::try_new(fields.clone(), arrays, nulls).map_err(|e| e.to_string())?,
            )
        }
        other => {
            return Err(format!(
                "no builder for {other} (the schema uses no such type)"
            ));
        }
    })
}

/// A binary array. When it holds one value (a record's source image: records are written one
/// at a time), that value's bytes become the array's buffer without a copy, so an image of
/// hundreds of MiB is not held twice while it is encoded.
fn binary(vals: Vec<Option<&Bytes>>) -> Result<BinaryArray, String> {
    // `datasets` stores images as `binary`, whose offsets are 32-bit: refuse rather than
    // overflow (a record's images of one role over 2 GiB).
    let total: u64 = vals.iter().flatten().map(|b| b.len() as u64).sum();
    if total > i32::MAX as u64 {
        return Err(format!(
            "{total} bytes of images in one column of one record: over the 2 GiB a Parquet \
             binary column of the Image feature holds"
        ));
    }
    let mut present = vals.iter().flatten();
    let (Some(only), None) = (present.next(), present.next()) else {
        let slices: Vec<Option<&[u8]>> = vals.iter().map(|v| v.map(|b| b.as_ref())).collect();
        return Ok(BinaryArray::from(slices));
    };
    let lengths = vals.iter().map(|v| v.map_or(0, |b| b.len()));
    let offsets = OffsetBuffer::<i32>::from_lengths(lengths);
    let nulls = vals
        .iter()
        .any(Option::is_none)
        .then(|| NullBuffer::from_iter(vals.iter().map(Option::is_some)));
    BinaryArray::try_new(offsets, Buffer::from((*only).clone()), nulls).map_err(|e| e.to_string())
}

fn unsigned<T: TryFrom<u64>>(dt: &DataType, vals: &[&Val]) -> Result<Vec<Option<T>>, String> {
    vals.iter()
        .map(|v| match v {
            Val::U64(n) => T::try_from(*n)
                .map(Some)
                .map_err(|_| format!("{n} does not fit {dt}")),
            Val::Null => Ok(None),
            other => Err(mismatch(dt, other)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use editshard::record::Kind;

    fn img(b: &'static [u8]) -> Image {
        Image::with_info(Bytes::from_static(b), "image/png".into(), 1, 1)
    }

    #[test]
    fn every_kind_of_record_fits_the_schema() {
        let (schema, _) = super::super::schema::schema();
        let mut turn = Turn::new(img(b"o"));
        turn.rejected = vec![img(b"r")];
        turn.mask = Some(img(b"m"));
        turn.instruction_variants = vec!["a".into(), "b".into()];
        let mut r = Record::new("x", Kind::Preference, img(b"s"), vec![turn]);
        r.extras.insert("k".into(), serde_json::json!([1]));
        let empty = Record::new("y", Kind::Generic, img(b"s"), vec![]);
        let rows = vec![columns(&r).unwrap(), columns(&empty).unwrap()];
        let batch = batch(&schema, &rows).unwrap();
        assert_eq!(batch.num_rows(), 2);
        let mut stripped = r.clone();
        stripped.strip_data();
        assert!(columns(&stripped).unwrap_err().contains("x: "));
    }
}
