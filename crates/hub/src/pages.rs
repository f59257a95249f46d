//! One column chunk's pages, read, checked and decompressed here before the `parquet`
//! crate decodes their values (it takes them through its [`PageReader`] trait, so its own
//! page reading, which trusts each header's sizes, is never used).
//!
//! For each page, before its body is read:
//! - the header is decoded with the bounded Thrift reader, and its sizes must lie inside
//!   the chunk;
//! - the decoded page may not exceed the cell limit (a page over it could only hold a cell
//!   over the image limit, or more bytes than one row may take);
//! - what decoding it can add to the batch being read is charged to the [`Meter`] shared by
//!   the row group's columns: the batch budget, or for a single row the limits of one cell.
//!   A dictionary-encoded page is charged for its values as the dictionary's largest entry
//!   repeated, not as its few bytes of indices; a list column's rows are counted from the
//!   repetition levels.
//!
//! Then the body is decompressed to exactly its stated size ([`crate::codec`]).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use parquet::basic::{Encoding, Type as PhysicalType};
use parquet::column::page::{Page, PageMetadata, PageReader};
use parquet::errors::{ParquetError, Result as PqResult};
use parquet::file::reader::ChunkReader;

use crate::codec::{self, Codec};
use crate::levels::RecordCounter;
use crate::source::Object;
use crate::thrift::{self, Compact};

/// Largest page header read (statistics may hold long values).
const MAX_HEADER_BYTES: u64 = 16 << 20;
/// What a batch holds per value beyond its bytes: offsets, levels, validity.
const PER_VALUE: u64 = 8;

/// Why the meter stopped a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The batch would take more than the budget: read fewer rows at once.
    OverBudget,
    /// One row's cell is over the limits on its own.
    TooLarge(String),
}

/// The memory a batch's decoding may take, charged page by page by the row group's column
/// readers before each page is decoded.
pub struct Meter {
    budget: u64,
    /// What the pages held at once may take when one row is read: the budget plus one page
    /// over it. A row whose columns' pages need more together is refused, since pages are
    /// decoded whole: their sizes are what a file chooses, not what a row needs.
    one_row_pages: u64,
    state: Mutex<MeterState>,
}

#[derive(Default)]
struct MeterState {
    batch_rows: usize,
    /// Per column: the largest page held (a column reader holds one page at a time) and
    /// what the batch's arrays may gain from its pages.
    held: Vec<u64>,
    out: Vec<u64>,
    refusal: Option<Refusal>,
}

impl Meter {
    pub fn new(columns: usize, budget: u64, max_page: u64) -> Meter {
        Meter {
            budget,
            one_row_pages: budget.saturating_add(max_page),
            state: Mutex::new(MeterState {
                held: vec![0; columns],
                out: vec![0; columns],
                ..MeterState::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MeterState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new batch of `rows` rows starts: nothing charged yet.
    pub fn start_batch(&self, rows: usize) {
        let mut s = self.lock();
        s.batch_rows = rows;
        s.held.iter_mut().for_each(|h| *h = 0);
        s.out.iter_mut().for_each(|o| *o = 0);
        s.refusal = None;
    }

    pub fn batch_rows(&self) -> usize {
        self.lock().batch_rows
    }

    /// Why the last read stopped, if the meter stopped it.
    pub fn refusal(&self) -> Option<Refusal> {
        self.lock().refusal.clone()
    }

    fn refuse(&self, r: Refusal) -> ParquetError {
        let text = match &r {
            Refusal::OverBudget => "over the batch budget".to_string(),
            Refusal::TooLarge(t) => t.clone(),
        };
        self.lock().refusal = Some(r);
        ParquetError::General(text)
    }

    /// Charges a page of column `slot` before it is decoded: `held` bytes while it is
    /// decoded, `out` bytes it may add to the batch.
    fn charge(&self, slot: usize, held: u64, out: u64) -> PqResult<()> {
        let mut s = self.lock();
        if slot >= s.held.len() {
            return Ok(());
        }
        s.held[slot] = s.held[slot].max(held);
        s.out[slot] = s.out[slot].saturating_add(out);
        let total = s
            .held
            .iter()
            .chain(&s.out)
            .fold(0u64, |a, b| a.saturating_add(*b));
        if s.batch_rows > 1 && total > self.budget {
            drop(s);
            return Err(self.refuse(Refusal::OverBudget));
        }
        let pages = s.held.iter().fold(0u64, |a, b| a.saturating_add(*b));
        if s.batch_rows <= 1 && pages > self.one_row_pages {
            let columns = s.held.iter().filter(|h| **h > 0).count();
            drop(s);
            return Err(self.refuse(Refusal::TooLarge(format!(
                "reading this row holds pages of {columns} columns at once, {pages} bytes \
                 decoded, over the batch budget plus one page ({} bytes): convert it again \
                 with a larger --batch-memory (at least {pages} bytes)",
                self.one_row_pages
            ))));
        }
        Ok(())
    }
}

/// What a page reader needs to know of its column.
#[derive(Debug, Clone)]
pub struct ColumnInfo {
    /// The column's path, dotted (`source_img.bytes`), for errors.
    pub name: String,
    pub physical: PhysicalType,
    pub type_length: i32,
    pub max_def: i16,
    pub max_rep: i16,
}

/// A decoded page header.
#[derive(Debug, Clone, Default)]
struct Header {
    len: u64,
    kind: i32,
    uncompressed: i32,
    compressed: i32,
    num_values: i32,
    encoding: i32,
    def_encoding: i32,
    rep_encoding: i32,
    is_sorted: bool,
    // Data page v2.
    num_nulls: i32,
    num_rows: i32,
    def_len: i32,
    rep_len: i32,
    is_compressed: bool,
}

const DATA_PAGE: i32 = 0;
const INDEX_PAGE: i32 = 1;
const DICTIONARY_PAGE: i32 = 2;
const DATA_PAGE_V2: i32 = 3;

fn parse_header(bytes: &[u8]) -> thrift::Result<Header> {
    let mut r = Compact::new(bytes);
    let mut h = Header {
        is_compressed: true,
        ..Header::default()
    };
    let mut seen = [false; 3];
    r.read_struct(|r, id, ty| {
        match id {
            1 => (h.kind, seen[0]) = (int32(r, ty)?, true),
            2 => (h.uncompressed, seen[1]) = (int32(r, ty)?, true),
            3 => (h.compressed, seen[2]) = (int32(r, ty)?, true),
            5 if ty == thrift::STRUCT => r.read_struct(|r, id, ty| {
                match id {
                    1 => h.num_values = int32(r, ty)?,
                    2 => h.encoding = int32(r, ty)?,
                    3 => h.def_encoding = int32(r, ty)?,
                    4 => h.rep_encoding = int32(r, ty)?,
                    _ => r.skip(ty)?,
                }
                Ok(())
            })?,
            7 if ty == thrift::STRUCT => r.read_struct(|r, id, ty| {
                match id {
                    1 => h.num_values = int32(r, ty)?,
                    2 => h.encoding = int32(r, ty)?,
                    3 => h.is_sorted = r.boolean(ty)?,
                    _ => r.skip(ty)?,
                }
                Ok(())
            })?,
            8 if ty == thrift::STRUCT => r.read_struct(|r, id, ty| {
                match id {
                    1 => h.num_values = int32(r, ty)?,
                    2 => h.num_nulls = int32(r, ty)?,
                    3 => h.num_rows = int32(r, ty)?,
                    4 => h.encoding = int32(r, ty)?,
                    5 => h.def_len = int32(r, ty)?,
                    6 => h.rep_len = int32(r, ty)?,
                    7 => h.is_compressed = r.boolean(ty)?,
                    _ => r.skip(ty)?,
                }
                Ok(())
            })?,
            _ => r.skip(ty)?,
        }
        Ok(())
    })?;
    if seen != [true; 3] {
        return Err("a page header without its type or sizes".into());
    }
    h.len = r.pos() as u64;
    Ok(h)
}

fn int32(r: &mut Compact, ty: u8) -> thrift::Result<i32> {
    let v = r.int(ty)?;
    i32::try_from(v).map_err(|_| format!("{v} in a 32-bit field"))
}

#[allow(deprecated)]
fn encoding(e: i32) -> Result<Encoding, String> {
    Ok(match e {
        0 => Encoding::PLAIN,
        2 => Encoding::PLAIN_DICTIONARY,
        3 => Encoding::RLE,
        4 => Encoding::BIT_PACKED,
        5 => Encoding::DELTA_BINARY_PACKED,
        6 => Encoding::DELTA_LENGTH_BYTE_ARRAY,
        7 => Encoding::DELTA_BYTE_ARRAY,
        8 => Encoding::RLE_DICTIONARY,
        9 => Encoding::BYTE_STREAM_SPLIT,
        other => return Err(format!("unknown encoding {other}")),
    })
}

/// The pages of one column chunk, as the `parquet` crate's column reader takes them.
pub struct ChunkPages {
    object: Object,
    column: Arc<ColumnInfo>,
    /// The column's slot in the meter.
    slot: usize,
    meter: Arc<Meter>,
    codec: Codec,
    /// Where the next page header starts, and where the chunk ends.
    pos: u64,
    end: u64,
    /// Largest decoded page accepted.
    max_page: u64,
    peeked: Option<Header>,
    /// The largest entry of the chunk's dictionary (0 before its dictionary page).
    dict_max: u64,
    /// Whether the chunk's dictionary page has been read.
    have_dict: bool,
    records: RecordCounter,
    /// "row group 3, column \"after\"": where errors happen.
    at: Arc<str>,
}

impl ChunkPages {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        object: Object,
        column: Arc<ColumnInfo>,
        slot: usize,
        meter: Arc<Meter>,
        codec: Codec,
        range: (u64, u64),
        max_page: u64,
        at: Arc<str>,
    ) -> ChunkPages {
        ChunkPages {
            object,
            column,
            slot,
            meter,
            codec,
            pos: range.0,
            end: range.0.saturating_add(range.1),
            max_page,
            peeked: None,
            dict_max: 0,
            have_dict: false,
            records: RecordCounter::default(),
            at,
        }
    }

    fn err(&self, what: impl std::fmt::Display) -> ParquetError {
        ParquetError::General(format!("{}, page at byte {}: {what}", self.at, self.pos))
    }

    /// The next page's header (kept for `get_next_page`), or `None` at the chunk's end.
    fn header(&mut self) -> PqResult<Option<Header>> {
        if let Some(h) = &self.peeked {
            return Ok(Some(h.clone()));
        }
        let avail = self.end.saturating_sub(self.pos);
        if avail == 0 {
            return Ok(None);
        }
        let mut want = avail.min(4 << 10);
        let h = loop {
            let bytes = self.object.get_bytes(self.pos, want as usize)?;
            match parse_header(&bytes) {
                Ok(h) => break h,
                Err(_) if want < avail && want < MAX_HEADER_BYTES => {
                    want = (want * 16).min(avail).min(MAX_HEADER_BYTES);
                }
                Err(e) => return Err(self.err(format_args!("malformed page header: {e}"))),
            }
        };
        if h.compressed < 0 || h.uncompressed < 0 || h.num_values < 0 {
            return Err(self.err("a page header with negative sizes"));
        }
        let body_end = self.pos + h.len + h.compressed as u64;
        if body_end > self.end {
            return Err(self.err(format_args!(
                "the page claims {} bytes; the column chunk ends {} bytes after its header",
                h.compressed,
                self.end - self.pos - h.len
            )));
        }
        self.peeked = Some(h.clone());
        Ok(Some(h))
    }

    /// Moves past the page whose header was read.
    fn advance(&mut self, h: &Header) {
        self.peeked = None;
        self.pos += h.len + h.compressed as u64;
    }

    /// What decoding this page may add to the batch, in bytes; charged before its body is
    /// read.
    fn cost(&self, h: &Header) -> u64 {
        let nv = h.num_values as u64;
        let flat = self.column.max_rep == 0;
        let rows = self.meter.batch_rows() as u64;
        // A flat column gives one value per row: a batch takes at most `rows` of the page.
        let taken = if flat { nv.min(rows.max(1)) } else { nv };
        let width = match self.column.physical {
            PhysicalType::BYTE_ARRAY => None,
            PhysicalType::FIXED_LEN_BYTE_ARRAY => Some(self.column.type_length.max(0) as u64),
            PhysicalType::INT96 => Some(12),
            _ => Some(8),
        };
        let values = match h.encoding {
            // Dictionary indices: each value is a dictionary entry.
            2 | 8 => taken.saturating_mul(width.unwrap_or(self.dict_max)),
            // Each value shares a prefix with the one before: at most the page's bytes each.
            7 => taken.saturating_mul(h.uncompressed as u64),
            // Bit-packed integers and booleans: a few bytes a value.
            3..=5 => nv.saturating_mul(8),
            // PLAIN, DELTA_LENGTH_BYTE_ARRAY, BYTE_STREAM_SPLIT: the page's bytes.
            _ => (h.uncompressed as u64).max(nv.saturating_mul(width.unwrap_or(0))),
        };
        values.saturating_add(taken.saturating_mul(PER_VALUE))
    }

    fn read_page(&mut self, h: Header) -> PqResult<Page> {
        let uncompressed = h.uncompressed as u64;
        if uncompressed > self.max_page {
            self.advance(&h);
            let detail = format!(
                "{}: a page of {uncompressed} bytes, over the limit of {} (a cell over the \
                 image limit, --max-image-size, is refused before it is read)",
                self.at, self.max_page
            );
            return Err(self.meter.refuse(Refusal::TooLarge(detail)));
        }
        let held = uncompressed
            + if self.codec == Codec::Uncompressed {
                0
            } else {
                h.compressed as u64
            };
        let out = if h.kind == DICTIONARY_PAGE {
            uncompressed
        } else {
            self.cost(&h)
        };
        if (h.kind == DATA_PAGE || h.kind == DATA_PAGE_V2)
            && matches!(h.encoding, 2 | 8)
            && !self.have_dict
        {
            return Err(self.err("a dictionary-encoded page before any dictionary page"));
        }
        self.meter.charge(self.slot, held, out)?;
        let body_at = self.pos + h.len;
        let body = self.object.get_bytes(body_at, h.compressed as usize)?;
        self.advance(&h);
        let at = self.at.clone();
        let fail = |e: String| ParquetError::General(format!("{at}, page at byte {body_at}: {e}"));
        let enc = |e: i32| encoding(e).map_err(fail);
        match h.kind {
            DICTIONARY_PAGE => {
                let mut buf =
                    codec::decompress(self.codec, &body, uncompressed as usize).map_err(fail)?;
                drop(body);
                self.dict_max = match self.column.physical {
                    PhysicalType::BYTE_ARRAY => {
                        let (max, used) = largest_entry(&buf, h.num_values as u64)
                            .map_err(|e| fail(format!("dictionary page: {e}")))?;
                        // Only its entries: the `parquet` crate divides the rest by their
                        // count.
                        buf.truncate(used);
                        max
                    }
                    _ => 0,
                };
                self.have_dict = true;
                Ok(Page::DictionaryPage {
                    buf,
                    num_values: h.num_values as u32,
                    encoding: enc(h.encoding)?,
                    is_sorted: h.is_sorted,
                })
            }
            DATA_PAGE => {
                let buf =
                    codec::decompress(self.codec, &body, uncompressed as usize).map_err(fail)?;
                // A compressed body is not needed once decompressed.
                drop(body);
                let (rep, def, values) = v1_split(&buf, &self.column, &h).map_err(fail)?;
                let present = self.check_levels(rep, def, &h).map_err(fail)?;
                if self.column.max_rep > 0 {
                    self.count_records(rep, h.num_values)?;
                }
                check_values(values, h.encoding, present, &self.column).map_err(fail)?;
                let buf = if missing_bit_width(values, h.encoding, present).map_err(fail)? {
                    let mut with = Vec::with_capacity(buf.len() + 1);
                    with.extend_from_slice(&buf);
                    with.push(0);
                    Bytes::from(with)
                } else {
                    buf
                };
                Ok(Page::DataPage {
                    buf,
                    num_values: h.num_values as u32,
                    encoding: enc(h.encoding)?,
                    def_level_encoding: enc(h.def_encoding)?,
                    rep_level_encoding: enc(h.rep_encoding)?,
                    statistics: None,
                })
            }
            DATA_PAGE_V2 => {
                if h.def_len < 0
                    || h.rep_len < 0
                    || h.num_nulls < 0
                    || h.num_rows < 0
                    || h.num_nulls > h.num_values
                    || h.num_rows > h.num_values
                {
                    return Err(fail("a data page v2 header with impossible counts".into()));
                }
                let levels = h.def_len as u64 + h.rep_len as u64;
                if levels > body.len() as u64 || levels > uncompressed {
                    return Err(fail(format!(
                        "{levels} bytes of levels in a page of {} bytes",
                        body.len()
                    )));
                }
                let lv = &body[..levels as usize];
                let (rep, def) = lv.split_at(h.rep_len as usize);
                let present = self.check_levels(rep, def, &h).map_err(fail)?;
                if present.is_some_and(|p| p != (h.num_values - h.num_nulls) as u64) {
                    return Err(fail(format!(
                        "{} values and {} nulls in the header, {} values in the levels",
                        h.num_values,
                        h.num_nulls,
                        present.unwrap_or(0)
                    )));
                }
                if self.column.max_rep > 0 {
                    self.count_records(rep, h.num_values)?;
                }
                let codec = if h.is_compressed {
                    self.codec
                } else {
                    Codec::Uncompressed
                };
                let raw_values = body.slice(levels as usize..);
                let values =
                    codec::decompress(codec, &raw_values, (uncompressed - levels) as usize)
                        .map_err(fail)?;
                // All nulls: whatever follows the levels is not values (the `parquet` crate
                // divides by the count of non-null values it expects).
                let values = if h.num_nulls == h.num_values {
                    Bytes::new()
                } else {
                    values
                };
                let present = Some((h.num_values - h.num_nulls) as u64);
                check_values(&values, h.encoding, present, &self.column).map_err(fail)?;
                let values = if missing_bit_width(&values, h.encoding, present).map_err(fail)? {
                    Bytes::from_static(&[0])
                } else {
                    values
                };
                let buf =
                    if values.as_ptr() == raw_values.as_ptr() && values.len() == raw_values.len() {
                        // Uncompressed: levels and values are the body as it was read.
                        body
                    } else {
                        let mut buf = Vec::with_capacity(levels as usize + values.len());
                        buf.extend_from_slice(lv);
                        buf.extend_from_slice(&values);
                        Bytes::from(buf)
                    };
                Ok(Page::DataPageV2 {
                    buf,
                    num_values: h.num_values as u32,
                    encoding: enc(h.encoding)?,
                    num_nulls: h.num_nulls as u32,
                    num_rows: h.num_rows as u32,
                    def_levels_byte_len: h.def_len as u32,
                    rep_levels_byte_len: h.rep_len as u32,
                    is_compressed: false,
                    statistics: None,
                })
            }
            other => Err(fail(format!("unknown page type {other}"))),
        }
    }

    /// Checks a data page's levels (RLE runs; the deprecated BIT_PACKED levels are left to
    /// the `parquet` crate, which bounds them by their length).
    /// Returns the number of values present (not null), when the levels say it.
    fn check_levels(&self, rep: &[u8], def: &[u8], h: &Header) -> Result<Option<u64>, String> {
        let count = h.num_values as u64;
        let mut present = (self.column.max_def == 0).then_some(count);
        for (data, max, encoding, what) in [
            (rep, self.column.max_rep, h.rep_encoding, "repetition"),
            (def, self.column.max_def, h.def_encoding, "definition"),
        ] {
            if max > 0 && (h.kind == DATA_PAGE_V2 || encoding == 3) {
                let at_max = crate::levels::check(data, max, count)
                    .map_err(|e| format!("{what} levels: {e}"))?;
                if what == "definition" {
                    present = Some(at_max);
                }
            }
        }
        Ok(present)
    }

    /// Counts the rows of a list column's page; a row over
    /// [`MAX_ROW_LEVELS`](crate::levels::MAX_ROW_LEVELS) values is
    /// refused before the page is decoded.
    fn count_records(&mut self, rep: &[u8], num_values: i32) -> PqResult<()> {
        let width = (16 - (self.column.max_rep as u16).leading_zeros()) as u8;
        self.records
            .count(rep, width, num_values as u64)
            .map_err(|e| {
                let detail = format!("{}: {e}", self.at);
                self.meter.refuse(Refusal::TooLarge(detail))
            })
    }
}

/// Pages passed over: index pages, and data pages of no values (nothing to decode; the
/// `parquet` crate divides by their count).
fn skipped(h: &Header) -> bool {
    h.kind == INDEX_PAGE || ((h.kind == DATA_PAGE || h.kind == DATA_PAGE_V2) && h.num_values == 0)
}

/// A v1 data page cut into its repetition levels, definition levels and values.
type V1Parts<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// A v1 data page's repetition levels, definition levels and values: each level run (RLE)
/// after a 4-byte length, or bit-packed (the deprecated BIT_PACKED) in a length the count
/// gives; a level the column does not have is empty.
fn v1_split<'a>(buf: &'a [u8], column: &ColumnInfo, h: &Header) -> Result<V1Parts<'a>, String> {
    let mut at = 0usize;
    let mut parts: [&[u8]; 2] = [&[], &[]];
    for (i, (max, encoding)) in [
        (column.max_rep, h.rep_encoding),
        (column.max_def, h.def_encoding),
    ]
    .into_iter()
    .enumerate()
    {
        if max == 0 {
            continue;
        }
        let len = if encoding == 4 {
            let width = (16 - (max as u16).leading_zeros()) as usize;
            (h.num_values as usize * width).div_ceil(8)
        } else {
            let Some(l) = buf.get(at..at + 4) else {
                return Err("a data page too short for its levels".into());
            };
            at += 4;
            u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize
        };
        let end = at
            .checked_add(len)
            .filter(|&e| e <= buf.len())
            .ok_or_else(|| format!("levels of {len} bytes in a page of {}", buf.len()))?;
        parts[i] = &buf[at..end];
        at = end;
    }
    Ok((parts[0], parts[1], &buf[at..]))
}

/// Checks what the `parquet` crate's decoders assume of a page's values without checking:
/// dictionary indices are at most 32 bits wide; fixed-width values split into byte streams
/// fill them exactly (`present` values, when the levels say how many).
fn check_values(
    values: &[u8],
    encoding: i32,
    present: Option<u64>,
    column: &ColumnInfo,
) -> Result<(), String> {
    if let (2 | 8, Some(&width)) = (encoding, values.first())
        && width > 32
    {
        return Err(format!("dictionary indices {width} bits wide"));
    }
    if encoding == 9 {
        let width = match column.physical {
            PhysicalType::INT32 | PhysicalType::FLOAT => 4,
            PhysicalType::INT64 | PhysicalType::DOUBLE => 8,
            PhysicalType::FIXED_LEN_BYTE_ARRAY => column.type_length.max(1) as u64,
            _ => return Err("BYTE_STREAM_SPLIT values of a variable-width type".into()),
        };
        let expected = present.map(|p| p.saturating_mul(width));
        if values.len() as u64 % width != 0 || expected.is_some_and(|e| e != values.len() as u64) {
            return Err(format!(
                "{} bytes of BYTE_STREAM_SPLIT values of {width} bytes each ({} expected)",
                values.len(),
                present.map_or("?".to_string(), |p| p.to_string())
            ));
        }
        if present.is_none() {
            return Err("BYTE_STREAM_SPLIT values whose count the levels do not give".into());
        }
    }
    Ok(())
}

/// Whether a dictionary-encoded page lacks the bit width its indices start with, which the
/// `parquet` crate reads without checking that any byte is there. A page with no value to
/// decode (all nulls) may lack it: the caller then supplies a width of 0. A page with values
/// may not.
fn missing_bit_width(values: &[u8], encoding: i32, present: Option<u64>) -> Result<bool, String> {
    if !matches!(encoding, 2 | 8) || !values.is_empty() {
        return Ok(false);
    }
    match present {
        Some(0) => Ok(true),
        Some(n) => Err(format!(
            "{n} dictionary-encoded values, but no bytes for them (not even their bit width)"
        )),
        None => Err("dictionary-encoded values with no bytes (not even their bit width)".into()),
    }
}

/// The length of the longest of the `count` PLAIN byte arrays in `buf` (a dictionary), and
/// the bytes they take.
fn largest_entry(buf: &[u8], count: u64) -> Result<(u64, usize), String> {
    let mut pos = 0usize;
    let mut max = 0u64;
    for i in 0..count {
        let Some(len) = buf.get(pos..pos + 4) else {
            return Err(format!("entry {i} of {count} is cut short"));
        };
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as u64;
        pos += 4;
        if len > (buf.len() - pos) as u64 {
            return Err(format!("entry {i} claims {len} bytes"));
        }
        pos += len as usize;
        max = max.max(len);
    }
    Ok((max, pos))
}

impl Iterator for ChunkPages {
    type Item = PqResult<Page>;

    fn next(&mut self) -> Option<Self::Item> {
        self.get_next_page().transpose()
    }
}

impl PageReader for ChunkPages {
    fn get_next_page(&mut self) -> PqResult<Option<Page>> {
        loop {
            let Some(h) = self.header()? else {
                return Ok(None);
            };
            if skipped(&h) {
                self.advance(&h);
                continue;
            }
            return self.read_page(h).map(Some);
        }
    }

    fn peek_next_page(&mut self) -> PqResult<Option<PageMetadata>> {
        loop {
            let Some(h) = self.header()? else {
                return Ok(None);
            };
            let flat = self.column.max_rep == 0;
            if skipped(&h) {
                self.advance(&h);
                continue;
            }
            return Ok(Some(match h.kind {
                DICTIONARY_PAGE => PageMetadata {
                    num_rows: None,
                    num_levels: None,
                    is_dict: true,
                },
                DATA_PAGE_V2 => PageMetadata {
                    num_rows: Some(h.num_rows as usize),
                    num_levels: Some(h.num_values as usize),
                    is_dict: false,
                },
                _ => PageMetadata {
                    num_rows: flat.then_some(h.num_values as usize),
                    num_levels: Some(h.num_values as usize),
                    is_dict: false,
                },
            }));
        }
    }

    fn skip_next_page(&mut self) -> PqResult<()> {
        if let Some(h) = self.header()? {
            self.advance(&h);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dictionary_entry_longer_than_its_page_is_refused() {
        let mut dict = 3u32.to_le_bytes().to_vec();
        dict.extend_from_slice(b"abc");
        dict.extend_from_slice(&1u32.to_le_bytes());
        dict.push(b'z');
        assert_eq!(largest_entry(&dict, 2).unwrap(), (3, 12));
        assert_eq!(largest_entry(&dict, 0).unwrap(), (0, 0));
        assert!(largest_entry(&dict, 3).is_err());
        let mut lying = u32::MAX.to_le_bytes().to_vec();
        lying.push(0);
        assert!(largest_entry(&lying, 1).is_err());
    }

    #[test]
    fn a_dictionary_page_without_its_bit_width_is_refused_unless_all_null() {
        // All nulls: a width of 0 is supplied.
        assert!(missing_bit_width(&[], 8, Some(0)).unwrap());
        assert!(missing_bit_width(&[], 2, Some(0)).unwrap());
        // Values, but no bytes: refused, whether the levels say how many or not.
        let e = missing_bit_width(&[], 8, Some(3)).unwrap_err();
        assert!(e.contains("3 dictionary-encoded values"), "{e}");
        assert!(missing_bit_width(&[], 8, None).is_err());
        // A width present, or another encoding: nothing to do.
        assert!(!missing_bit_width(&[1, 0], 8, Some(3)).unwrap());
        assert!(!missing_bit_width(&[], 0, Some(3)).unwrap());
    }

    #[test]
    fn the_meter_refuses_a_batch_over_the_budget_but_not_one_row() {
        let m = Meter::new(2, 100, 300);
        m.start_batch(4);
        m.charge(0, 30, 30).unwrap();
        assert!(m.charge(1, 30, 30).is_err());
        assert_eq!(m.refusal(), Some(Refusal::OverBudget));
        m.start_batch(1);
        m.charge(0, 300, 300).unwrap();
        assert_eq!(m.refusal(), None);
    }

    #[test]
    fn one_row_may_hold_the_budget_and_one_page_but_no_more() {
        let m = Meter::new(3, 100, 300);
        m.start_batch(1);
        m.charge(0, 300, 300).unwrap();
        m.charge(1, 100, 100).unwrap();
        assert_eq!(m.refusal(), None);
        assert!(m.charge(2, 1, 1).is_err());
        assert!(matches!(m.refusal(), Some(Refusal::TooLarge(d)) if d.contains("--batch-memory")));
    }
}
