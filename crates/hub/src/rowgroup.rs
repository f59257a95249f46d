//! One row group read under the memory budget: the `parquet` crate's Arrow decoder is fed
//! by this crate's page readers ([`crate::pages`]), which charge every page to a shared
//! [`Meter`] before it is decoded. A batch starts at the size the footer suggests; when the
//! meter finds it would take more than the budget (a dictionary repeating a large value, a
//! footer understating sizes), the read restarts at the batch's first row with half as
//! many rows, down to one. A single row is read whatever its size, unless one of its cells
//! is over the cell limit: that row alone is refused (the read goes on after it), before
//! anything of it is decoded.
//!
//! Every row the footer lists is delivered, refused, or counted in the error: when the
//! pages end early, the rows they do not hold come back as missing.

use std::ops::ControlFlow;
use std::sync::Arc;

use parquet::arrow::arrow_reader::{
    ParquetRecordBatchReader, RowGroups, RowSelection, RowSelector,
};
use parquet::arrow::{ProjectionMask, parquet_to_arrow_field_levels};
use parquet::basic::Compression;
use parquet::column::page::{PageIterator, PageReader};
use parquet::errors::{ParquetError, Result as PqResult};
use parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData, RowGroupMetaData};

use crate::cell;
use crate::codec::Codec;
use crate::pages::{ChunkPages, Meter, Refusal};
use crate::reader::{Delivery, ParquetFile, Pos, ReadLimits, Row, RowGroupError};
use editshard::Result;

/// The most rows decoded at once, whatever the budget allows.
const MAX_BATCH_ROWS: usize = 1024;
/// A page may be this much larger than the cell limit (its levels and value lengths).
const PAGE_SLACK: u64 = 1 << 20;

/// Which rows of a row group a read wants.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wanted<'a> {
    /// Row `n` and every one after it.
    From(u64),
    /// These rows, in increasing order.
    Rows(&'a [u64]),
}

impl Wanted<'_> {
    fn len(&self, promised: u64) -> u64 {
        match self {
            Wanted::From(n) => promised.saturating_sub(*n),
            Wanted::Rows(r) => r.len() as u64,
        }
    }

    /// The `k`-th row wanted.
    fn row(&self, k: u64) -> u64 {
        match self {
            Wanted::From(n) => n + k,
            Wanted::Rows(r) => r[k as usize],
        }
    }

    /// The rows from the `k`-th wanted on, as the reader's selection.
    fn selection(&self, k: u64, promised: u64) -> RowSelection {
        let mut out = Vec::new();
        match self {
            Wanted::From(n) => {
                out.push(RowSelector::skip((n + k) as usize));
                out.push(RowSelector::select((promised - n - k) as usize));
            }
            Wanted::Rows(rows) => {
                let mut at = 0u64;
                for &r in &rows[k as usize..] {
                    if r > at {
                        out.push(RowSelector::skip((r - at) as usize));
                    }
                    out.push(RowSelector::select(1));
                    at = r + 1;
                }
            }
        }
        // Adjacent selectors of one kind are merged by the conversion.
        RowSelection::from(out)
    }
}

/// Reads the `wanted` rows of row group `rg` of `file`, columns `roots` (top-level fields,
/// in schema order) named `names`, handing each to `f`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn read(
    file: &ParquetFile,
    rg: usize,
    wanted: Wanted,
    limits: ReadLimits,
    roots: &[usize],
    names: &[Arc<str>],
    f: &mut dyn FnMut(Delivery) -> Result<ControlFlow<()>>,
) -> std::result::Result<Result<ControlFlow<()>>, RowGroupError> {
    let promised = file.rows_in(rg);
    if let Wanted::Rows(rows) = wanted
        && rows.iter().any(|&r| r >= promised)
    {
        return Err(RowGroupError {
            delivered: 0,
            reason: format!("rows past the {promised} of row group {rg} asked for"),
            missing: true,
        });
    }
    let total = wanted.len(promised);
    let descr = file.meta.parquet_schema();
    let mask = ProjectionMask::roots(descr, roots.iter().copied());
    let leaves: Vec<usize> = (0..descr.num_columns())
        .filter(|&l| mask.leaf_included(l))
        .collect();
    let flat = leaves.iter().all(|&l| file.columns[l].max_rep == 0);
    // Rows delivered or refused so far: the next is the `k`-th wanted.
    let mut k = 0u64;
    let fail = |k: u64, reason: String| RowGroupError {
        delivered: k,
        reason,
        missing: false,
    };
    let levels = parquet_to_arrow_field_levels(descr, mask, Some(&file.decoded))
        .map_err(|e| fail(k, format!("cannot map the columns to Arrow: {e}")))?;
    let max_page = limits.max_cell.saturating_add(PAGE_SLACK);
    let meter = Arc::new(Meter::new(
        descr.num_columns(),
        limits.batch_bytes,
        max_page,
    ));
    let group = OneRowGroup {
        file,
        rg,
        meter: meter.clone(),
        max_page,
    };
    let mut batch = first_batch(file.meta.metadata().row_group(rg), &leaves, limits);
    'restart: while k < total {
        let mut reader = ParquetRecordBatchReader::try_new_with_row_groups(
            &levels,
            &group,
            batch,
            Some(wanted.selection(k, promised)),
        )
        .map_err(|e| fail(k, e.to_string()))?;
        loop {
            meter.start_batch(batch);
            let b = match reader.next() {
                None => break 'restart,
                Some(Ok(b)) => b,
                Some(Err(e)) => match meter.refusal() {
                    Some(Refusal::OverBudget) if batch > 1 => {
                        batch = (batch / 2).max(1);
                        continue 'restart;
                    }
                    // Which row is too large is known only one row at a time.
                    Some(Refusal::TooLarge(_)) if batch > 1 => {
                        batch = 1;
                        continue 'restart;
                    }
                    Some(Refusal::TooLarge(detail)) => {
                        let row = wanted.row(k);
                        match f(Delivery::Refused(file.pos(rg, row), detail.clone())) {
                            Ok(ControlFlow::Continue(())) => {}
                            stop => return Ok(stop),
                        }
                        k += 1;
                        if !flat {
                            // Skipping past a row of a list column decodes its levels again.
                            return Err(fail(
                                k,
                                format!("not read past the refused row {row}: {detail}"),
                            ));
                        }
                        continue 'restart;
                    }
                    _ => return Err(fail(k, e.to_string())),
                },
            };
            for r in 0..b.num_rows() {
                let mut cells = Vec::with_capacity(names.len());
                for (name, col) in names.iter().zip(b.columns()) {
                    let c = cell::read(col.as_ref(), r)
                        .map_err(|e| fail(k, format!("column {name:?}: {e}")))?;
                    cells.push((name.clone(), c));
                }
                let row = Row {
                    pos: file.pos(rg, wanted.row(k)),
                    cells,
                };
                k += 1;
                match f(Delivery::Row(row)) {
                    Ok(ControlFlow::Continue(())) => {}
                    stop => return Ok(stop),
                }
            }
        }
    }
    if k < total {
        return Err(RowGroupError {
            delivered: k,
            reason: format!(
                "the footer lists {promised} rows in row group {rg}; its pages hold {}",
                wanted.row(k)
            ),
            missing: true,
        });
    }
    Ok(Ok(ControlFlow::Continue(())))
}

/// Rows per first batch, from the footer's sizes (which may lie: the meter has the last
/// word).
fn first_batch(g: &RowGroupMetaData, leaves: &[usize], limits: ReadLimits) -> usize {
    let bytes: u64 = leaves
        .iter()
        .map(|&l| {
            let c = g.column(l);
            c.uncompressed_size().max(c.compressed_size()).max(0) as u64
        })
        .sum();
    let rows = g.num_rows().max(1) as u64;
    // Twice: the page and the values taken from it.
    let per_row = (2 * bytes.max(1)).div_ceil(rows);
    (limits.batch_bytes / per_row.max(1)).clamp(1, MAX_BATCH_ROWS as u64) as usize
}

/// The bytes of a column chunk in its file: from its dictionary page if it has one.
fn chunk_range(c: &ColumnChunkMetaData) -> (u64, u64) {
    let data = c.data_page_offset();
    let start = match c.dictionary_page_offset() {
        Some(d) if d > 0 && d < data => d,
        _ => data,
    };
    (start.max(0) as u64, c.compressed_size().max(0) as u64)
}

/// One row group of a file, as the `parquet` crate's Arrow reader takes it: each column
/// chunk through this crate's page reader.
struct OneRowGroup<'a> {
    file: &'a ParquetFile,
    rg: usize,
    meter: Arc<Meter>,
    max_page: u64,
}

impl RowGroups for OneRowGroup<'_> {
    fn num_rows(&self) -> usize {
        self.file.rows_in(self.rg) as usize
    }

    fn column_chunks(&self, i: usize) -> PqResult<Box<dyn PageIterator>> {
        let chunk = self.file.meta.metadata().row_group(self.rg).column(i);
        let column = self.file.columns[i].clone();
        let codec = match chunk.compression() {
            Compression::UNCOMPRESSED => Codec::Uncompressed,
            Compression::SNAPPY => Codec::Snappy,
            Compression::GZIP(_) => Codec::Gzip,
            Compression::ZSTD(_) => Codec::Zstd,
            other => {
                return Err(ParquetError::General(format!(
                    "column {:?} is compressed with {other}, which this build does not read",
                    column.name
                )));
            }
        };
        let at: Arc<str> = Arc::from(format!("row group {}, column {:?}", self.rg, column.name));
        let pages: Box<dyn PageReader> = Box::new(ChunkPages::new(
            self.file.object.clone(),
            column,
            i,
            self.meter.clone(),
            codec,
            chunk_range(chunk),
            self.max_page,
            at,
        ));
        Ok(Box::new(OneChunk(Some(pages))))
    }

    fn row_groups(&self) -> Box<dyn Iterator<Item = &RowGroupMetaData> + '_> {
        Box::new(std::iter::once(
            self.file.meta.metadata().row_group(self.rg),
        ))
    }

    fn metadata(&self) -> &ParquetMetaData {
        self.file.meta.metadata()
    }
}

/// The page reader of a column's only chunk.
struct OneChunk(Option<Box<dyn PageReader>>);

impl Iterator for OneChunk {
    type Item = PqResult<Box<dyn PageReader>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.take().map(Ok)
    }
}

impl PageIterator for OneChunk {}

impl ParquetFile {
    /// The position of row `row` of row group `rg`.
    pub(crate) fn pos(&self, rg: usize, row: u64) -> Pos {
        Pos {
            file_index: self.index,
            file: self.rel.clone(),
            row_group: rg as u64,
            row: self.first_row(rg) + row,
        }
    }
}
