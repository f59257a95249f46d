//! `editshard export DATASET --to DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::EXIT_PROBLEMS;
use crate::error::Result;
use crate::export::{ExportOptions, Format, export};
use crate::read::Dataset;
use crate::read::DatasetOptions;
use crate::storage::Location;
use crate::units::human_bytes;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    /// The raw release layout: jsonl/*.jsonl, images/..., sources/...
    Release,
    /// WebDataset tar shards (KEY.json, KEY.src.jpg, KEY.edit.png, ...).
    Webdataset,
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
    /// Write into a non-empty directory, replacing files of the same names.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub remote: super::RemoteArgs,
}

pub fn run(args: ExportArgs) -> Result<ExitCode> {
    let storage = args.remote.storage_options();
    let location = Location::parse(&args.dataset, &storage)?;
    let rt = super::runtime()?;
    let ds = rt.block_on(Dataset::open_with(location, DatasetOptions::default()))?;
    let opts = ExportOptions {
        format: match args.format {
            FormatArg::Release => Format::Release,
            FormatArg::Webdataset => Format::WebDataset,
        },
        force: args.force,
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
