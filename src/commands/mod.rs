//! The `editshard` command line: a thin layer over the library. Each subcommand's arguments
//! and `run` live in the module named after its job.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod convert;
mod convert_hub;
mod export;
mod inspect;
mod mirror;
mod mix;
mod record_json;
mod repair;
mod verify_stored;
mod view;

/// `editshard --version`: the command's version and the format version it writes (and the
/// major version it reads).
static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{} (format {}.{})",
        env!("CARGO_PKG_VERSION"),
        editshard::format::VERSION_MAJOR,
        editshard::format::VERSION_MINOR
    )
});

/// Listed under every `--help` and in the README.
const EXIT_CODES: &str = "\
Exit codes:
  0  success (also: `convert` re-run on its own finished dataset, which is complete)
  1  the command ran and found problems: failed rows (`convert`, unless --allow-failures),
     damage (`verify`, `mirror`, `repair`), or a filter of `cat`/`stats` that matched no record
  2  the command could not run: bad arguments, unreadable input, a DEST holding another
     conversion";

#[derive(Parser, Debug)]
#[command(
    name = "editshard",
    version = VERSION.as_str(),
    about = "Verified, streamable shards for text-guided image-editing datasets",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Convert a raw release (JSONL + image URLs or local files) into shards.
    #[command(after_help = EXIT_CODES)]
    Convert(Box<convert::ConvertArgs>),
    /// Combine the partial datasets of a split conversion (`convert --part I/N`) into one.
    #[command(after_help = EXIT_CODES)]
    Merge(convert::MergeArgs),
    /// List a dataset's shards, records, bytes and per-kind counts.
    #[command(after_help = EXIT_CODES)]
    Ls(inspect::LsArgs),
    /// Print records as JSON lines (metadata only unless asked).
    #[command(after_help = EXIT_CODES)]
    Cat(inspect::CatArgs),
    /// Write one record's images and metadata to a directory.
    #[command(after_help = EXIT_CODES)]
    Get(inspect::GetArgs),
    /// Counts per kind, category and edit type; image size histograms.
    #[command(after_help = EXIT_CODES)]
    Stats(inspect::StatsArgs),
    /// Check every checksum, index entry and image header; exit non-zero on damage.
    #[command(after_help = EXIT_CODES)]
    Verify(inspect::VerifyArgs),
    /// Copy a dataset to another place (directory, S3), verified and resumable.
    #[command(after_help = EXIT_CODES)]
    Mirror(mirror::MirrorArgs),
    /// Combine datasets into one mixture whose manifest keeps each source's counts and licences.
    #[command(after_help = EXIT_CODES)]
    Mix(mix::MixArgs),
    /// Write a dataset back out as the raw release layout, WebDataset tars or Hugging Face Parquet.
    #[command(after_help = EXIT_CODES)]
    Export(export::ExportArgs),
    /// Salvage every intact record of a damaged dataset into a new one; report what was lost.
    #[command(after_help = EXIT_CODES)]
    Repair(repair::RepairArgs),
    /// Browse a dataset (local, HTTP or S3) in a web browser, or write an HTML report.
    #[command(after_help = EXIT_CODES)]
    View(view::ViewArgs),
}

/// The one runtime every command runs its (async) operation on: multi-threaded, one worker
/// per core up to 8, with I/O and timers.
pub fn runtime() -> editshard::Result<tokio::runtime::Runtime> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("editshard")
        .enable_all()
        .build()
        .map_err(editshard::Error::from)
}

/// How to reach remote locations: shared by every command that reads or writes one.
#[derive(clap::Args, Debug, Clone)]
pub struct RemoteArgs {
    /// S3 endpoint (MinIO, R2, ...); default from AWS_ENDPOINT_URL(_S3).
    #[arg(long)]
    pub s3_endpoint: Option<String>,
    /// Hugging Face token for hf:// locations (default: HF_TOKEN, else the token `hf auth
    /// login` saved); sent to the Hub only, never to the CDN it redirects to.
    #[arg(long, value_name = "TOKEN")]
    pub hf_token: Option<String>,
    /// Seconds to wait for the next bytes of a response (and, uploading, for the next bytes
    /// to leave, or the answer once all have).
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Retries of a failed request (bounded, with back-off).
    #[arg(long, default_value_t = 5)]
    pub retries: usize,
}

impl RemoteArgs {
    pub fn storage_options(&self) -> editshard::storage::StorageOptions {
        editshard::storage::StorageOptions {
            s3_endpoint: self.s3_endpoint.clone(),
            hf_token: self.hf_token.clone(),
            timeout: std::time::Duration::from_secs(self.timeout.max(1)),
            retries: self.retries,
            ..editshard::storage::StorageOptions::default()
        }
    }
}

/// How a reading command checks what it reads (`get`, `cat`, `export`).
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Also check every image read against the SHA-256 in its record's metadata (about
    /// 1 GB/s a core). Every byte read is checked against its CRC32 either way, and each
    /// record read by index against its shard's index: that catches damage. The hash catches
    /// only metadata that disagrees with its images while every CRC is valid (a broken
    /// writer); `editshard verify` checks it for a whole dataset.
    #[arg(long)]
    pub verify_images: bool,
}

impl CheckArgs {
    pub fn dataset_options(&self) -> editshard::read::DatasetOptions {
        let verify = if self.verify_images {
            editshard::shard::Verify::Full
        } else {
            editshard::shard::Verify::Crc
        };
        editshard::read::DatasetOptions {
            read: editshard::shard::ReadOptions::verifying(verify),
            ..editshard::read::DatasetOptions::default()
        }
    }
}

/// Exit code for "the command ran, and found problems" (failed rows, damaged shards, a
/// selection that matched nothing).
pub const EXIT_PROBLEMS: u8 = 1;
/// Exit code for "the command could not run" (bad arguments, unreadable input).
pub const EXIT_ERROR: u8 = 2;

pub fn main() -> ExitCode {
    crate::progress::init_log();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Convert(args) => convert::run(*args),
        Command::Merge(args) => convert::run_merge(args),
        Command::Ls(args) => inspect::run_ls(args),
        Command::Cat(args) => inspect::run_cat(args),
        Command::Get(args) => inspect::run_get(args),
        Command::Stats(args) => inspect::run_stats(args),
        Command::Verify(args) => inspect::run_verify(args),
        Command::Mirror(args) => mirror::run(args),
        Command::Mix(args) => mix::run(args),
        Command::Export(args) => export::run(args),
        Command::Repair(args) => repair::run(args),
        Command::View(args) => view::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("editshard: {e}\n  hint: {}", editshard::advice::hint(&e));
            ExitCode::from(EXIT_ERROR)
        }
    }
}
