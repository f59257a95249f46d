//! Reading one Parquet file of a dataset: its footer (checked first, [`crate::footer`]),
//! its schema checked against the mapping, and its rows one row group at a time
//! ([`crate::rowgroup`]: page by page, in batches the memory budget allows).

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow_schema::{DataType, FieldRef, Fields};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};

use crate::cell::Cell;
use crate::mapping::Mapping;
use crate::pages::ColumnInfo;
use crate::source::Object;
use editshard::{Error, Result};

/// What reading may take: the bytes of rows decoded at once (`--batch-memory`), and the
/// largest cell (`--max-image-size`): a page or a row over it is refused before it is
/// decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    pub batch_bytes: u64,
    pub max_cell: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            batch_bytes: 64 << 20,
            max_cell: 256 << 20,
        }
    }
}

/// What a row group read hands over: a row, or a row refused on its own (a cell over the
/// limits) with the reason.
#[derive(Debug)]
pub enum Delivery {
    Row(Row),
    Refused(Pos, String),
}

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
    /// Rows of the row group delivered (or refused) before the error, from the first one
    /// asked for.
    pub delivered: u64,
    pub reason: String,
    /// True when the pages simply ended: the footer lists rows they do not hold.
    pub missing: bool,
}

/// A file's place in the dataset without its footer: its rows per row group, and enough to
/// open it again. A conversion keeps one per file and one opened file at a time, so that
/// footers are not all held at once.
#[derive(Clone)]
pub struct FileOutline {
    pub index: usize,
    pub rel: Arc<str>,
    object: Object,
    rows: Vec<u64>,
}

impl FileOutline {
    pub fn row_groups(&self) -> usize {
        self.rows.len()
    }

    pub fn rows_in(&self, rg: usize) -> u64 {
        self.rows[rg]
    }

    /// Opens the file again; its footer must still list the rows it did.
    pub fn open(&self, mapping: &Mapping) -> Result<ParquetFile> {
        let file = ParquetFile::open(self.object.clone(), self.index, &self.rel, mapping)?;
        let rows: Vec<u64> = (0..file.row_groups()).map(|rg| file.rows_in(rg)).collect();
        if rows != self.rows {
            return Err(Error::invalid(format!(
                "{}: the file changed during the conversion (its footer lists other row \
                 groups now); convert again",
                self.rel
            )));
        }
        Ok(file)
    }
}

pub struct ParquetFile {
    pub index: usize,
    pub rel: Arc<str>,
    pub(crate) object: Object,
    pub(crate) meta: ArrowReaderMetadata,
    /// Each leaf column, as the page reader needs it.
    pub(crate) columns: Vec<Arc<ColumnInfo>>,
    /// The columns read (all but `null`-typed ones), by index in the file's schema.
    projection: Vec<usize>,
    names: Vec<Arc<str>>,
    /// The types the rows are decoded to: the file's, with binary columns as views of the
    /// pages they are in (no copy of an image between the page and the shard).
    pub(crate) decoded: Fields,
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
        crate::schema::check(&schema, hf.as_ref(), mapping)
            .map_err(|e| Error::invalid(format!("{rel}: {e}")))?;
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
        let descr = meta.parquet_schema();
        let columns = (0..descr.num_columns())
            .map(|i| {
                let c = descr.column(i);
                Arc::new(ColumnInfo {
                    name: c.path().string(),
                    physical: c.physical_type(),
                    type_length: c.type_length(),
                    max_def: c.max_def_level(),
                    max_rep: c.max_rep_level(),
                })
            })
            .collect();
        let decoded = schema.fields().iter().map(as_views).collect();
        Ok(ParquetFile {
            index,
            rel: Arc::from(rel),
            object,
            meta,
            columns,
            projection,
            names,
            decoded,
            first_rows,
        })
    }

    /// The file without its footer (see [`FileOutline`]).
    pub fn outline(self) -> FileOutline {
        let rows = (0..self.row_groups()).map(|rg| self.rows_in(rg)).collect();
        FileOutline {
            index: self.index,
            rel: self.rel,
            object: self.object,
            rows,
        }
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

    /// Reads row group `rg` from its row `skip` on, page by page within `limits`, handing
    /// each row (or row refused on its own) to `f`; stops at the first error `f` returns,
    /// or early when it returns `Break` (which the result passes on).
    pub fn read_row_group(
        &self,
        rg: usize,
        skip: u64,
        limits: ReadLimits,
        mut f: impl FnMut(Delivery) -> Result<ControlFlow<()>>,
    ) -> std::result::Result<Result<ControlFlow<()>>, RowGroupError> {
        self.read_wanted(rg, crate::rowgroup::Wanted::From(skip), limits, &mut f)
    }

    /// Reads rows `rows` (increasing, within the row group) of row group `rg`, handing each
    /// (or its refusal) to `f`.
    pub fn read_rows(
        &self,
        rg: usize,
        rows: &[u64],
        limits: ReadLimits,
        mut f: impl FnMut(Delivery) -> Result<ControlFlow<()>>,
    ) -> std::result::Result<Result<ControlFlow<()>>, RowGroupError> {
        self.read_wanted(rg, crate::rowgroup::Wanted::Rows(rows), limits, &mut f)
    }

    /// The rows `wanted` of row group `rg`, through this file's projection of the mapped
    /// columns.
    fn read_wanted(
        &self,
        rg: usize,
        wanted: crate::rowgroup::Wanted<'_>,
        limits: ReadLimits,
        f: &mut dyn FnMut(Delivery) -> Result<ControlFlow<()>>,
    ) -> std::result::Result<Result<ControlFlow<()>>, RowGroupError> {
        crate::rowgroup::read(self, rg, wanted, limits, &self.projection, &self.names, f)
    }

    /// Reads column `column` alone (e.g. a session key) of every row of row group `rg`,
    /// handing each row (its one cell) to `f`. A file without the column gives nothing.
    pub fn read_column(
        &self,
        rg: usize,
        column: &str,
        limits: ReadLimits,
        mut f: impl FnMut(Delivery) -> Result<ControlFlow<()>>,
    ) -> std::result::Result<Result<ControlFlow<()>>, RowGroupError> {
        let Ok(i) = self.meta.schema().index_of(column) else {
            return Ok(Ok(ControlFlow::Continue(())));
        };
        let name: Arc<str> = Arc::from(column);
        let wanted = crate::rowgroup::Wanted::From(0);
        crate::rowgroup::read(self, rg, wanted, limits, &[i], &[name], &mut f)
    }
}

/// `field` with its binary types (at any depth) as binary views.
fn as_views(field: &FieldRef) -> FieldRef {
    let t = match field.data_type() {
        DataType::Binary | DataType::LargeBinary => DataType::BinaryView,
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(as_views).collect()),
        DataType::List(item) => DataType::List(as_views(item)),
        DataType::LargeList(item) => DataType::LargeList(as_views(item)),
        other => other.clone(),
    };
    Arc::new(field.as_ref().clone().with_data_type(t))
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
