//! A Parquet file's footer, checked before the `parquet` crate decodes it. The crate
//! allocates what each list header claims and builds the schema tree recursively, so a footer
//! of a few hundred bytes claiming 2^31 row groups, or a schema nested 100,000 deep, would
//! abort the process. [`load`] first walks the footer's bytes with the bounded reader of
//! [`crate::thrift`]: every count must be held by the bytes that follow it, the schema must
//! form one tree at most [`MAX_SCHEMA_DEPTH`] deep whose leaves are every row group's
//! columns, every column chunk must lie inside the file's data, and a row group may list no
//! more rows than its chunks' pages can hold. Only then does the crate decode it. Since the
//! crate reads a field by its id, not its type code, [`crate::footer_types`] first holds
//! every field to the type the crate reads it as, so that both walks read the same bytes.

use std::sync::Arc;

use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::reader::ChunkReader;

use crate::footer_types;
use crate::thrift::{self, Compact};

/// Largest footer read (a Hub file's footer is a few kB; 100,000 column chunks with
/// statistics fit in this).
pub const MAX_FOOTER_BYTES: u64 = 16 << 20;
/// Deepest schema accepted (the Hub's datasets nest at most a list of structs of lists:
/// about 7 levels).
pub const MAX_SCHEMA_DEPTH: usize = 64;
/// Largest decoded footer accepted, as estimated from its counts (the `parquet` crate keeps
/// a few hundred bytes per column chunk and schema element).
pub const MAX_DECODED_FOOTER: u64 = 256 << 20;
/// The smallest a page can be: its header alone takes more than this.
const MIN_PAGE_BYTES: u64 = 8;
/// Values one page can hold (its header's count is a 32-bit integer).
const MAX_PAGE_VALUES: u64 = i32::MAX as u64;
/// Codecs this build decompresses: UNCOMPRESSED, SNAPPY, GZIP, ZSTD.
pub const CODECS: [(i32, &str); 4] = [(0, "none"), (1, "snappy"), (2, "gzip"), (6, "zstd")];
const CODEC_NAMES: [&str; 8] = [
    "UNCOMPRESSED",
    "SNAPPY",
    "GZIP",
    "LZO",
    "BROTLI",
    "LZ4",
    "ZSTD",
    "LZ4_RAW",
];

/// What the check found, for the reader's own checks later.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Leaf columns of the schema.
    pub leaves: usize,
    pub row_groups: usize,
}

/// Reads and checks the footer of `object` (its last 8 bytes, then the metadata), then
/// decodes it. Errors say what is wrong in the footer; the caller adds the file.
pub fn load<R: ChunkReader>(object: &R) -> Result<Arc<ParquetMetaData>, String> {
    let len = object.len();
    if len < 12 {
        return Err(format!(
            "not a Parquet file: {len} bytes, less than its two magic numbers and footer length"
        ));
    }
    let tail = object
        .get_bytes(len - 8, 8)
        .map_err(|e| format!("cannot read the footer: {e}"))?;
    match &tail[4..] {
        b"PAR1" => {}
        b"PARE" => {
            return Err(
                "the file is encrypted (magic PARE): encrypted Parquet is not \
                        supported"
                    .into(),
            );
        }
        other => {
            return Err(format!(
                "not a Parquet file: it ends in {other:?}, not the magic \"PAR1\""
            ));
        }
    }
    let meta_len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if meta_len + 12 > len {
        return Err(format!(
            "the footer claims {meta_len} bytes of metadata, but the file has {len} bytes"
        ));
    }
    if meta_len > MAX_FOOTER_BYTES {
        return Err(format!(
            "the footer's metadata is {meta_len} bytes; at most {MAX_FOOTER_BYTES} are read"
        ));
    }
    let data_end = len - 8 - meta_len;
    let meta = object
        .get_bytes(data_end, meta_len as usize)
        .map_err(|e| format!("cannot read the footer: {e}"))?;
    check(&meta, data_end).map_err(|e| format!("malformed footer: {e}"))?;
    ParquetMetaDataReader::decode_metadata(&meta)
        .map(Arc::new)
        .map_err(|e| format!("malformed footer: {e}"))
}

/// One schema element: what the tree check needs.
#[derive(Clone)]
struct Element {
    num_children: Option<i32>,
    name_len: u64,
}

/// One column chunk's placement and counts.
#[derive(Default)]
struct ChunkMeta {
    has_meta: bool,
    codec: Option<i32>,
    num_values: i64,
    compressed: i64,
    uncompressed: i64,
    data_page_offset: i64,
    dictionary_page_offset: Option<i64>,
    elsewhere: bool,
    encrypted: bool,
}

/// Walks `meta` (a FileMetaData) and checks it; `data_end` is where the footer starts (no
/// column chunk may reach past it).
pub fn check(meta: &[u8], data_end: u64) -> Result<Facts, String> {
    // First the types: after this, the walk below and the `parquet` crate read the same
    // values from the same bytes.
    let reserved = footer_types::walk(&mut Compact::new(meta), &footer_types::FILE_META_DATA)?;
    let mut r = Compact::new(meta);
    let mut schema_seen = false;
    let mut leaves = 0usize;
    let mut paths = 0u64;
    let mut elements = 0u64;
    let mut chunks_total = 0u64;
    let mut row_groups = 0usize;
    let mut rg_rows: Vec<i64> = Vec::new();
    let mut rg_chunks: Vec<u64> = Vec::new();
    r.read_struct(|r, id, ty| {
        let what = match id {
            2 => "the schema",
            4 => "the row groups",
            5 => "the key-value metadata",
            6 => "created_by",
            7 => "the column orders",
            _ => "a field",
        };
        let mut read = || -> Result<(), String> {
            match (id, ty) {
                (2, thrift::LIST) => {
                    let (elem, count) = r.list()?;
                    expect_structs(elem, "schema")?;
                    r.enter()?;
                    let mut list = Vec::new();
                    for _ in 0..count {
                        list.push(schema_element(r)?);
                    }
                    r.leave();
                    elements = count;
                    (leaves, paths) = schema_tree(&list)?;
                    schema_seen = true;
                }
                (4, thrift::LIST) => {
                    let (elem, count) = r.list()?;
                    expect_structs(elem, "row groups")?;
                    r.enter()?;
                    for g in 0..count {
                        let (rows, chunks) = row_group(r, g, data_end)?;
                        chunks_total += chunks;
                        rg_rows.push(rows);
                        rg_chunks.push(chunks);
                    }
                    r.leave();
                    row_groups = count as usize;
                }
                (8, _) => {
                    return Err(
                        "the file is encrypted (an encryption algorithm in a plaintext \
                            footer): encrypted Parquet is not supported"
                            .into(),
                    );
                }
                (_, ty) => r.skip(ty)?,
            }
            Ok(())
        };
        read().map_err(|e| format!("{what}: {e}"))
    })?;
    if !schema_seen {
        return Err("the footer has no schema".into());
    }
    if let Some((g, chunks)) = rg_chunks
        .iter()
        .enumerate()
        .find(|(_, c)| **c != leaves as u64)
    {
        return Err(format!(
            "row group {g} has {chunks} column chunks; the schema has {leaves} columns"
        ));
    }
    if rg_rows
        .iter()
        .try_fold(0i64, |a, &n| a.checked_add(n))
        .is_none()
    {
        return Err("the row groups' row counts overflow 64 bits".into());
    }
    let estimate = chunks_total
        .saturating_mul(600)
        .saturating_add(elements.saturating_mul(256))
        .saturating_add((row_groups as u64).saturating_mul(256))
        .saturating_add(paths)
        .saturating_add(reserved)
        .saturating_add(meta.len() as u64);
    if estimate > MAX_DECODED_FOOTER {
        return Err(format!(
            "{row_groups} row groups of {leaves} columns would take about {} MiB in memory \
             once decoded; at most {} MiB are accepted",
            estimate >> 20,
            MAX_DECODED_FOOTER >> 20
        ));
    }
    Ok(Facts { leaves, row_groups })
}

fn expect_structs(elem: u8, what: &str) -> Result<(), String> {
    if elem != thrift::STRUCT {
        return Err(format!(
            "the {what} list holds Thrift type {elem}, not structs"
        ));
    }
    Ok(())
}

fn schema_element(r: &mut Compact) -> Result<Element, String> {
    let mut e = Element {
        num_children: None,
        name_len: 0,
    };
    r.read_struct(|r, id, ty| {
        match id {
            4 => e.name_len = r.binary()?.len() as u64,
            5 => {
                let n = r.int(ty)?;
                e.num_children = Some(i32::try_from(n).map_err(|_| format!("num_children {n}"))?);
            }
            _ => r.skip(ty)?,
        }
        Ok(())
    })?;
    Ok(e)
}

/// Checks that the flat element list is one tree (each group followed by its children),
/// no deeper than [`MAX_SCHEMA_DEPTH`], without recursing. Returns its number of leaves,
/// and the bytes of their column paths: the crate gives every leaf a copy of the names on
/// its path (the root's excluded), so a long name above many leaves costs each of them.
fn schema_tree(list: &[Element]) -> Result<(usize, u64), String> {
    let Some(root) = list.first() else {
        return Err("the schema is empty (not even a root)".into());
    };
    let root_children = root.num_children.unwrap_or(0);
    if root_children < 0 {
        return Err(format!("the schema root has {root_children} children"));
    }
    // Children still expected by each open group, innermost last, and the bytes of the
    // group's path.
    let mut open: Vec<(i64, u64)> = Vec::new();
    if root_children > 0 {
        open.push((i64::from(root_children), 0));
    }
    let mut leaves = 0;
    let mut paths = 0u64;
    for (i, e) in list.iter().enumerate().skip(1) {
        let Some((parent, above)) = open.last_mut() else {
            return Err(format!(
                "schema element {i} is outside the tree (the root's children end before it)"
            ));
        };
        *parent -= 1;
        // A String per name on the path.
        let path = above.saturating_add(24 + e.name_len);
        match e.num_children {
            Some(n) if n < 0 => return Err(format!("schema element {i} has {n} children")),
            Some(n) if n > 0 => {
                if i64::from(n) > (list.len() - i - 1) as i64 {
                    return Err(format!(
                        "schema element {i} claims {n} children; {} elements follow it",
                        list.len() - i - 1
                    ));
                }
                open.push((i64::from(n), path));
                if open.len() > MAX_SCHEMA_DEPTH {
                    return Err(format!(
                        "the schema is nested more than {MAX_SCHEMA_DEPTH} deep (at element \
                         {i}); no dataset nests that deep"
                    ));
                }
            }
            _ => {
                leaves += 1;
                paths = paths.saturating_add(path);
            }
        }
        while open.last().is_some_and(|(left, _)| *left == 0) {
            open.pop();
        }
    }
    if !open.is_empty() {
        return Err("the schema ends before its groups' children do".into());
    }
    Ok((leaves, paths))
}

/// One row group: its row count and number of column chunks, each chunk checked.
fn row_group(r: &mut Compact, g: u64, data_end: u64) -> Result<(i64, u64), String> {
    let mut rows = None;
    let mut chunks = Vec::new();
    r.read_struct(|r, id, ty| {
        match (id, ty) {
            (1, thrift::LIST) => {
                let (elem, count) = r.list()?;
                expect_structs(elem, "column chunk")?;
                r.enter()?;
                for _ in 0..count {
                    chunks.push(column_chunk(r)?);
                }
                r.leave();
            }
            (3, _) => rows = Some(r.int(ty)?),
            (_, ty) => r.skip(ty)?,
        }
        Ok(())
    })?;
    let Some(rows) = rows else {
        return Err(format!("row group {g} has no row count"));
    };
    if rows < 0 {
        return Err(format!("row group {g} lists {rows} rows"));
    }
    for (c, chunk) in chunks.iter().enumerate() {
        let at = format!("row group {g}, column chunk {c}");
        if chunk.encrypted {
            return Err(format!(
                "{at} is encrypted: encrypted Parquet is not supported"
            ));
        }
        if chunk.elsewhere {
            return Err(format!(
                "{at} lives in another file (file_path is set): such files are not supported"
            ));
        }
        if !chunk.has_meta {
            return Err(format!("{at} has no metadata"));
        }
        match chunk.codec {
            Some(codec) if CODECS.iter().any(|(c, _)| *c == codec) => {}
            Some(codec) => {
                let name = usize::try_from(codec)
                    .ok()
                    .and_then(|i| CODEC_NAMES.get(i))
                    .map_or_else(|| format!("codec {codec}"), |n| n.to_string());
                return Err(format!(
                    "{at} is compressed with {name}, which this build does not read (it reads \
                     uncompressed, Snappy, gzip and zstd pages): rewrite the file with one of \
                     those, e.g. pyarrow's write_table(..., compression=\"zstd\")"
                ));
            }
            None => return Err(format!("{at} names no codec")),
        }
        if chunk.compressed < 0 || chunk.uncompressed < 0 || chunk.num_values < 0 {
            return Err(format!("{at} has negative sizes or counts"));
        }
        let start = match chunk.dictionary_page_offset {
            Some(d) if d > 0 && d < chunk.data_page_offset => d,
            _ => chunk.data_page_offset,
        };
        let end = start.checked_add(chunk.compressed);
        if start < 4 || end.is_none_or(|e| e as u64 > data_end) {
            return Err(format!(
                "{at} claims bytes {start}..{} of the file; its data ends at byte {data_end}",
                end.map_or("overflow".to_string(), |e| e.to_string())
            ));
        }
        // Every row has at least one value (level) in every column, and a page holds at
        // most 2^31 - 1 values in at least a few bytes.
        if rows > chunk.num_values {
            return Err(format!(
                "row group {g} lists {rows} rows, but column chunk {c} holds {} values",
                chunk.num_values
            ));
        }
        let pages = (chunk.compressed as u64 / MIN_PAGE_BYTES).max(1);
        if chunk.num_values as u64 > pages.saturating_mul(MAX_PAGE_VALUES) {
            return Err(format!(
                "row group {g} lists {rows} rows and column chunk {c} {} values: its {} bytes \
                 cannot hold that many pages",
                chunk.num_values, chunk.compressed
            ));
        }
    }
    Ok((rows, chunks.len() as u64))
}

fn column_chunk(r: &mut Compact) -> Result<ChunkMeta, String> {
    let mut c = ChunkMeta::default();
    r.read_struct(|r, id, ty| {
        match (id, ty) {
            (1, _) => {
                r.skip(ty)?;
                c.elsewhere = true;
            }
            (3, thrift::STRUCT) => {
                c.has_meta = true;
                r.read_struct(|r, id, ty| {
                    match id {
                        4 => c.codec = Some(r.int(ty)? as i32),
                        5 => c.num_values = r.int(ty)?,
                        6 => c.uncompressed = r.int(ty)?,
                        7 => c.compressed = r.int(ty)?,
                        9 => c.data_page_offset = r.int(ty)?,
                        11 => c.dictionary_page_offset = Some(r.int(ty)?),
                        _ => r.skip(ty)?,
                    }
                    Ok(())
                })?;
            }
            (8 | 9, _) => {
                r.skip(ty)?;
                c.encrypted = true;
            }
            (_, ty) => r.skip(ty)?,
        }
        Ok(())
    })?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(n: Option<i32>) -> Element {
        Element {
            num_children: n,
            name_len: 1,
        }
    }

    #[test]
    fn the_schema_is_one_tree_of_bounded_depth() {
        let flat = [el(Some(2)), el(None), el(Some(1)), el(None)];
        assert_eq!(schema_tree(&flat).unwrap().0, 2);
        // Children claimed that never come.
        assert!(schema_tree(&[el(Some(3)), el(None)]).is_err());
        // An element after the tree ends.
        assert!(schema_tree(&[el(Some(1)), el(None), el(None)]).is_err());
        let mut deep = vec![el(Some(1)); MAX_SCHEMA_DEPTH + 2];
        deep.push(el(None));
        let e = schema_tree(&deep).unwrap_err();
        assert!(e.contains("nested"), "{e}");
        let mut ok = vec![el(Some(1)); MAX_SCHEMA_DEPTH];
        ok.push(el(None));
        assert_eq!(schema_tree(&ok).unwrap().0, 1);
    }

    #[test]
    fn every_leaf_pays_for_the_names_above_it() {
        // root { a (name 1000 bytes) { x, y }, z }: x and y carry a's name, z only its own.
        let long = Element {
            num_children: Some(2),
            name_len: 1000,
        };
        let flat = [el(Some(2)), long, el(None), el(None), el(None)];
        let (leaves, paths) = schema_tree(&flat).unwrap();
        assert_eq!(leaves, 3);
        assert_eq!(paths, 2 * (1024 + 25) + 25);
    }

    /// A group with a name of 9 MB above many leaves: a footer of a few MB whose schema
    /// paths the crate would copy to every leaf.
    #[test]
    fn a_long_name_above_many_leaves_is_refused() {
        let leaves = 400_000u32;
        let mut elements = vec![
            (Some(1), "schema".to_string()),
            (Some(leaves as i32), "g".repeat(9 << 20)),
        ];
        elements.extend((0..leaves).map(|_| (None, String::new())));
        let mut meta = vec![0x15, 0x02, 0x19, 0xfc];
        varint(&mut meta, elements.len() as u64);
        for (children, name) in &elements {
            meta.push(0x48); // field 4: name
            varint(&mut meta, name.len() as u64);
            meta.extend_from_slice(name.as_bytes());
            if let Some(n) = children {
                meta.push(0x15); // field 5: num_children
                varint(&mut meta, u64::from(*n as u32) << 1);
            }
            meta.push(0);
        }
        meta.extend_from_slice(&[0x16, 0x00, 0x19, 0x0c, 0x00]); // num_rows 0, no row groups
        let e = check(&meta, 4).unwrap_err();
        assert!(e.contains("MiB in memory"), "{e}");
    }

    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
}

#[cfg(test)]
mod kept_inputs {
    use bytes::Bytes;

    /// Footers on which the `parquet` crate once read other bytes than the check did, and
    /// then reserved a count the check never saw (a fuzz run's asked for 19.5 GB; a review
    /// made the other). Each must be refused before the crate decodes it: a test cannot
    /// watch the allocation, the fuzz smoke run does.
    #[test]
    fn footers_the_crate_would_read_otherwise_are_refused() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fuzz-regressions/hub_footer"
        );
        for (file, words) in [
            // A field of the schema in another type than the crate reads it as.
            ("list-type-disagrees-with-field", "Thrift type"),
            // An unknown field holding a list of 8 booleans, which the crate skips as 0
            // bytes, then reads as a list of 2^31 - 1 row groups.
            ("booleans-skipped-as-nothing", "booleans"),
        ] {
            let bytes = Bytes::from(std::fs::read(format!("{dir}/{file}")).unwrap());
            let e = super::load(&bytes).unwrap_err();
            assert!(e.contains(words), "{file}: {e}");
        }
    }
}
