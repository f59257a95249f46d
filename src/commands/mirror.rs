//! `editshard mirror SRC DST`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::EXIT_PROBLEMS;
use crate::progress::MirrorBar;
use editshard::error::{Error, Result};
use editshard::mirror::{MirrorOptions, MirrorReport, Outcome, RangedDownload, Subset, mirror};
use editshard::storage::Location;
use editshard::units::human_bytes;

#[derive(Args, Debug)]
pub struct MirrorArgs {
    /// The dataset to copy: a directory, file:///abs, http(s)://host/prefix or
    /// s3://bucket/prefix.
    pub src: String,
    /// Where the copy goes: a directory or s3://bucket/prefix.
    pub dst: String,
    /// Shards copied at once.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Compare DST with SRC (every shard's length and CRC-64/NVME as DST's store reports
    /// them, or its SHA-256 read and hashed where the store reports none; and the manifest);
    /// copy nothing. Exits 1 if anything is missing or differs.
    #[arg(long)]
    pub verify_only: bool,
    /// Replace shards at DST that differ from SRC (they are reported and kept otherwise), and
    /// mirror into a local DST that holds files SRC does not name (refused otherwise; they
    /// are left as they are).
    #[arg(long)]
    pub force: bool,
    /// Read each copied shard back from DST and hash it again.
    #[arg(long)]
    pub verify_after_copy: bool,
    /// S3 to S3 on one endpoint: take each copy the store makes (CopyObject) on its length
    /// (by default its CRC-64/NVME as the store reports it is compared with the manifest's,
    /// and the copy is read back and hashed where the store reports none).
    #[arg(long)]
    pub trust_store_copy: bool,
    /// Copy only part of the dataset, as a new dataset with its own manifest. Repeatable:
    /// kind=sft,preference | edit-type=TYPE | category=CATEGORY | shards=A..B (0-based,
    /// end excluded). Values of one field are alternatives; fields combine with AND.
    #[arg(long, value_name = "FIELD=VALUE")]
    pub subset: Vec<String>,
    /// Part size of multipart uploads to S3, in MiB (at least 5): shards larger than one part
    /// go in parts, others in one PUT. Default: by each shard's length (one streamed PUT up
    /// to 128 MiB, parts of 16 MiB or more above).
    #[arg(long, value_name = "MIB")]
    pub part_size: Option<usize>,
    /// A remote SRC to a local DST: shards of at least this many MiB are downloaded in
    /// ranged GETs at once (--range-size each, --range-streams at once per shard), written
    /// in place and hashed as they arrive. 0: never.
    #[arg(long, default_value_t = 32, value_name = "MIB")]
    pub ranged_min: u64,
    /// Size of each ranged GET, in MiB (at least 1).
    #[arg(long, default_value_t = 8, value_name = "MIB")]
    pub range_size: u64,
    /// Ranged GETs of one shard at once (on top of --jobs shards at once).
    #[arg(long, default_value_t = RangedDownload::default().streams, value_name = "N")]
    pub range_streams: usize,
    /// Where --subset stages rewritten shards (default: the system temp directory).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Delete the lock (`DST/.editshard-lock`) left at an S3 DST by a mirror or convert that
    /// is no longer running, then mirror. Never needed for a local DST: the OS releases its
    /// lock when the holder ends.
    #[arg(long)]
    pub break_lock: bool,
    #[command(flatten)]
    pub remote: super::RemoteArgs,
}

pub fn run(args: MirrorArgs) -> Result<ExitCode> {
    if args.dst.starts_with("http://") || args.dst.starts_with("https://") {
        return Err(Error::invalid(format!(
            "DST {:?}: http(s) locations are read-only; mirror to a directory or \
             s3://bucket/prefix",
            args.dst
        )));
    }
    let storage = args.remote.storage_options();
    let src = Location::parse(&args.src, &storage)?;
    let mut dst = Location::parse(&args.dst, &storage)?;
    if let Some(mib) = args.part_size {
        dst = dst.with_part_size(mib.max(5) << 20);
    }
    let subset = if args.subset.is_empty() {
        None
    } else {
        Some(Subset::parse(&args.subset)?)
    };
    let opts = MirrorOptions {
        jobs: args.jobs.max(1),
        verify_only: args.verify_only,
        force: args.force,
        verify_after_copy: args.verify_after_copy,
        trust_store_copy: args.trust_store_copy,
        subset,
        work_dir: args.work_dir,
        break_lock: args.break_lock,
        ranged: RangedDownload {
            min_bytes: match args.ranged_min {
                0 => u64::MAX,
                mib => mib.saturating_mul(1 << 20),
            },
            range_bytes: args.range_size.clamp(1, 1 << 20) << 20,
            streams: args.range_streams.max(1),
        },
    };
    let rt = super::runtime()?;
    let bar = Arc::new(MirrorBar::new());
    let report = rt.block_on(mirror(&src, &dst, &opts, bar.clone()));
    bar.finish();
    let report = report?;
    println!("{}", summary(&report, &opts));
    Ok(if report.problems() > 0 {
        ExitCode::from(EXIT_PROBLEMS)
    } else {
        ExitCode::SUCCESS
    })
}

fn summary(r: &MirrorReport, opts: &MirrorOptions) -> String {
    let n = |f: fn(&Outcome) -> bool| r.count(f);
    let mut out = format!(
        "editshard mirror {} -> {}\n  shards: {} copied, {} replaced, {} skipped (already \
         verified), {} missing, {} differ, {} failed{}\n",
        r.src,
        r.dst,
        n(|o| *o == Outcome::Copied),
        n(|o| *o == Outcome::Replaced),
        n(|o| *o == Outcome::Skipped),
        n(|o| *o == Outcome::Missing),
        n(|o| matches!(o, Outcome::Differs(_))),
        n(|o| matches!(o, Outcome::Failed(_))),
        if opts.subset.is_some() {
            format!(", {} empty after filtering", n(|o| *o == Outcome::Empty))
        } else {
            String::new()
        },
    );
    let rate = r.bytes_moved as f64 / 1e6 / r.secs.max(1e-3);
    out.push_str(&format!(
        "  {} moved in {:.1} s ({rate:.1} MB/s), {} records\n",
        human_bytes(r.bytes_moved),
        r.secs,
        r.records
    ));
    for s in &r.shards {
        match &s.outcome {
            Outcome::Missing => out.push_str(&format!("  missing at DST: {}\n", s.path)),
            Outcome::Differs(what) => out.push_str(&format!(
                "  differs at DST: {}: {what} (not overwritten; --force replaces it)\n",
                s.path
            )),
            Outcome::Failed(e) => out.push_str(&format!("  failed: {}: {e}\n", s.path)),
            _ => {}
        }
    }
    if let Some(p) = &r.manifest_problem {
        out.push_str(&format!("  manifest: {p}\n"));
    }
    if let Some(note) = &r.read_back_note {
        out.push_str(&format!("  note: {note}\n"));
    }
    if opts.verify_only {
        out.push_str(if r.problems() == 0 {
            "  DST matches SRC\n"
        } else {
            "  DST does not match SRC\n"
        });
    } else if r.manifest_written {
        out.push_str("  manifest.json written: DST is complete\n");
    } else {
        out.push_str(
            "  manifest.json NOT written: DST is incomplete; fix the problems above and run \
             the same command again (finished shards are kept and skipped)\n",
        );
    }
    out
}
