//! `editshard verify DATASET --remote`: every shard against the manifest by what its store
//! reports (length and CRC-64/NVME, one HEAD per shard on S3), without reading the shards
//! where the store reports a checksum; the others are read and hashed, which is said once.
//! The records and images inside the shards are not looked at: that is `verify` without
//! `--remote`, which reads everything.

use std::process::ExitCode;
use std::sync::Arc;

use editshard::error::Result;
use editshard::mirror::{MirrorOptions, Outcome, Quiet, mirror};
use editshard::storage::{Location, StorageOptions};
use editshard::units::human_bytes;

use super::EXIT_PROBLEMS;

/// What `verify --remote` advises when a shard differs from its manifest entry.
const ADVICE: &str = "the stored object is not the shard its manifest names: copy it again \
     from a good copy (`editshard mirror GOOD DATASET --force` replaces exactly the shards \
     that differ), or run `editshard verify DATASET` (without --remote) to find which records \
     are damaged and `editshard repair` to keep the intact ones";

pub fn run(dataset: &str, storage: &StorageOptions, json: bool) -> Result<ExitCode> {
    let loc = Location::parse(dataset, storage)?;
    let opts = MirrorOptions {
        verify_only: true,
        ..MirrorOptions::default()
    };
    let report = super::runtime()?.block_on(mirror(&loc, &loc, &opts, Arc::new(Quiet)))?;
    let mut problems = Vec::new();
    for s in &report.shards {
        let shown = loc.display_of(&s.path);
        let what = match &s.outcome {
            Outcome::Missing => "missing".to_string(),
            Outcome::Differs(what) => what.clone(),
            Outcome::Failed(e) => format!("cannot be checked: {e}"),
            _ => continue,
        };
        problems.push(format!("{shown}: {what}"));
    }
    if let Some(p) = &report.manifest_problem {
        problems.push(p.clone());
    }
    let ok = problems.is_empty();
    let code = if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PROBLEMS)
    };
    let bytes: u64 = report.shards.iter().map(|s| s.bytes).sum();
    if json {
        let mut summary = serde_json::json!({
            "shards": report.shards.len(),
            "bytes": bytes,
            "bytes_read": report.bytes_moved,
            "ok": ok,
            "problems": problems,
        });
        if let Some(note) = &report.read_back_note {
            summary["note"] = note.clone().into();
        }
        if !ok {
            summary["advice"] = ADVICE.into();
        }
        println!("{summary}");
        return Ok(code);
    }
    for p in &problems {
        println!("DAMAGED {p}");
    }
    println!(
        "checked {} shards ({}) against the manifest by the store's checksums, {} read: {}",
        report.shards.len(),
        human_bytes(bytes),
        human_bytes(report.bytes_moved),
        if ok {
            "all good".to_string()
        } else {
            format!("{} problems", problems.len())
        }
    );
    if let Some(note) = &report.read_back_note {
        println!("  note: {note}");
    }
    if !ok {
        println!("  hint: {ADVICE}");
    }
    Ok(code)
}
