//! Reading one Parquet file of a dataset: its footer, its schema checked against the
//! mapping, and its rows one row group at a time, in batches small enough for the memory
//! budget (the reader streams each column chunk page by page, so a 500 MB row group never
//! sits in memory whole).

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow_schema::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};

use crate::cell::{self, Cell};
use crate::mapping::Mapping;
use crate::source::Object;
use editshard::{Error, Result};

/// Where a row is: the file (its path under SOURCE), the row group, the row from 0 across
/// the whole file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub file_index: usize,
    pub file: Arc<str>,
    pub row_group: u64,
    pub row: u64,
}

/// One row: its projected columns, named, in the file's order.
#[derive(Debug, Clone)]
pub struct Row {
    pub pos: Pos,
    pub cells: Vec<(Arc<str>, Cell)>,
}

impl Row {
    pub fn get(&self, column: &str) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|(n, _)| &**n == column)
            .map(|(_, c)| c)
    }
}

/// A row group that could not be read past some row.
#[derive(Debug)]
pub struct RowGroupError {
    /// Rows of the row group delivered before the error (from the first one read).
    pub delivered: u64,
    pub reason: String,
}

pub struct ParquetFile {
    pub index: usize,
    pub rel: Arc<str>,
    object: Object,
    meta: ArrowReaderMetadata,
    /// The columns read (all but `null`-typed ones), by index in the file's schema.
    projection: Vec<usize>,
    names: Vec<Arc<str>>,
    first_rows: Vec<u64>,
}

impl ParquetFile {
    /// Reads the footer and checks the mapping's columns: every column it names must be there
    /// (unless `optional`), and image columns must hold images.
    pub fn open(object: Object, index: usize, rel: &str, mapping: &Mapping) -> Result<ParquetFile> {
        let malformed = |e: String| {
            Error::rejected(format!(
                "not a readable Parquet file: {e}; the file is damaged or not Parquet: \
                 download it again, or leave it out (the mapping's `files`, --files-from)"
            ))
            .in_shard(rel.to_string())
        };
        let footer = crate::footer::load(&object).map_err(malformed)?;
        let hf = hf_features(&footer);
        // The Arrow schema some writers embed (`ARROW:schema`, an IPC message) is not read:
        // the Parquet schema gives the types this reader works with.
        let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
        let meta = ArrowReaderMetadata::try_new(footer, options)
            .map_err(|e| malformed(format!("cannot read the Parquet schema: {e}")))?;
        let schema = meta.schema().clone();
        let present = |c: &str| {
            schema
                .field_with_name(c)
                .ok()
                .filter(|f| f.data_type() != &DataType::Null)
        };
        let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        for c in mapping.columns() {
            if present(c).is_none() && !mapping.is_optional(c) {
                return Err(Error::invalid(format!(
                    "{rel}: the {} mapping needs column {c:?}, which the file does not have \
                     (its columns: {}); check the preset or the mapping file, or list the \
                     column under `optional`",
                    mapping.name,
                    columns.join(", ")
                )));
            }
        }
        let images = [
            Some(&mapping.source),
            Some(&mapping.output),
            mapping.mask.as_ref(),
        ];
        for c in images.into_iter().flatten() {
            let Some(field) = present(c) else { continue };
            let declared = hf
                .as_ref()
                .and_then(|h| h.get(c))
                .and_then(|f| f.get("_type"))
                .and_then(|t| t.as_str());
            if !cell::is_image_type(field.data_type()) || declared.is_some_and(|t| t != "Image") {
                return Err(Error::invalid(format!(
                    "{rel}: column {c:?} should hold images but is {} ({}): check the mapping",
                    field.data_type(),
                    declared.map_or("no Hugging Face feature".to_string(), |t| format!(
                        "Hugging Face feature {t}"
                    ))
                )));
            }
        }
        let projection: Vec<usize> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| f.data_type() != &DataType::Null)
            .map(|(i, _)| i)
            .collect();
        let names = projection
            .iter()
            .map(|&i| Arc::from(schema.field(i).name().as_str()))
            .collect();
        let mut first_rows = Vec::new();
        let mut n = 0u64;
        for rg in meta.metadata().row_groups() {
            first_rows.push(n);
            n += u64::try_from(rg.num_rows()).unwrap_or(0);
        }
        Ok(ParquetFile {
            index,
            rel: Arc::from(rel),
            object,
            meta,
            projection,
            names,
            first_rows,
        })
    }

    pub fn row_groups(&self) -> usize {
        self.first_rows.len()
    }

    pub fn rows_in(&self, rg: usize) -> u64 {
        u64::try_from(self.meta.metadata().row_group(rg).num_rows()).unwrap_or(0)
    }

    pub fn first_row(&self, rg: usize) -> u64 {
        self.first_rows[rg]
    }

    /// Rows per batch so a batch of the projected columns stays near `budget` bytes.
    fn batch_rows(&self, rg: usize, budget: u64) -> usize {
        let g = self.meta.metadata().row_group(rg);
        let bytes: i64 = self
            .projection
            .iter()
            .map(|&i| {
                g.column(i)
                    .uncompressed_size()
                    .max(g.column(i).compressed_size())
            })
            .sum();
        let rows = g.num_rows().max(1) as u64;
        let per_row = (bytes.max(1) as u64).div_ceil(rows);
        (budget / per_row.max(1)).clamp(1, 1024) as usize
    }

    /// Reads row group `rg` from its row `skip` on, in batches of about `budget` bytes,
    /// handing each row to `f`; stops at the first error `f` returns, or early when it
    /// returns `Break` (which the result passes on).
    pub fn read_row_group(
        &self,
        rg: usize,
        skip: u64,
        budget: u64,
        mut f: impl FnMut(Row) -> Result<ControlFlow<()>>,
    ) -> std::result::Result<Result<ControlFlow<()>>, RowGroupError> {
        self.read_columns(rg, skip, budget, &self.projection, &self.names, &mut f)
    }

    /// The value of `column` in row `row` of row group `rg`, reading that column only.
    pub fn cell_at(&self, rg: usize, row: u64, column: &str) -> Result<Cell> {
        let schema = self.meta.schema();
        let Ok(i) = schema.index_of(column) else {
            return Ok(Cell::Null);
        };
        let mut out = Cell::Null;
        let name: Arc<str> = Arc::from(column);
        let read = self.read_columns(rg, row, 1 << 20, &[i], &[name], &mut |r: Row| {
            out = r.cells.into_iter().next().map_or(Cell::Null, |(_, c)| c);
            Ok(ControlFlow::Break(()))
        });
        match read {
            Ok(_) => Ok(out),
            Err(e) => Err(Error::malformed(e.reason).in_shard(self.rel.to_string())),
        }
    }

    fn read_columns(
        &self,
        rg: usize,
        skip: u64,
        budget: u64,
        columns: &[usize],
        names: &[Arc<str>],
        f: &mut dyn FnMut(Row) -> Result<ControlFlow<()>>,
    ) -> std::result::Result<Result<ControlFlow<()>>, RowGroupError> {
        let fail = |delivered: u64, e: &dyn std::fmt::Display| RowGroupError {
            delivered,
            reason: e.to_string(),
        };
        let mask = ProjectionMask::roots(self.meta.parquet_schema(), columns.iter().copied());
        let batch = self.batch_rows(rg, budget);
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(
            self.object.clone(),
            self.meta.clone(),
        )
        .with_row_groups(vec![rg])
        .with_projection(mask)
        .with_batch_size(batch)
        .build()
        .map_err(|e| fail(0, &e))?;
        let first = self.first_rows[rg];
        let mut row_in_rg = 0u64;
        for b in reader {
            let b = b.map_err(|e| fail(row_in_rg.saturating_sub(skip), &e))?;
            for r in 0..b.num_rows() {
                if row_in_rg >= skip {
                    let mut cells = Vec::with_capacity(names.len());
                    for (name, col) in names.iter().zip(b.columns()) {
                        let c = cell::read(col.as_ref(), r).map_err(|e| {
                            fail(row_in_rg - skip, &format!("column {name:?}: {e}"))
                        })?;
                        cells.push((name.clone(), c));
                    }
                    let row = Row {
                        pos: Pos {
                            file_index: self.index,
                            file: self.rel.clone(),
                            row_group: rg as u64,
                            row: first + row_in_rg,
                        },
                        cells,
                    };
                    match f(row) {
                        Ok(ControlFlow::Continue(())) => {}
                        stop => return Ok(stop),
                    }
                }
                row_in_rg += 1;
            }
        }
        Ok(Ok(ControlFlow::Continue(())))
    }
}

/// The `datasets` feature schema from the file's `huggingface` metadata key, if present:
/// column name -> feature (`{"_type": "Image"}`, `{"dtype": "string", "_type": "Value"}`...).
pub fn hf_features(
    meta: &parquet::file::metadata::ParquetMetaData,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    let text = meta
        .file_metadata()
        .key_value_metadata()?
        .iter()
        .find(|kv| kv.key == "huggingface")?
        .value
        .as_deref()?;
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let features = v
        .get("info")
        .and_then(|i| i.get("features"))
        .or_else(|| v.get("features"))?;
    features.as_object().cloned()
}
