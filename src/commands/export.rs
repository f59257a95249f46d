//! `editshard export DATASET --to DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::EXIT_PROBLEMS;
use editshard::error::Result;
use editshard::read::Dataset;
use editshard::storage::Location;
use editshard::units::human_bytes;
use editshard_export::{ExportOptions, Format, export};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    /// The raw release layout: jsonl/*.jsonl, images/..., sources/...
    Release,
    /// WebDataset tar shards (KEY.json, KEY.src.jpg, KEY.edit.png, ...).
    Webdataset,
    /// Hugging Face Parquet (data/train-NNNNN-of-MMMMM.parquet) with typed Image features,
    /// for datasets.load_dataset("parquet", ...) and the Hub.
    HfParquet,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The dataset: a directory, file:///abs, http(s)://host/prefix or s3://bucket/prefix.
    pub dataset: String,
    /// The directory to write (created; must be empty unless --force).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    #[arg(long, value_enum, default_value = "release")]
    pub format: FormatArg,
    /// Write into a non-empty directory: files of the same names are replaced, and an earlier
    /// export's files of the same format that this one does not write again are removed
    /// (webdataset: shard-NNNNN.tar; hf-parquet: data/train-NNNNN-of-MMMMM.parquet; and
    /// their *.partial). Nothing else is removed.
    #[arg(long)]
    pub force: bool,
    /// hf-parquet: the largest row group (bytes, or e.g. 100MB, 64MiB); a record larger than
    /// this is a row group of its own.
    #[arg(long, value_name = "SIZE", default_value = "100M")]
    pub row_group_size: String,
    /// hf-parquet: a file is closed once it holds this many bytes.
    #[arg(long, value_name = "SIZE", default_value = "500M")]
    pub file_size: String,
    #[command(flatten)]
    pub remote: super::RemoteArgs,
    #[command(flatten)]
    pub check: super::CheckArgs,
}

pub fn run(args: ExportArgs) -> Result<ExitCode> {
    let storage = args.remote.storage_options();
    let location = Location::parse(&args.dataset, &storage)?;
    let rt = super::runtime()?;
    let ds = rt.block_on(Dataset::open_with(location, args.check.dataset_options()))?;
    let opts = ExportOptions {
        format: match args.format {
            FormatArg::Release => Format::Release,
            FormatArg::Webdataset => Format::WebDataset,
            FormatArg::HfParquet => Format::HfParquet,
        },
        force: args.force,
        hf: editshard_export::hf_parquet::HfOptions {
            row_group_bytes: super::convert::parse_size(&args.row_group_size)?,
            file_bytes: super::convert::parse_size(&args.file_size)?,
        },
    };
    let report = rt.block_on(export(&ds, &args.to, &opts))?;
    let mut out = format!(
        "editshard export {} -> {}\n  {} records read, {} files written ({}) in {:.1} s\n",
        args.dataset,
        args.to.display(),
        report.records,
        report.files,
        human_bytes(report.bytes),
        report.secs
    );
    for (name, n) in &report.written {
        out.push_str(&format!("  {name}: {n}\n"));
    }
    if !report.removed.is_empty() {
        out.push_str(&format!(
            "  {} files of an earlier export removed (--force): {}\n",
            report.removed.len(),
            report.removed.join(", ")
        ));
    }
    if !report.problems.is_empty() {
        out.push_str(&format!(
            "  {} records not exported:\n",
            report.problems.len()
        ));
        for p in report.problems.iter().take(20) {
            out.push_str(&format!("    {p}\n"));
        }
        if report.problems.len() > 20 {
            out.push_str(&format!(
                "    ... and {} more\n",
                report.problems.len() - 20
            ));
        }
    }
    print!("{out}");
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PROBLEMS)
    })
}
