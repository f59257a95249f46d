//! Hugging Face Parquet: `data/train-NNNNN-of-MMMMM.parquet`, as `datasets.push_to_hub`
//! names its files, one row per record, loadable with
//! `datasets.load_dataset("parquet", data_files=...)` with typed `Image` features (the schema
//! and the features: [`schema`]).
//!
//! Files are written as `datasets` 4.1 and later write image datasets: image bytes
//! uncompressed and PLAIN-encoded (they are JPEG, PNG or WebP already; no dictionary, no
//! statistics), every other column zstd-compressed, row groups of at most
//! [`HfOptions::row_group_bytes`] (100 MB, the size the Hub's viewer reads comfortably; a
//! record larger than that is a row group of its own) and files of about
//! [`HfOptions::file_bytes`] (500 MB). Records are written one at a time as they stream in,
//! so memory holds the row group being encoded plus one record, whatever the dataset's size.
//! Each file is written under a temporary name and renamed when the export completes (as
//! every export's files are; here the number of files, in every name, is known only then).

pub mod file_name;
pub mod row;
pub mod schema;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use arrow_schema::Schema;
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::out_dir::is_file_number;
use super::{ExportReport, OutDir};
use editshard::atomic::PARTIAL_SUFFIX;
use editshard::error::{Error, Result};
use editshard::record::Record;

/// The sizes the files are cut at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HfOptions {
    /// A row group is closed before a record would take it past this many (encoded) bytes.
    pub row_group_bytes: u64,
    /// A file is closed once it holds this many bytes.
    pub file_bytes: u64,
}

impl Default for HfOptions {
    fn default() -> Self {
        // The sizes `datasets` (4.1+) targets: MAX_ROW_GROUP_SIZE and MAX_SHARD_SIZE.
        HfOptions {
            row_group_bytes: 100_000_000,
            file_bytes: 500_000_000,
        }
    }
}

/// The split every record goes to.
const SPLIT: &str = "train";

/// The directory the files are written in.
const DIR: &str = "data";

/// A file as this export names them, `train-NNNNN-of-MMMMM.parquet`, or as it names them while
/// they are written, `train-NNNNN.parquet.partial`: an earlier export's when this one does not
/// write it again.
fn is_parquet_name(name: &str) -> bool {
    fn numbered(name: &str) -> Option<&str> {
        name.strip_prefix(SPLIT)?
            .strip_prefix('-')?
            .strip_suffix(".parquet")
    }
    match name.strip_suffix(PARTIAL_SUFFIX) {
        Some(writing) => numbered(writing).is_some_and(is_file_number),
        None => numbered(name)
            .and_then(|n| n.split_once("-of-"))
            .is_some_and(|(i, of)| is_file_number(i) && is_file_number(of)),
    }
}

struct OpenFile {
    writer: ArrowWriter<BufWriter<File>>,
    partial: PathBuf,
    rows: u64,
}

pub fn export(
    records: impl Iterator<Item = Result<Record>>,
    out: &mut OutDir,
    opts: HfOptions,
) -> Result<ExportReport> {
    let (schema, features) = schema::schema();
    let props = properties(&schema, features)?;
    let mut report = ExportReport::default();
    let mut done: Vec<(PathBuf, u64)> = Vec::new();
    let mut file: Option<OpenFile> = None;
    out.replaces(DIR, is_parquet_name)?;
    for record in records {
        let record = record?;
        report.records += 1;
        let f = match &mut file {
            Some(f) => f,
            None => file.insert(open(out, done.len(), &schema, &props)?),
        };
        let shown = f.partial.display().to_string();
        let fail = |e: parquet::errors::ParquetError| {
            Error::from(std::io::Error::other(e.to_string())).in_shard(shown.clone())
        };
        // Close the row group before this record would take it over the size (a record
        // larger than the size gets one of its own).
        let size = estimated_size(&record);
        if f.writer.in_progress_rows() > 0
            && f.writer.in_progress_size() as u64 + size > opts.row_group_bytes
        {
            f.writer.flush().map_err(fail)?;
        }
        let built = row::columns(&record).and_then(|cols| row::batch(&schema, &[cols]));
        let batch = match built {
            Ok(batch) => batch,
            Err(problem) => {
                report.problems.push(problem);
                continue;
            }
        };
        // The batch holds its own copy of the bytes.
        drop(record);
        f.writer.write(&batch).map_err(fail)?;
        drop(batch);
        f.rows += 1;
        if f.writer.in_progress_size() as u64 >= opts.row_group_bytes {
            f.writer.flush().map_err(fail)?;
        }
        if (f.writer.bytes_written() + f.writer.in_progress_size()) as u64 >= opts.file_bytes
            && let Some(f) = file.take()
        {
            done.push(close(f)?);
        }
    }
    if let Some(f) = file.take() {
        done.push(close(f)?);
    }
    if done.is_empty() {
        // No records: one file with the schema and no rows, so that the export still loads.
        done.push(close(open(out, 0, &schema, &props)?)?);
    }
    let n = done.len();
    for (i, (partial, rows)) in done.into_iter().enumerate() {
        let name = format!("{DIR}/{SPLIT}-{i:05}-of-{n:05}.parquet");
        let path = out.prepare(&name)?;
        out.finish(partial, path);
        report.written.push((name, rows));
    }
    Ok(report)
}

/// Bytes a record adds to a row group: its images, and a little for its metadata.
fn estimated_size(record: &Record) -> u64 {
    record.images().map(|i| i.len).sum::<u64>() + 4096
}

/// Zstd for metadata; image bytes plain and uncompressed, without dictionary or statistics.
fn properties(schema: &Arc<Schema>, features: String) -> Result<WriterProperties> {
    let zstd = ZstdLevel::try_new(3).map_err(|e| Error::bug(e.to_string()))?;
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(zstd))
        .set_max_row_group_row_count(None)
        .set_max_row_group_bytes(None)
        // Also a Parquet key of its own, for readers that do not decode the Arrow schema.
        .set_key_value_metadata(Some(vec![KeyValue::new(
            schema::FEATURES_KEY.into(),
            features,
        )]));
    let descr = ArrowSchemaConverter::new()
        .convert(schema)
        .map_err(|e| Error::bug(format!("the export schema does not convert: {e}")))?;
    for column in descr.columns() {
        // In this schema only the `Image` structs have a `bytes` member.
        if column.path().parts().last().map(String::as_str) == Some("bytes") {
            let path = column.path().clone();
            b = b
                .set_column_compression(path.clone(), Compression::UNCOMPRESSED)
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path.clone(), Encoding::PLAIN)
                .set_column_statistics_enabled(path, EnabledStatistics::None);
        }
    }
    Ok(b.build())
}

fn open(
    out: &mut OutDir,
    i: usize,
    schema: &Arc<Schema>,
    props: &WriterProperties,
) -> Result<OpenFile> {
    // The final name needs the number of files: until then, the file's own index.
    let path = out.prepare(&format!("{DIR}/{SPLIT}-{i:05}.parquet"))?;
    let partial = out.partial_of(&path);
    let shown = partial.display().to_string();
    let file = editshard::atomic::create_new(&partial)
        .map_err(|e| Error::from(e).in_shard(shown.clone()))?;
    let writer = ArrowWriter::try_new(
        BufWriter::with_capacity(1 << 20, file),
        schema.clone(),
        Some(props.clone()),
    )
    .map_err(|e| Error::from(std::io::Error::other(e.to_string())).in_shard(shown))?;
    Ok(OpenFile {
        writer,
        partial,
        rows: 0,
    })
}

fn close(f: OpenFile) -> Result<(PathBuf, u64)> {
    let shown = f.partial.display().to_string();
    let mut w = f
        .writer
        .into_inner()
        .map_err(|e| Error::from(std::io::Error::other(e.to_string())).in_shard(shown.clone()))?;
    w.flush().map_err(|e| Error::from(e).in_shard(shown))?;
    Ok((f.partial, f.rows))
}

#[cfg(test)]
mod tests {
    use super::is_parquet_name;

    #[test]
    fn earlier_files_are_told_by_their_names() {
        for own in [
            "train-00000-of-00001.parquet",
            "train-00012-of-123456.parquet",
            "train-00003.parquet.partial",
        ] {
            assert!(is_parquet_name(own), "{own}");
        }
        for other in [
            "train-00003.parquet",
            "train-00000-of-00001.parquet.partial",
            "train-0000-of-0002.parquet",
            "test-00000-of-00001.parquet",
            "train-00000-of-00002.parquet.orig",
            "train-extra.parquet",
            "notes.txt",
        ] {
            assert!(!is_parquet_name(other), "{other}");
        }
    }
}
