//! `editshard ls`, `cat`, `get`, `stats` and `verify`: thin layers over [`crate::read`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine;
use clap::Args;
use futures_util::StreamExt;

use super::EXIT_PROBLEMS;
use crate::error::{Error, Result};
use crate::image_info::extension;
use crate::read::verify::{VerifyOptions, verify};
use crate::read::{Dataset, Filter, Images, ReadPlan};
use crate::record::{Kind, Record};
use crate::storage::Location;

/// Where the dataset is, and how to reach it.
#[derive(Args, Debug)]
pub struct Source {
    /// The dataset: a directory, file:///abs, http(s)://host/prefix or s3://bucket/prefix.
    pub dataset: String,
    #[command(flatten)]
    pub remote: super::RemoteArgs,
}

impl Source {
    async fn open(&self) -> Result<Dataset> {
        let opts = self.remote.storage_options();
        Dataset::open(Location::parse(&self.dataset, &opts)?).await
    }
}

/// Writes to stdout; a closed pipe (`| head`) ends the command quietly.
fn out(line: &str) -> Result<bool> {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{line}") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[derive(Args, Debug)]
pub struct LsArgs {
    #[command(flatten)]
    pub source: Source,
}

pub fn run_ls(args: LsArgs) -> Result<ExitCode> {
    let ds = super::runtime()?.block_on(args.source.open())?;
    let m = ds.manifest();
    out(&format!(
        "{:<48} {:>10} {:>14}",
        "shard", "records", "bytes"
    ))?;
    for s in &m.shards {
        out(&format!("{:<48} {:>10} {:>14}", s.path, s.records, s.bytes))?;
    }
    out(&format!(
        "total: {} shards, {} records, {} bytes",
        m.shards.len(),
        m.records,
        m.bytes
    ))?;
    let kinds: Vec<String> = m.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    out(&format!("kinds: {}", kinds.join(", ")))?;
    Ok(ExitCode::SUCCESS)
}

/// Record selection shared by `cat` and `stats`.
#[derive(Args, Debug)]
pub struct Selection {
    /// Only records of these kinds (generic, sft, preference, multi-turn); repeatable.
    #[arg(long = "kind", value_parser = parse_kind)]
    pub kinds: Vec<Kind>,
    /// Only records with a turn of this edit type; repeatable.
    #[arg(long = "edit-type")]
    pub edit_types: Vec<String>,
    /// Only records with a turn of this category; repeatable.
    #[arg(long = "category")]
    pub categories: Vec<String>,
    /// Only records whose chosen output scores at least this: NAME=VALUE.
    #[arg(long, value_parser = parse_score)]
    pub min_score: Option<(String, f32)>,
}

impl Selection {
    fn filter(&self) -> Filter {
        Filter {
            kinds: self.kinds.clone(),
            edit_types: self.edit_types.clone(),
            categories: self.categories.clone(),
            min_score: self.min_score.clone(),
        }
    }
}

fn parse_kind(s: &str) -> std::result::Result<Kind, String> {
    Kind::from_name(s).ok_or_else(|| {
        let names: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown kind {s:?} (one of {})", names.join(", "))
    })
}

fn parse_score(s: &str) -> std::result::Result<(String, f32), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got {s:?}"))?;
    let value: f32 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    if name.is_empty() || !value.is_finite() {
        return Err(format!("expected NAME=VALUE, got {s:?}"));
    }
    Ok((name.to_string(), value))
}

#[derive(Args, Debug)]
pub struct CatArgs {
    #[command(flatten)]
    pub source: Source,
    #[command(flatten)]
    pub selection: Selection,
    /// Top-level fields to print (id and kind always are), comma-separated: source, turns,
    /// provenance, extras.
    #[arg(long, value_delimiter = ',')]
    pub fields: Vec<String>,
    /// Stop after this many records.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Also fetch the image bytes and print them (base64, as `data`).
    #[arg(long)]
    pub images: bool,
}

/// The record as JSON, with each image's bytes as base64 `data` when present.
fn record_json(record: &Record, fields: &[String]) -> serde_json::Value {
    let mut json = record.to_json();
    let b64 = |img: &crate::record::Image| {
        img.data
            .as_ref()
            .map(|d| serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(d)))
    };
    if let Some(data) = b64(&record.source) {
        json["source"]["data"] = data;
    }
    for (t, turn) in record.turns.iter().enumerate() {
        if let Some(data) = b64(&turn.output) {
            json["turns"][t]["output"]["data"] = data;
        }
        for (j, rej) in turn.rejected.iter().enumerate() {
            if let Some(data) = b64(rej) {
                json["turns"][t]["rejected"][j]["data"] = data;
            }
        }
    }
    if !fields.is_empty() {
        if let serde_json::Value::Object(map) = &mut json {
            map.retain(|k, _| k == "id" || k == "kind" || fields.iter().any(|f| f == k));
        }
    }
    json
}

pub fn run_cat(args: CatArgs) -> Result<ExitCode> {
    super::runtime()?.block_on(async {
        let ds = args.source.open().await?;
        let limit = args.limit.unwrap_or(u64::MAX);
        if limit == 0 {
            return Ok(ExitCode::SUCCESS);
        }
        let plan = ReadPlan::default()
            .filter(args.selection.filter())
            .images(if args.images {
                Images::All
            } else {
                Images::None
            })
            .batch(limit.min(256));
        let mut records = ds.reader(plan);
        let mut printed = 0u64;
        while let Some(record) = records.next().await {
            let json = record_json(&record?, &args.fields);
            if !out(&json.to_string())? {
                break;
            }
            printed += 1;
            if printed >= limit {
                break;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Args, Debug)]
pub struct GetArgs {
    #[command(flatten)]
    pub source: Source,
    /// The record's id, or #N for the record at global index N.
    pub record: String,
    /// Directory to write record.json and the images to (created if needed).
    #[arg(long)]
    pub out: PathBuf,
}

/// File names of a record's images in canonical order. They are built from positions and
/// media types only, never from the id or any other stored string, so nothing in a dataset
/// can steer a write outside the output directory.
fn image_names(record: &Record) -> Vec<String> {
    let mut names = vec![format!("source.{}", extension(&record.source.media_type))];
    for (t, turn) in record.turns.iter().enumerate() {
        names.push(format!(
            "turn-{}-output.{}",
            t + 1,
            extension(&turn.output.media_type)
        ));
        for (j, rej) in turn.rejected.iter().enumerate() {
            names.push(format!(
                "turn-{}-rejected-{}.{}",
                t + 1,
                j + 1,
                extension(&rej.media_type)
            ));
        }
    }
    names
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    let path = dir.join(name);
    crate::atomic::write_atomically(&path, bytes)?;
    Ok(path)
}

pub fn run_get(args: GetArgs) -> Result<ExitCode> {
    super::runtime()?.block_on(async {
        let ds = args.source.open().await?;
        let index = args
            .record
            .strip_prefix('#')
            .and_then(|n| n.parse::<u64>().ok());
        let record = match index {
            Some(i) => ds.get(i).await?,
            None => ds.get_by_id(&args.record).await?.ok_or_else(|| {
                Error::invalid(format!(
                    "no record with id {:?} in {} (use #N for an index)",
                    args.record,
                    ds.location().display()
                ))
            })?,
        };
        std::fs::create_dir_all(&args.out)
            .map_err(|e| Error::from(e).in_shard(args.out.display().to_string()))?;
        let json = serde_json::to_vec_pretty(&record.to_json())
            .map_err(|e| Error::invalid(format!("record JSON: {e}")))?;
        out(&write_file(&args.out, "record.json", &json)?
            .display()
            .to_string())?;
        for (image, name) in record.images().zip(image_names(&record)) {
            if let Some(data) = &image.data {
                out(&write_file(&args.out, &name, data)?.display().to_string())?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    pub source: Source,
    #[command(flatten)]
    pub selection: Selection,
}

/// Histogram buckets: "<256", "<512", ... by the longer side in pixels.
fn size_bucket(width: u32, height: u32) -> String {
    let side = width.max(height);
    let mut limit = 256u32;
    while limit < 8192 && side >= limit {
        limit *= 2;
    }
    if side >= limit {
        format!(">={limit}")
    } else {
        format!("<{limit}")
    }
}

fn byte_bucket(len: u64) -> String {
    let mut limit = 16u64 << 10;
    while limit < 64 << 20 && len >= limit {
        limit *= 2;
    }
    if len >= limit {
        format!(">={} KiB", limit >> 10)
    } else {
        format!("<{} KiB", limit >> 10)
    }
}

pub fn run_stats(args: StatsArgs) -> Result<ExitCode> {
    super::runtime()?.block_on(async {
        let ds = args.source.open().await?;
        let plan = ReadPlan::default()
            .filter(args.selection.filter())
            .images(Images::None)
            .batch(512);
        let mut records = ds.reader(plan);
        let mut counts: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
        let mut n = 0u64;
        let mut bump = |table: &'static str, key: String| {
            *counts.entry(table).or_default().entry(key).or_default() += 1;
        };
        while let Some(record) = records.next().await {
            let r = record?;
            n += 1;
            bump("kind", r.kind.name().to_string());
            for t in &r.turns {
                if let Some(c) = &t.category {
                    bump("category", c.clone());
                }
                if let Some(e) = &t.edit_type {
                    bump("edit type", e.clone());
                }
            }
            bump(
                "source size (longer side, px)",
                size_bucket(r.source.width, r.source.height),
            );
            for img in r.images().skip(1) {
                bump(
                    "edited size (longer side, px)",
                    size_bucket(img.width, img.height),
                );
            }
            for img in r.images() {
                bump("image bytes", byte_bucket(img.len));
            }
        }
        out(&format!("records: {n}"))?;
        for (table, rows) in &counts {
            out(&format!("\n{table}:"))?;
            for (k, v) in rows {
                out(&format!("  {v:>10}  {k}"))?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub source: Source,
    /// Decode every image fully, not just its header.
    #[arg(long)]
    pub decode: bool,
}

pub fn run_verify(args: VerifyArgs) -> Result<ExitCode> {
    super::runtime()?.block_on(async {
        let ds = args.source.open().await?;
        let report = verify(
            &ds,
            VerifyOptions {
                decode: args.decode,
            },
            |problem| {
                let _ = out(&format!("DAMAGED {problem}"));
            },
        )
        .await?;
        out(&format!(
            "checked {} shards, {} records, {} images, {} bytes: {}",
            report.shards,
            report.records,
            report.images,
            report.bytes,
            if report.is_ok() {
                "all good".to_string()
            } else {
                format!("{} problems", report.problems.len())
            }
        ))?;
        Ok(if report.is_ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_PROBLEMS)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_scores() {
        assert_eq!(size_bucket(100, 20), "<256");
        assert_eq!(size_bucket(1024, 20), "<2048");
        assert_eq!(size_bucket(10_000, 1), ">=8192");
        assert_eq!(byte_bucket(1), "<16 KiB");
        assert_eq!(parse_score("overall=0.5").unwrap(), ("overall".into(), 0.5));
        assert!(parse_score("overall").is_err());
        assert!(parse_score("=1").is_err());
        assert!(parse_kind("multi-turn").is_ok() && parse_kind("x").is_err());
    }
}
