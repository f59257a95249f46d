//! `editshard convert` and `editshard merge`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use editshard::error::{Error, Result};
use editshard_convert::merge;
use editshard_convert::pico::fetch::FetchOptions;
use editshard_convert::pico::{CollisionPolicy, ConvertOptions, Validate};
use editshard_convert::session::{Complete, Outcome};
use editshard_pico::rows::Subset;

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// The release: a directory or an http(s) URL laid out like the release
    /// (jsonl/sft.jsonl, jsonl/preference.jsonl, jsonl/multi-turn.jsonl, images relative to
    /// it). Default: the public CDN.
    #[arg(value_name = "RELEASE")]
    pub release: Option<String>,
    /// Where the dataset goes: a local directory or s3://bucket/prefix.
    #[arg(long, value_name = "DEST")]
    pub out: String,
    /// Subsets to convert, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "sft,preference,multi-turn"
    )]
    pub subsets: Vec<String>,
    /// Only the first N non-blank lines of each subset.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Rewrite image URLs starting with PREFIX to REPLACEMENT (a URL or a local directory).
    /// Repeatable; the longest matching prefix wins.
    #[arg(long = "map-url", value_name = "PREFIX=REPLACEMENT")]
    pub map_url: Vec<String>,
    /// Let rows' `local_input_image` name absolute paths inside DIR (repeatable). Without it,
    /// only paths relative to a local release directory are read: a release cannot make
    /// editshard open /etc/passwd or your photos.
    #[arg(long = "local-images-root", value_name = "DIR")]
    pub local_images_roots: Vec<PathBuf>,
    /// Open Images' train-images-boxable-with-rotation.csv: source URL -> ImageID, Rotation.
    #[arg(long, value_name = "FILE")]
    pub openimages_csv: Option<PathBuf>,
    /// Extracted Open Images tars: DIR/train_*/<ImageID>.jpg (or DIR/<ImageID>.jpg).
    #[arg(long, value_name = "DIR", requires = "openimages_csv")]
    pub openimages_dir: Option<PathBuf>,
    /// Judge scores keyed by record id (JSONL: {"id": ..., "scores": {...}}).
    #[arg(long, value_name = "FILE.jsonl")]
    pub scores: Option<PathBuf>,
    /// What to do with rows sharing an output image (the release's are corrupted).
    #[arg(long, value_enum, default_value = "drop-all")]
    pub on_collision: CollisionPolicy,
    /// How to check images: header (type and size) or decode (full decode).
    #[arg(long, value_enum, default_value = "header")]
    pub validate: Validate,
    /// Concurrent downloads.
    #[arg(long, default_value_t = 16)]
    pub jobs: usize,
    /// Concurrent downloads per host.
    #[arg(long, default_value_t = 4)]
    pub per_host: usize,
    /// Request rate limit for a host (`*` for every host). Repeatable.
    #[arg(long = "rate", value_name = "HOST=REQ/S")]
    pub rate: Vec<String>,
    /// Target shard size (e.g. 512MiB, 2GB, 1000000).
    #[arg(long, default_value = "512MiB")]
    pub shard_size: String,
    /// Shard format version to write: 1.1 (smaller: a metadata dictionary per shard) or 1.0
    /// (for readers older than 1.1).
    #[arg(long, value_name = "1.0|1.1", default_value = "1.1")]
    pub format_version: String,
    /// Convert only part I (0-based) of N, split by source image, into DEST/part-IIII-of-NNNN/.
    #[arg(long, value_name = "I/N")]
    pub part: Option<String>,
    /// Convert only the rows listed in DEST's failures.jsonl, adding them to the dataset.
    #[arg(long)]
    pub retry_failed: bool,
    /// Exit 0 even when some rows failed (they are still listed in failures.jsonl).
    #[arg(long)]
    pub allow_failures: bool,
    /// S3 endpoint URL (else AWS_ENDPOINT_URL); credentials from the AWS_* variables.
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Work directory (resume state, download cache, staging). Default: DEST/.editshard-work
    /// for a local DEST, a directory under the system temp dir for S3.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Delete the lock (`DEST/.editshard-lock`) left at an S3 DEST by a convert or mirror
    /// that is no longer running, then convert. Never needed for a local DEST: the OS
    /// releases its lock when the holder ends.
    #[arg(long)]
    pub break_lock: bool,
    /// Seconds to wait for a connection.
    #[arg(long, default_value_t = 15.0, value_name = "SECS")]
    pub connect_timeout: f64,
    /// Seconds without a byte from the server before a download is retried.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub idle_timeout: f64,
    /// Retries per image after the first attempt.
    #[arg(long, default_value_t = 6)]
    pub retries: u32,
    /// First retry delay in seconds (doubles each retry, with jitter).
    #[arg(long, default_value_t = 0.5, value_name = "SECS")]
    pub backoff: f64,
    /// Longest retry delay in seconds (without Retry-After).
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub max_backoff: f64,
    /// Longest Retry-After honoured, in seconds.
    #[arg(long, default_value_t = 600.0, value_name = "SECS")]
    pub max_retry_after: f64,
    /// Largest image accepted (e.g. 256MiB).
    #[arg(long, default_value = "256MiB")]
    pub max_image_size: String,
    /// Seconds between progress lines when stderr is not a terminal.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub log_interval: f64,
    /// Convert a dataset published on the Hugging Face Hub as Parquet, with a built-in
    /// mapping: magicbrush, instructpix2pix, ultraedit, hq-edit, omniedit, anyedit. RELEASE
    /// is then the dataset's directory as downloaded (or an https:// base with the same
    /// layout, with --files-from).
    #[arg(long, value_name = "NAME", conflicts_with = "mapping")]
    pub preset: Option<String>,
    /// Like --preset, for any dataset of the same shape: a TOML file naming the columns (see
    /// the README, "Mapping files").
    #[arg(long, value_name = "FILE.toml")]
    pub mapping: Option<PathBuf>,
    /// With --preset/--mapping: the Parquet files to read, relative to RELEASE, one a line
    /// (needed when RELEASE is remote, which cannot be listed).
    #[arg(long, value_name = "FILE")]
    pub files_from: Option<PathBuf>,
    /// With --preset/--mapping: the dataset revision (Hub commit) recorded in every record.
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,
    /// With --preset/--mapping: about how many bytes of rows are decoded at once (a Parquet
    /// row group is read in batches of this size, never whole).
    #[arg(long, default_value = "64MiB", value_name = "SIZE")]
    pub batch_memory: String,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The DEST all parts were converted into (local directory or s3://bucket/prefix).
    #[arg(value_name = "DEST")]
    pub dest: String,
    /// How many parts the conversion was split into (the N of --part I/N).
    #[arg(long, value_name = "N")]
    pub parts: u32,
    /// S3 endpoint URL (else AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
}

/// `512MiB`, `2GB`, `64k`, `1000`: bytes (the library's, which the Python writer's
/// `shard_size` takes too).
pub use editshard::units::parse_size;

pub fn parse_part(s: &str) -> Result<(u32, u32)> {
    let bad = || {
        Error::invalid(format!(
            "--part {s:?}: expected I/N with 0 <= I < N, e.g. 0/8"
        ))
    };
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (u32, u32) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || i >= n || n > 9999 {
        return Err(bad());
    }
    Ok((i, n))
}

fn parse_rate(s: &str) -> Result<(String, f64)> {
    let bad = || {
        Error::invalid(format!(
            "--rate {s:?}: expected HOST=REQ/S, e.g. farm8.staticflickr.com=5"
        ))
    };
    let (host, rate) = s.split_once('=').ok_or_else(bad)?;
    let rate: f64 = rate
        .trim()
        .trim_end_matches("/s")
        .parse()
        .map_err(|_| bad())?;
    if host.is_empty() || !(rate > 0.0 && rate.is_finite()) {
        return Err(bad());
    }
    Ok((host.to_string(), rate))
}

fn secs(v: f64, name: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| {
        Error::invalid(format!(
            "--{name} {v}: expected a non-negative number of seconds"
        ))
    })
}

pub fn options(args: &ConvertArgs) -> Result<ConvertOptions> {
    let mut subsets = Vec::new();
    for s in &args.subsets {
        let subset = Subset::from_name(s.trim()).ok_or_else(|| {
            Error::invalid(format!(
                "--subsets: unknown subset {s:?} (sft, preference, multi-turn)"
            ))
        })?;
        if !subsets.contains(&subset) {
            subsets.push(subset);
        }
    }
    subsets.sort();
    if args.jobs == 0 || args.per_host == 0 {
        return Err(Error::invalid("--jobs and --per-host must be at least 1"));
    }
    Ok(ConvertOptions {
        release: args.release.clone(),
        out: args.out.clone(),
        subsets,
        limit: args.limit,
        map_url: args.map_url.clone(),
        local_images_roots: args.local_images_roots.clone(),
        openimages_csv: args.openimages_csv.clone(),
        openimages_dir: args.openimages_dir.clone(),
        scores: args.scores.clone(),
        collisions: args.on_collision,
        validate: args.validate,
        fetch: FetchOptions {
            jobs: args.jobs,
            per_host: args.per_host,
            rates: args
                .rate
                .iter()
                .map(|r| parse_rate(r))
                .collect::<Result<_>>()?,
            connect_timeout: secs(args.connect_timeout, "connect-timeout")?,
            idle_timeout: secs(args.idle_timeout, "idle-timeout")?,
            retries: args.retries,
            backoff: secs(args.backoff, "backoff")?,
            max_backoff: secs(args.max_backoff, "max-backoff")?,
            max_retry_after: secs(args.max_retry_after, "max-retry-after")?,
            max_image_bytes: parse_size(&args.max_image_size)?,
        },
        shard_size: parse_size(&args.shard_size)?,
        format_minor: parse_format_version(&args.format_version)?,
        part: args.part.as_deref().map(parse_part).transpose()?,
        retry_failed: args.retry_failed,
        s3_endpoint: args.s3_endpoint.clone(),
        work_dir: args.work_dir.clone(),
        break_lock: args.break_lock,
        log_interval: secs(args.log_interval, "log-interval")?,
    })
}

pub fn run(args: ConvertArgs) -> Result<ExitCode> {
    if args.preset.is_some() || args.mapping.is_some() {
        return super::convert_hub::run(&args);
    }
    let opts = options(&args)?;
    let outcome = super::runtime()?.block_on(editshard_convert::pico::convert(&opts))?;
    let s = match outcome {
        Outcome::Converted(s) => s,
        Outcome::AlreadyComplete(c) => return Ok(already_complete(&c, args.allow_failures)),
    };
    print!("{}", s.table());
    if s.failed() > 0 {
        eprintln!(
            "editshard convert: {} rows failed; see {}/failures.jsonl, fix what you can and re-run \
             with --retry-failed{}",
            s.failed(),
            s.dest,
            if args.allow_failures {
                ""
            } else {
                " (or pass --allow-failures to exit 0)"
            }
        );
        if !args.allow_failures {
            return Ok(ExitCode::from(super::EXIT_PROBLEMS));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The same command re-run on its finished dataset: nothing to do. The exit code is the one
/// the finished run gave: 0, or 1 if rows failed and `--allow-failures` is not given.
pub(super) fn already_complete(c: &Complete, allow_failures: bool) -> ExitCode {
    println!(
        "{} already holds this conversion, complete: {} records in {} shards, {} failed rows; \
         nothing to do",
        c.dest, c.records, c.shards, c.failed
    );
    if let Some(dir) = &c.removed_work_dir {
        println!(
            "removed the work directory left behind by an interrupted run: {}",
            dir.display()
        );
    }
    if c.failed > 0 && !allow_failures {
        eprintln!(
            "editshard convert: {} rows failed; see {}/failures.jsonl (pass --allow-failures to \
             exit 0, or --retry-failed to convert them again)",
            c.failed, c.dest
        );
        return ExitCode::from(super::EXIT_PROBLEMS);
    }
    ExitCode::SUCCESS
}

pub fn run_merge(args: MergeArgs) -> Result<ExitCode> {
    let report = super::runtime()?.block_on(merge::merge(
        &args.dest,
        args.parts,
        args.s3_endpoint.clone(),
    ))?;
    println!(
        "merged {} parts into {}: {} records in {} shards, {} failed rows",
        args.parts, args.dest, report.records, report.shards, report.failures
    );
    Ok(ExitCode::SUCCESS)
}

/// The minor version of a `--format-version` this writer can write ("1.0" or "1.1").
pub(super) fn parse_format_version(v: &str) -> Result<u16> {
    use editshard::format::{VERSION_MAJOR, VERSION_MINOR};
    let minor = v
        .strip_prefix(&format!("{VERSION_MAJOR}."))
        .and_then(|m| m.parse::<u16>().ok())
        .filter(|m| *m <= VERSION_MINOR);
    minor.ok_or_else(|| {
        Error::invalid(format!(
            "--format-version {v:?}: this editshard writes {VERSION_MAJOR}.0 to \
             {VERSION_MAJOR}.{VERSION_MINOR}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parts_rates() {
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("2GB").unwrap(), 2_000_000_000);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("0").is_err());
        assert_eq!(parse_part("3/8").unwrap(), (3, 8));
        assert!(parse_part("8/8").is_err());
        assert!(parse_part("1/0").is_err());
        assert_eq!(parse_format_version("1.0").unwrap(), 0);
        assert_eq!(parse_format_version("1.1").unwrap(), 1);
        for bad in ["1.2", "2.0", "1", "one"] {
            assert!(parse_format_version(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_rate("h=2.5").unwrap(), ("h".into(), 2.5));
        assert!(parse_rate("h=0").is_err());
    }
}
