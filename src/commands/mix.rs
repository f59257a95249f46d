//! `editshard mix --out DEST [NAME=]SOURCE...`.

use std::process::ExitCode;

use clap::Args;

use editshard::error::Result;
use editshard::mix::{MixOptions, MixSource, default_name, mix};
use editshard::storage::Location;
use editshard::units::human_bytes;

#[derive(Args, Debug)]
pub struct MixArgs {
    /// The datasets to mix, in order: a directory, file:///abs, http(s)://host/prefix or
    /// s3://bucket/prefix, each optionally named NAME=LOCATION (default: its last path
    /// segment). Each one's shards go under DEST/NAME/.
    #[arg(required = true, value_name = "[NAME=]SOURCE")]
    pub sources: Vec<String>,
    /// Where the mixture goes: a directory or s3://bucket/prefix.
    #[arg(long, value_name = "DEST")]
    pub out: String,
    /// Copy every shard, even where a hard link to a local source could be made.
    #[arg(long)]
    pub copy: bool,
    /// Delete a lock left at an S3 DEST by a killed run first.
    #[arg(long)]
    pub break_lock: bool,
    #[command(flatten)]
    pub remote: super::RemoteArgs,
}

/// `NAME=LOCATION` or `LOCATION`: a prefix before `=` is a name only if it could be one
/// (no `/` or `:`), so a path or URL holding `=` stays whole.
fn split_source(arg: &str) -> (String, &str) {
    match arg.split_once('=') {
        Some((name, loc)) if !name.is_empty() && !name.contains(['/', ':']) => {
            (name.to_string(), loc)
        }
        _ => (default_name(arg), arg),
    }
}

pub fn run(args: MixArgs) -> Result<ExitCode> {
    let storage = args.remote.storage_options();
    let mut sources = Vec::with_capacity(args.sources.len());
    for arg in &args.sources {
        let (name, given) = split_source(arg);
        sources.push(MixSource {
            name,
            given: given.to_string(),
            location: Location::parse(given, &storage)?,
        });
    }
    let dest = Location::parse(&args.out, &storage)?;
    let opts = MixOptions {
        copy_only: args.copy,
        break_lock: args.break_lock,
    };
    let report = super::runtime()?.block_on(mix(&sources, &dest, &opts))?;
    let mut out = format!(
        "editshard mix -> {}\n  {} records in {} shards ({}): {} copied, {} linked, {} already there\n",
        args.out,
        report.records,
        report.shards,
        human_bytes(report.bytes),
        report.copied,
        report.linked,
        report.kept
    );
    for s in &report.sources {
        out.push_str(&format!(
            "  {}: {} records, shards {}..{}, licence {}  ({})\n",
            s.name,
            s.records,
            s.shards.start,
            s.shards.end,
            if s.licences.is_empty() {
                "not stated".to_string()
            } else {
                s.licences.join(", ")
            },
            s.location
        ));
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_named_by_prefix_or_last_segment() {
        assert_eq!(
            split_source("pico=/data/pico"),
            ("pico".into(), "/data/pico")
        );
        assert_eq!(split_source("/data/mb/"), ("mb".into(), "/data/mb/"));
        assert_eq!(split_source("/data/a=b"), ("a_b".into(), "/data/a=b"));
        assert_eq!(
            split_source("s3://bucket/x?y=1"),
            ("x_y_1".into(), "s3://bucket/x?y=1")
        );
    }
}
