//! `editshard ls`, `cat`, `get`, `stats` and `verify`: thin layers over [`editshard::read`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use futures_util::StreamExt;

use super::EXIT_PROBLEMS;
use editshard::error::{Error, Result};
use editshard::image_info::extension;
use editshard::manifest::Manifest;
use editshard::read::verify::{VerifyOptions, verify};
use editshard::read::{Dataset, Filter, Images, ReadPlan, normalize_label, same_label};
use editshard::record::{Kind, Record};
use editshard::storage::Location;
use editshard_pico::edit_types;

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

    /// Opened to read records, checked as `check` says.
    async fn open_checked(&self, check: &super::CheckArgs) -> Result<Dataset> {
        let opts = self.remote.storage_options();
        Dataset::open_with(
            Location::parse(&self.dataset, &opts)?,
            check.dataset_options(),
        )
        .await
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
    /// Print one JSON object (shards, totals, kinds) instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn run_ls(args: LsArgs) -> Result<ExitCode> {
    let ds = super::runtime()?.block_on(args.source.open())?;
    let m = ds.manifest();
    if args.json {
        let shards: Vec<serde_json::Value> = m
            .shards
            .iter()
            .map(|s| {
                serde_json::json!({
                    "path": s.path, "records": s.records, "bytes": s.bytes, "sha256": s.sha256,
                })
            })
            .collect();
        out(&serde_json::json!({
            "dataset": ds.location().display(),
            "format_version": m.format_version,
            "shards": shards,
            "records": m.records,
            "bytes": m.bytes,
            "kinds": m.kinds,
            "sources": m.sources,
        })
        .to_string())?;
        return Ok(ExitCode::SUCCESS);
    }
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
    // A mixture (`editshard mix`): where its records came from.
    for src in &m.sources {
        let licences = if src.licences.is_empty() {
            "licence not stated".to_string()
        } else {
            src.licences.join("; ")
        };
        out(&format!(
            "source {}: {} records, shards {}..{}, {licences} ({})",
            src.name, src.records, src.shards.start, src.shards.end, src.location
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Record selection shared by `cat` and `stats`.
#[derive(Args, Debug)]
pub struct Selection {
    /// Only records of these kinds (generic, sft, preference, multi-turn); repeatable.
    #[arg(long = "kind", value_parser = parse_kind)]
    pub kinds: Vec<Kind>,
    /// Only records with a turn of this edit type (case and spacing ignored); repeatable.
    #[arg(long = "edit-type")]
    pub edit_types: Vec<String>,
    /// Only records with a turn of this category (case and spacing ignored); repeatable.
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

/// Edit distance (Levenshtein, over characters) between two strings.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Up to three of `known` closest to `wanted` (compared as [`normalize_label`]s), closest
/// first.
fn closest<'a>(wanted: &str, known: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let w = normalize_label(wanted);
    // A value typed in part ("change weather") is close to the whole one: compare with the
    // known value's start of the same length too, and count a contained value as equal.
    let score = |k: &str| {
        let k = normalize_label(k);
        if k.contains(&w) {
            return 0;
        }
        let start: String = k.chars().take(w.chars().count()).collect();
        distance(&w, &k).min(distance(&w, &start))
    };
    let mut scored: Vec<(usize, &str)> = known.map(|k| (score(k), k)).collect();
    scored.sort();
    scored.dedup_by(|a, b| same_label(a.1, b.1));
    scored.into_iter().take(3).map(|(_, k)| k).collect()
}

/// Says on stderr that the selection matched no record, and why as far as the manifest
/// tells: each value the dataset does not have, with the closest ones it does. The command
/// then exits [`EXIT_PROBLEMS`].
fn nothing_matched(command: &str, selection: &Selection, m: &Manifest) -> ExitCode {
    let mut lines = vec![format!(
        "editshard {command}: no record matched the selection"
    )];
    let quoted = |v: Vec<&str>| {
        v.iter()
            .map(|k| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for kind in &selection.kinds {
        if !m.kinds.contains_key(kind.name()) {
            let has: Vec<&str> = m.kinds.keys().map(String::as_str).collect();
            lines.push(format!(
                "  --kind {}: the dataset has no such records (it has {})",
                kind.name(),
                has.join(", ")
            ));
        }
    }
    for (flag, values, known) in [
        ("--edit-type", &selection.edit_types, &m.edit_types),
        ("--category", &selection.categories, &m.categories),
    ] {
        for v in values {
            if known.keys().any(|k| same_label(k, v)) {
                continue;
            }
            let near = closest(v, known.keys().map(|k| display_label(flag, k)));
            let pico = pico_label(flag, v).is_some();
            lines.push(if near.is_empty() {
                format!("  {flag} {v:?}: the dataset records none")
            } else if pico {
                format!(
                    "  {flag} {v:?}: a Pico-Banana value, but no record of this dataset has it; \
                     it has e.g. {}",
                    quoted(near)
                )
            } else {
                format!(
                    "  {flag} {v:?}: not in this dataset; closest: {}",
                    quoted(near)
                )
            });
        }
    }
    if lines.len() == 1 {
        lines.push(
            "  each value exists in the dataset, but no record has all of them (or the score)"
                .to_string(),
        );
    }
    eprintln!("{}", lines.join("\n"));
    ExitCode::from(EXIT_PROBLEMS)
}

/// How `stats` and suggestions spell a label: an edit type or category of the Pico-Banana
/// table in the table's spelling, anything else as given.
fn display_label<'a>(flag: &str, label: &'a str) -> &'a str {
    pico_label(flag, label).unwrap_or(label)
}

/// The Pico-Banana table's spelling of a category (`flag` "--category") or edit type.
fn pico_label(flag: &str, label: &str) -> Option<&'static str> {
    if flag == "--category" {
        edit_types::canonical_category(label)
    } else {
        edit_types::canonical(label)
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
    #[command(flatten)]
    pub check: super::CheckArgs,
}

pub fn run_cat(args: CatArgs) -> Result<ExitCode> {
    super::runtime()?.block_on(async {
        let ds = args.source.open_checked(&args.check).await?;
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
            });
        // With images, one record per batch and 64 MiB ahead: memory stays near the largest
        // record however large records are (README, Guarantees).
        let plan = if args.images {
            ReadPlan {
                prefetch_bytes: 64 << 20,
                ..plan.batch(1)
            }
        } else {
            plan.batch(limit.min(256))
        };
        let mut records = ds.reader(plan);
        let mut printed = 0u64;
        let mut stdout = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        while let Some(record) = records.next().await {
            let written =
                super::record_json::write_record_line(&mut stdout, &record?, &args.fields)
                    .and_then(|()| stdout.flush());
            match written {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
                Err(e) => return Err(e.into()),
            }
            printed += 1;
            if printed >= limit {
                break;
            }
        }
        if printed == 0 && !args.selection.filter().is_empty() {
            return Ok(nothing_matched("cat", &args.selection, ds.manifest()));
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
    #[command(flatten)]
    pub check: super::CheckArgs,
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
    editshard::atomic::write_atomically(&path, bytes)?;
    Ok(path)
}

pub fn run_get(args: GetArgs) -> Result<ExitCode> {
    super::runtime()?.block_on(async {
        let ds = args.source.open_checked(&args.check).await?;
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
    /// Print one JSON object ({"records", "turns", "tables": {table: {value: count}}}).
    #[arg(long)]
    pub json: bool,
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

/// The row of turns with no edit type (or category) in `stats`: with it, each per-turn
/// table adds up to the number of turns.
const NONE_ROW: &str = "(none)";

/// `stats` tables: name -> value -> count. Labels that differ only in case or spacing are one
/// row, spelt as the Pico-Banana table spells them (or as first seen).
#[derive(Default)]
struct Tables {
    counts: BTreeMap<&'static str, BTreeMap<String, u64>>,
    /// normalized label -> the spelling shown.
    spelling: std::collections::HashMap<(&'static str, String), String>,
}

impl Tables {
    fn bump(&mut self, table: &'static str, key: String) {
        *self
            .counts
            .entry(table)
            .or_default()
            .entry(key)
            .or_default() += 1;
    }

    fn bump_label(&mut self, table: &'static str, flag: &str, label: Option<&String>) {
        let Some(label) = label else {
            return self.bump(table, NONE_ROW.to_string());
        };
        let shown = self
            .spelling
            .entry((table, normalize_label(label)))
            .or_insert_with(|| display_label(flag, label).to_string())
            .clone();
        self.bump(table, shown);
    }
}

const KIND: &str = "kind";
const CATEGORY: &str = "category";
const EDIT_TYPE: &str = "edit type";

/// A table's heading: says what is counted, so that the totals can be checked.
fn heading(table: &str, turns: u64) -> String {
    match table {
        KIND => "kind (per record):".to_string(),
        CATEGORY | EDIT_TYPE => format!(
            "{table} (per turn, {turns} turns; {NONE_ROW}: turns without one, e.g. multi-turn \
             sessions):"
        ),
        "image bytes" => "image bytes (per image):".to_string(),
        _ => format!("{table}:"),
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
        let mut tables = Tables::default();
        let (mut n, mut turns) = (0u64, 0u64);
        while let Some(record) = records.next().await {
            let r = record?;
            n += 1;
            tables.bump(KIND, r.kind.name().to_string());
            for t in &r.turns {
                turns += 1;
                tables.bump_label(CATEGORY, "--category", t.category.as_ref());
                tables.bump_label(EDIT_TYPE, "--edit-type", t.edit_type.as_ref());
            }
            tables.bump(
                "source size (longer side, px)",
                size_bucket(r.source.width, r.source.height),
            );
            for img in r.images().skip(1) {
                tables.bump(
                    "edited size (longer side, px)",
                    size_bucket(img.width, img.height),
                );
            }
            for img in r.images() {
                tables.bump("image bytes", byte_bucket(img.len));
            }
        }
        if n == 0 && !args.selection.filter().is_empty() {
            return Ok(nothing_matched("stats", &args.selection, ds.manifest()));
        }
        if args.json {
            out(&serde_json::json!({
                "records": n,
                "turns": turns,
                "tables": tables.counts,
            })
            .to_string())?;
            return Ok(ExitCode::SUCCESS);
        }
        out(&format!("records: {n}, turns: {turns}"))?;
        for (table, rows) in &tables.counts {
            out(&format!("\n{}", heading(table, turns)))?;
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
    /// Print one JSON object (counts, "ok", and each problem with its hint) at the end
    /// instead of the lines.
    #[arg(long)]
    pub json: bool,
    /// Check each shard against the manifest by what its store reports (length and
    /// CRC-64/NVME: one HEAD per shard on S3), without reading it; shards whose store reports
    /// no checksum (plain HTTP, or a manifest without crc64nvme) are read and hashed. Does not
    /// look at the records inside: without --remote, every byte is read and checked.
    #[arg(long = "remote", conflicts_with = "decode")]
    pub by_store: bool,
}

/// What `verify` advises when it finds damage.
const REPAIR_ADVICE: &str = "fetch the damaged shards again if a good copy exists (`editshard \
     mirror`); otherwise `editshard repair DATASET --out DEST` writes a new dataset with every \
     intact record and reports each lost one";

pub fn run_verify(args: VerifyArgs) -> Result<ExitCode> {
    if args.by_store {
        let storage = args.source.remote.storage_options();
        return super::verify_stored::run(&args.source.dataset, &storage, args.json);
    }
    super::runtime()?.block_on(async {
        let ds = args.source.open().await?;
        let report = verify(
            &ds,
            VerifyOptions {
                decode: args.decode,
            },
            |problem| {
                if !args.json {
                    let _ = out(&format!("DAMAGED {problem}"));
                }
            },
        )
        .await?;
        let code = if report.is_ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_PROBLEMS)
        };
        if args.json {
            let problems: Vec<serde_json::Value> = report
                .problems
                .iter()
                .map(|p| serde_json::json!({"problem": p.to_string(), "hint": editshard::advice::hint(p)}))
                .collect();
            let mut summary = serde_json::json!({
                "shards": report.shards,
                "records": report.records,
                "images": report.images,
                "bytes": report.bytes,
                "ok": report.is_ok(),
                "problems": problems,
            });
            if !report.is_ok() {
                summary["advice"] = REPAIR_ADVICE.into();
            }
            out(&summary.to_string())?;
            return Ok(code);
        }
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
        if !report.is_ok() {
            out(&format!("  hint: {REPAIR_ADVICE}"))?;
        }
        Ok(code)
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

    #[test]
    fn closest_values() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        let known = [
            "Zoom in",
            "Change weather conditions (sunny/rainy/snowy)",
            "zoom  IN",
        ];
        assert_eq!(
            closest("change wether", known.iter().copied())[0],
            "Change weather conditions (sunny/rainy/snowy)"
        );
        // Spellings of one value are suggested once.
        assert_eq!(closest("zom in", known.iter().copied()).len(), 2);
    }
}
