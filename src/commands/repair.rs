//! `editshard repair DATASET --out DEST`: a new dataset holding every intact record of a
//! damaged one, each lost range reported on standard error and in `DEST/repair-report.json`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::EXIT_PROBLEMS;
use editshard::error::{Error, Result};
use editshard::repair::{REPORT_NAME, repair};

#[derive(Args, Debug)]
pub struct RepairArgs {
    /// The damaged dataset: a local directory (its manifest names the shards; without a
    /// usable manifest, the .esd files under it are salvaged).
    pub dataset: PathBuf,
    /// The directory to write the new dataset to (must not hold a dataset).
    #[arg(long, value_name = "DEST")]
    pub out: PathBuf,
}

pub fn run(args: RepairArgs) -> Result<ExitCode> {
    if !args.dataset.is_dir() {
        return Err(Error::invalid(format!(
            "{} is not a local directory: repair reads a dataset on local disk (copy a remote \
             one first, e.g. with `aws s3 sync` or `wget -r`)",
            args.dataset.display()
        )));
    }
    let report = repair(&args.dataset, &args.out, |loss| {
        eprintln!("LOST {loss}");
    })?;
    let listed = report
        .listed
        .map_or(String::new(), |n| format!(" of the {n} its manifest lists"));
    println!(
        "editshard repair {} -> {}\n  {} shards read, {} records recovered{listed}; {} damaged \
         ranges, {} records lost by name\n  report: {}",
        args.dataset.display(),
        args.out.display(),
        report.shards,
        report.recovered,
        report.losses.len(),
        report.named_losses(),
        args.out.join(REPORT_NAME).display()
    );
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PROBLEMS)
    })
}
