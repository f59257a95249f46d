//! Parquet files byte by byte, for the hostile fixtures the `parquet` crate will not write:
//! footers that claim more than their bytes hold, page headers that lie about sizes, row
//! groups whose pages hold fewer rows than listed, pages built by hand (dictionary runs,
//! million-entry lists). Everything is written with the Thrift compact protocol as the
//! format's `parquet.thrift` defines it; the field ids are the format's.

use std::path::Path;

/// Physical types.
pub const INT32: i32 = 1;
pub const BYTE_ARRAY: i32 = 6;
/// Codecs.
pub const UNCOMPRESSED: i32 = 0;
pub const SNAPPY: i32 = 1;
pub const GZIP: i32 = 2;
pub const ZSTD: i32 = 6;
/// Encodings.
pub const PLAIN: i32 = 0;
pub const RLE: i32 = 3;
pub const RLE_DICTIONARY: i32 = 8;
/// Repetition.
pub const REQUIRED: i32 = 0;
pub const OPTIONAL: i32 = 1;
pub const REPEATED: i32 = 2;
/// Converted types.
pub const UTF8: i32 = 0;
pub const LIST: i32 = 3;

/// Compact-protocol type codes.
const T_I32: u8 = 5;
const T_I64: u8 = 6;
const T_BINARY: u8 = 8;
const T_LIST: u8 = 9;
const T_STRUCT: u8 = 12;

/// A Thrift compact-protocol writer: fields are written in the order given (ids ascending
/// within a struct, as the delta encoding wants).
#[derive(Default)]
pub struct Thrift {
    pub out: Vec<u8>,
    last: Vec<i16>,
    current: i16,
}

impl Thrift {
    pub fn new() -> Thrift {
        Thrift::default()
    }

    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    fn zigzag(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }

    fn field(&mut self, id: i16, ty: u8) {
        let delta = id - self.current;
        if (1..=15).contains(&delta) {
            self.out.push(((delta as u8) << 4) | ty);
        } else {
            self.out.push(ty);
            self.zigzag(i64::from(id));
        }
        self.current = id;
    }

    pub fn i32(&mut self, id: i16, v: i32) -> &mut Thrift {
        self.field(id, T_I32);
        self.zigzag(i64::from(v));
        self
    }

    pub fn i64(&mut self, id: i16, v: i64) -> &mut Thrift {
        self.field(id, T_I64);
        self.zigzag(v);
        self
    }

    pub fn binary(&mut self, id: i16, b: &[u8]) -> &mut Thrift {
        self.field(id, T_BINARY);
        self.varint(b.len() as u64);
        self.out.extend_from_slice(b);
        self
    }

    pub fn bool(&mut self, id: i16, v: bool) -> &mut Thrift {
        self.field(id, if v { 1 } else { 2 });
        self
    }

    /// Starts a struct-valued field; end it with [`Thrift::end`].
    pub fn begin(&mut self, id: i16) -> &mut Thrift {
        self.field(id, T_STRUCT);
        self.enter();
        self
    }

    /// Starts a struct that is a list element (no field header).
    pub fn enter(&mut self) -> &mut Thrift {
        self.last.push(self.current);
        self.current = 0;
        self
    }

    /// Ends a struct: its stop byte.
    pub fn end(&mut self) -> &mut Thrift {
        self.out.push(0);
        self.current = self.last.pop().unwrap_or(0);
        self
    }

    /// A list header claiming `count` elements of compact type `elem`; the caller writes the
    /// elements (or fewer, to lie).
    pub fn list(&mut self, id: i16, elem: u8, count: u64) -> &mut Thrift {
        self.field(id, T_LIST);
        if count < 15 {
            self.out.push(((count as u8) << 4) | elem);
        } else {
            self.out.push(0xf0 | elem);
            self.varint(count);
        }
        self
    }

    pub fn list_of_structs(&mut self, id: i16, count: u64) -> &mut Thrift {
        self.list(id, T_STRUCT, count)
    }

    pub fn list_of_i32(&mut self, id: i16, values: &[i32]) -> &mut Thrift {
        self.list(id, T_I32, values.len() as u64);
        for &v in values {
            self.zigzag(i64::from(v));
        }
        self
    }

    pub fn list_of_binary(&mut self, id: i16, values: &[&str]) -> &mut Thrift {
        self.list(id, T_BINARY, values.len() as u64);
        for v in values {
            self.varint(v.len() as u64);
            self.out.extend_from_slice(v.as_bytes());
        }
        self
    }

    /// The stop byte of the outermost struct.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.push(0);
        self.out
    }
}

/// One element of the schema (the root is added by [`write`]).
#[derive(Clone)]
pub struct SchemaElement {
    pub name: String,
    pub physical: Option<i32>,
    pub repetition: i32,
    pub num_children: Option<i32>,
    pub converted: Option<i32>,
}

impl SchemaElement {
    pub fn leaf(name: &str, physical: i32, repetition: i32, converted: Option<i32>) -> Self {
        SchemaElement {
            name: name.into(),
            physical: Some(physical),
            repetition,
            num_children: None,
            converted,
        }
    }

    pub fn group(name: &str, repetition: i32, children: i32, converted: Option<i32>) -> Self {
        SchemaElement {
            name: name.into(),
            physical: None,
            repetition,
            num_children: Some(children),
            converted,
        }
    }

    fn write(&self, t: &mut Thrift) {
        t.enter();
        if let Some(p) = self.physical {
            t.i32(1, p);
        }
        t.i32(3, self.repetition);
        t.binary(4, self.name.as_bytes());
        if let Some(n) = self.num_children {
            t.i32(5, n);
        }
        if let Some(c) = self.converted {
            t.i32(6, c);
        }
        t.end();
    }
}

/// A `string` column: `required binary NAME (UTF8)`.
pub fn text(name: &str) -> SchemaElement {
    SchemaElement::leaf(name, BYTE_ARRAY, REQUIRED, Some(UTF8))
}

/// A plain binary column (images as HQ-Edit stores them).
pub fn binary(name: &str) -> SchemaElement {
    SchemaElement::leaf(name, BYTE_ARRAY, REQUIRED, None)
}

#[derive(Clone)]
pub enum PageKind {
    /// A data page (format v1): levels then values, all compressed together.
    Data,
    Dictionary,
}

/// One page as stored: its header's claims and its body (compressed as the chunk's codec
/// says, or not: nothing is checked here).
#[derive(Clone)]
pub struct Page {
    pub kind: PageKind,
    pub num_values: i32,
    pub encoding: i32,
    /// The header's `uncompressed_page_size` (the truth or not).
    pub uncompressed_size: i32,
    pub body: Vec<u8>,
}

impl Page {
    /// An uncompressed data page holding `body`, honest about its size.
    pub fn data(num_values: i32, encoding: i32, body: Vec<u8>) -> Page {
        Page {
            kind: PageKind::Data,
            num_values,
            encoding,
            uncompressed_size: body.len() as i32,
            body,
        }
    }

    pub fn dictionary(num_values: i32, body: Vec<u8>) -> Page {
        Page {
            kind: PageKind::Dictionary,
            num_values,
            encoding: PLAIN,
            uncompressed_size: body.len() as i32,
            body,
        }
    }

    fn header(&self) -> Vec<u8> {
        let mut t = Thrift::new();
        let kind = match self.kind {
            PageKind::Data => 0,
            PageKind::Dictionary => 2,
        };
        t.i32(1, kind)
            .i32(2, self.uncompressed_size)
            .i32(3, self.body.len() as i32);
        match self.kind {
            PageKind::Data => {
                t.begin(5)
                    .i32(1, self.num_values)
                    .i32(2, self.encoding)
                    .i32(3, RLE)
                    .i32(4, RLE)
                    .end();
            }
            PageKind::Dictionary => {
                t.begin(7)
                    .i32(1, self.num_values)
                    .i32(2, self.encoding)
                    .end();
            }
        }
        t.finish()
    }
}

/// One column chunk: the leaf's path, type and codec, and its pages.
#[derive(Clone)]
pub struct Chunk {
    pub path: Vec<String>,
    pub physical: i32,
    pub codec: i32,
    pub pages: Vec<Page>,
    /// The chunk metadata's `num_values` (default: the data pages' sum).
    pub num_values: Option<i64>,
    /// The chunk metadata's `total_uncompressed_size` (default: the pages' true sum).
    pub uncompressed: Option<i64>,
}

impl Chunk {
    pub fn new(path: &[&str], physical: i32, codec: i32, pages: Vec<Page>) -> Chunk {
        Chunk {
            path: path.iter().map(|s| s.to_string()).collect(),
            physical,
            codec,
            pages,
            num_values: None,
            uncompressed: None,
        }
    }
}

pub struct RowGroup {
    /// Rows the footer lists (the truth or not).
    pub num_rows: i64,
    pub columns: Vec<Chunk>,
}

/// Writes a Parquet file of `schema` (without the root) and `row_groups`, with the footer
/// the chunks and pages call for; `extra_metadata` goes to the footer's key-value metadata.
pub fn write(path: &Path, schema: &[SchemaElement], row_groups: &[RowGroup]) {
    let mut out = b"PAR1".to_vec();
    // Per row group, per chunk: (data page offset, dictionary page offset, compressed
    // bytes, uncompressed bytes, values).
    let mut placed = Vec::new();
    for rg in row_groups {
        let mut chunks = Vec::new();
        for c in &rg.columns {
            let start = out.len() as i64;
            let mut dict = None;
            let mut data = None;
            let mut uncompressed = 0i64;
            let mut values = 0i64;
            for p in &c.pages {
                let at = out.len() as i64;
                match p.kind {
                    PageKind::Dictionary => dict = dict.or(Some(at)),
                    PageKind::Data => {
                        data = data.or(Some(at));
                        values += i64::from(p.num_values);
                    }
                }
                let h = p.header();
                uncompressed += h.len() as i64 + i64::from(p.uncompressed_size);
                out.extend_from_slice(&h);
                out.extend_from_slice(&p.body);
            }
            let compressed = out.len() as i64 - start;
            chunks.push((
                data.or(dict).unwrap_or(start),
                dict,
                compressed,
                c.uncompressed.unwrap_or(uncompressed),
                c.num_values.unwrap_or(values),
            ));
        }
        placed.push(chunks);
    }
    let mut t = Thrift::new();
    t.i32(1, 1);
    t.list_of_structs(2, schema.len() as u64 + 1);
    let roots = top_level_count(schema);
    SchemaElement::group("schema", REQUIRED, roots, None).write_root(&mut t);
    for e in schema {
        e.write(&mut t);
    }
    t.i64(3, row_groups.iter().map(|r| r.num_rows).sum());
    t.list_of_structs(4, row_groups.len() as u64);
    for (rg, chunks) in row_groups.iter().zip(&placed) {
        t.enter();
        t.list_of_structs(1, rg.columns.len() as u64);
        for (c, &(data, dict, compressed, uncompressed, values)) in rg.columns.iter().zip(chunks) {
            t.enter();
            t.i64(2, dict.unwrap_or(data));
            t.begin(3);
            t.i32(1, c.physical);
            let mut encodings = vec![PLAIN, RLE];
            if dict.is_some() {
                encodings.push(RLE_DICTIONARY);
            }
            t.list_of_i32(2, &encodings);
            let path: Vec<&str> = c.path.iter().map(String::as_str).collect();
            t.list_of_binary(3, &path);
            t.i32(4, c.codec)
                .i64(5, values)
                .i64(6, uncompressed)
                .i64(7, compressed)
                .i64(9, data);
            if let Some(d) = dict {
                t.i64(11, d);
            }
            t.end();
            t.end();
        }
        let bytes: i64 = chunks.iter().map(|c| c.3).sum();
        t.i64(2, bytes).i64(3, rg.num_rows);
        t.end();
    }
    let meta = t.finish();
    write_with_footer(path, out, &meta);
}

impl SchemaElement {
    fn write_root(&self, t: &mut Thrift) {
        t.enter();
        t.binary(4, self.name.as_bytes());
        if let Some(n) = self.num_children {
            t.i32(5, n);
        }
        t.end();
    }
}

/// The number of top-level fields of a flat element list (children follow their group).
fn top_level_count(schema: &[SchemaElement]) -> i32 {
    let mut count = 0;
    let mut pending: Vec<i32> = Vec::new();
    for e in schema {
        match pending.last_mut() {
            Some(n) => *n -= 1,
            None => count += 1,
        }
        while pending.last() == Some(&0) {
            pending.pop();
        }
        if let Some(n) = e.num_children.filter(|&n| n > 0) {
            pending.push(n);
        }
    }
    count
}

/// `body` (starting with the magic), then the metadata `meta`, its length and the magic.
pub fn write_with_footer(path: &Path, mut body: Vec<u8>, meta: &[u8]) {
    body.extend_from_slice(meta);
    body.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    body.extend_from_slice(b"PAR1");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("fixture dir");
    }
    std::fs::write(path, body).expect("write fixture");
}

/// PLAIN-encoded byte arrays: each a 4-byte length and its bytes.
pub fn plain(values: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// One run of the RLE/bit-packed hybrid: `count` times `value`, at `bit_width` bits.
pub fn rle_run(count: u32, value: u32, bit_width: u8) -> Vec<u8> {
    let mut t = Thrift::new();
    t.varint(u64::from(count) << 1);
    let mut out = t.out;
    let bytes = usize::from(bit_width).div_ceil(8);
    out.extend_from_slice(&value.to_le_bytes()[..bytes]);
    out
}

/// Levels of a v1 data page: a 4-byte length, then the runs.
pub fn levels(runs: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = runs.concat();
    let mut out = (body.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// Dictionary indices of a data page: the bit width, then the runs.
pub fn indices(bit_width: u8, runs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![bit_width];
    for r in runs {
        out.extend_from_slice(r);
    }
    out
}

/// Raw Snappy (as Parquet pages use it) whose preamble claims `claimed` bytes, followed by
/// `data` as literals: a decoder that trusts the preamble allocates `claimed` bytes.
pub fn snappy_claiming(claimed: u64, data: &[u8]) -> Vec<u8> {
    let mut t = Thrift::new();
    t.varint(claimed);
    let mut out = t.out;
    for chunk in data.chunks(60) {
        // A literal of up to 60 bytes: tag 00, length - 1 in the upper six bits.
        out.push((chunk.len() as u8 - 1) << 2);
        out.extend_from_slice(chunk);
    }
    out
}

/// Honest raw Snappy of `n` zero bytes (one literal, then copies of 64 bytes at offset 1):
/// about 3 bytes per 64.
pub fn snappy_zeros(n: usize) -> Vec<u8> {
    let mut t = Thrift::new();
    t.varint(n as u64);
    let mut out = t.out;
    if n == 0 {
        return out;
    }
    out.extend_from_slice(&[0, 0]);
    let mut left = n - 1;
    while left > 0 {
        let len = left.min(64);
        out.push((((len - 1) as u8) << 2) | 2);
        out.extend_from_slice(&1u16.to_le_bytes());
        left -= len;
    }
    out
}

/// The schema of a one-column file (`x`, binary), as a footer's field 2.
fn one_column_schema(t: &mut Thrift) {
    t.list_of_structs(2, 2);
    SchemaElement::group("schema", REQUIRED, 1, None).write_root(t);
    binary("x").write(t);
}

/// A file whose footer claims `count` row groups and holds none: a reader that allocates
/// what the list header claims asks for `count` row groups' worth of memory.
pub fn footer_claiming_row_groups(path: &Path, count: u64) {
    let mut t = Thrift::new();
    t.i32(1, 1);
    one_column_schema(&mut t);
    t.i64(3, 0);
    t.list_of_structs(4, count);
    write_with_footer(path, b"PAR1".to_vec(), &t.finish());
}

/// A file whose footer's schema list claims `count` elements and holds two.
pub fn footer_claiming_schema_elements(path: &Path, count: u64) {
    let mut t = Thrift::new();
    t.i32(1, 1);
    t.list_of_structs(2, count);
    SchemaElement::group("schema", REQUIRED, 1, None).write_root(&mut t);
    binary("x").write(&mut t);
    t.i64(3, 0).list_of_structs(4, 0);
    write_with_footer(path, b"PAR1".to_vec(), &t.finish());
}

/// A file whose footer holds a string (`created_by`) claiming `len` bytes.
pub fn footer_claiming_a_long_string(path: &Path, len: u64) {
    let mut t = Thrift::new();
    t.i32(1, 1);
    one_column_schema(&mut t);
    t.i64(3, 0).list_of_structs(4, 0);
    t.field(6, T_BINARY);
    t.varint(len);
    t.out.extend_from_slice(b"editshard");
    write_with_footer(path, b"PAR1".to_vec(), &t.finish());
}

/// A file whose schema nests `depth` groups, one inside the other, around one leaf.
pub fn deeply_nested_schema(path: &Path, depth: usize) {
    let mut t = Thrift::new();
    t.i32(1, 1);
    t.list_of_structs(2, depth as u64 + 2);
    SchemaElement::group("schema", REQUIRED, 1, None).write_root(&mut t);
    for _ in 0..depth {
        SchemaElement::group("g", OPTIONAL, 1, None).write(&mut t);
    }
    binary("x").write(&mut t);
    t.i64(3, 0).list_of_structs(4, 0);
    write_with_footer(path, b"PAR1".to_vec(), &t.finish());
}

/// A file whose last 8 bytes claim a footer of `len` bytes.
pub fn footer_length_claiming(path: &Path, len: u32) {
    let mut body = b"PAR1".to_vec();
    body.extend_from_slice(&[0; 16]);
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(b"PAR1");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("fixture dir");
    }
    std::fs::write(path, body).expect("write fixture");
}

/// `data` compressed with zstd (level 1), for the body of a zstd page.
pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(data, 1).expect("zstd")
}

/// zstd of `head` followed by zeros up to `len` bytes, compressed as a stream (nothing of
/// `len` bytes is held): an honest page of any size in a few kB.
pub fn zstd_zeros_after(head: &[u8], len: u64) -> Vec<u8> {
    use std::io::Read;
    let zeros = std::io::repeat(0).take(len - head.len() as u64);
    let mut out = Vec::new();
    zstd::stream::copy_encode(head.chain(zeros), &mut out, 1).expect("zstd");
    out
}

/// `data` compressed with gzip, for the body of a gzip page.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// A one-row-group file of string column `id` and binary columns `before` and `after`
/// (the rows given), every page compressed with `codec` ([`UNCOMPRESSED`], [`GZIP`] or
/// [`ZSTD`]).
pub fn simple_file(path: &Path, rows: &[(&str, &[u8], &[u8])], codec: i32) {
    let compress = |body: Vec<u8>| -> Page {
        let n = rows.len() as i32;
        let stored = match codec {
            GZIP => gzip(&body),
            ZSTD => zstd(&body),
            _ => body.clone(),
        };
        let mut p = Page::data(n, PLAIN, stored);
        p.uncompressed_size = body.len() as i32;
        p
    };
    let ids: Vec<&[u8]> = rows.iter().map(|r| r.0.as_bytes()).collect();
    let before: Vec<&[u8]> = rows.iter().map(|r| r.1).collect();
    let after: Vec<&[u8]> = rows.iter().map(|r| r.2).collect();
    let columns = vec![
        Chunk::new(&["id"], BYTE_ARRAY, codec, vec![compress(plain(&ids))]),
        Chunk::new(
            &["before"],
            BYTE_ARRAY,
            codec,
            vec![compress(plain(&before))],
        ),
        Chunk::new(&["after"], BYTE_ARRAY, codec, vec![compress(plain(&after))]),
    ];
    write(
        path,
        &[text("id"), binary("before"), binary("after")],
        &[RowGroup {
            num_rows: rows.len() as i64,
            columns,
        }],
    );
}
