//! The conversion plan: which rows become records, in which order, in which part.
//!
//! Everything here is a pure function of the JSONL bytes and the options, so every run (and
//! every resumed run) of the same command computes the same plan:
//!
//! 1. Read every selected subset in file order (sft, preference, multi-turn), at most
//!    `--limit` non-blank lines each. Parse and check each row, including that every image
//!    reference resolves to a safe place. Rows that fail become [`Failure`]s.
//! 2. Detect collisions (two rows of a subset with the same natural key) over the *whole*
//!    input, before any part split, so that every part agrees on them.
//! 3. Keep the rows of this part: part = first 8 bytes of SHA-256(source URL) mod N, so all
//!    rows of a source land in the same part.
//! 4. Order the rows by source, sources in order of first appearance, rows of a source in
//!    file order. Rows sharing a source are therefore consecutive, and the shard writer
//!    stores their shared images once.
//! 5. Cut the order into batches of at most [`BATCH_ROWS`] rows of one source: the unit of
//!    fetching, which bounds memory.
//!
//! The plan keeps ~64 bytes per row (file offsets, not the rows themselves); rows are read
//! again when their batch is fetched.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::resolve::Resolver;
use crate::failures::Failure;
use editshard::error::{Error, Result};
use editshard_pico::rows::{self, LineReader, ParsedRow, Subset};

/// Most rows fetched together. Rows of one source beyond this go into the next batch (the
/// shared source is then read from the cache).
pub const BATCH_ROWS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum CollisionPolicy {
    /// Every row of a colliding key fails (the release's duplicated rows are corrupted).
    DropAll,
    /// The first row (lowest line) is kept, the others fail.
    KeepFirst,
}

#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// `(subset, local JSONL path)` in conversion order.
    pub inputs: Vec<(Subset, PathBuf)>,
    pub limit: Option<u64>,
    pub collisions: CollisionPolicy,
    /// `(index, count)`, 0-based.
    pub part: Option<(u32, u32)>,
    /// Only these rows (`--retry-failed`).
    pub only: Option<HashSet<(Subset, u64)>>,
    /// Collect the source URLs (for the Open Images index).
    pub want_sources: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanRow {
    pub subset: Subset,
    pub line: u64,
    pub offset: u64,
    pub len: u32,
    /// Index of the row's source in order of first appearance.
    pub group: u32,
}

#[derive(Debug, Default)]
pub struct Plan {
    /// Rows to convert, in conversion order.
    pub rows: Vec<PlanRow>,
    /// Ranges of `rows`, each of one source.
    pub batches: Vec<Range<usize>>,
    /// Rows of this part that failed before any download.
    pub failures: Vec<Failure>,
    /// Non-blank lines read per subset (whole input, before the part split).
    pub rows_read: BTreeMap<String, u64>,
    pub source_urls: HashSet<String>,
    /// SHA-256 over the JSONL bytes read: part of the resume fingerprint.
    pub input_sha256: [u8; 32],
}

struct Candidate {
    subset: Subset,
    line: u64,
    offset: u64,
    len: u32,
    key: u128,
    source: u128,
}

fn hash128(s: &str) -> u128 {
    let d = Sha256::digest(s.as_bytes());
    u128::from_be_bytes(d[..16].try_into().expect("16 bytes"))
}

/// The part (0-based, of `n`) a source URL belongs to.
#[cfg(test)]
pub fn part_of(source_url: &str, n: u32) -> u32 {
    let d = Sha256::digest(source_url.as_bytes());
    (u64::from_be_bytes(d[..8].try_into().expect("8 bytes")) % u64::from(n.max(1))) as u32
}

/// Reads a line again by its offset and length.
pub fn read_line_at(path: &Path, offset: u64, len: u32) -> std::io::Result<Vec<u8>> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0; len as usize];
    f.read_exact(&mut buf)?;
    Ok(buf)
}

/// Checks that every image reference of a row resolves.
pub fn check_refs(
    row: &ParsedRow,
    resolver: &Resolver,
) -> std::result::Result<(), (String, String)> {
    resolver
        .url(&row.source_url)
        .map_err(|e| (row.source_url.clone(), e))?;
    for r in row.edited_refs() {
        resolver.release_ref(r).map_err(|e| (r.to_string(), e))?;
    }
    Ok(())
}

pub fn build(opts: &PlanOptions, resolver: &Resolver) -> Result<Plan> {
    let mut plan = Plan::default();
    let mut hasher = Sha256::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut early: Vec<(Failure, Option<u128>)> = Vec::new();
    for (subset, path) in &opts.inputs {
        let ctx = |e: std::io::Error| Error::from(e).in_shard(path.display().to_string());
        let file = File::open(path).map_err(ctx)?;
        let mut reader = LineReader::new(BufReader::with_capacity(1 << 20, file));
        let mut read = 0u64;
        hasher.update(subset.name().as_bytes());
        while let Some(line) = reader.next_line().map_err(ctx)? {
            if opts.limit.is_some_and(|l| read >= l) {
                break;
            }
            let bytes = match line.content {
                Ok(b) => b,
                Err(len) => {
                    hasher.update(len.to_le_bytes());
                    read += 1;
                    let f = Failure::new(
                        *subset,
                        line.number,
                        "line-too-long",
                        format!(
                            "line of {len} bytes (at most {} read)",
                            rows::MAX_LINE_BYTES
                        ),
                    );
                    early.push((f, None));
                    continue;
                }
            };
            hasher.update(&bytes);
            let content = rows::trim_line(&bytes, line.number == 1);
            if rows::is_blank(content) {
                continue;
            }
            read += 1;
            let row = match rows::parse_row(*subset, line.number, content) {
                Ok(r) => r,
                Err(e) => {
                    let f = Failure::new(*subset, line.number, e.reason, e.detail).id(e.id);
                    early.push((f, None));
                    continue;
                }
            };
            let source = hash128(&row.source_url);
            if let Err((url, why)) = check_refs(&row, resolver) {
                let f = Failure::new(*subset, line.number, "unsafe-path", why)
                    .id(Some(row.id.clone()))
                    .url(Some(url));
                early.push((f, Some(source)));
                continue;
            }
            if opts.want_sources {
                plan.source_urls.insert(row.source_url.clone());
            }
            // The content may start after a byte order mark.
            let skip = content.as_ptr() as usize - bytes.as_ptr() as usize;
            candidates.push(Candidate {
                subset: *subset,
                line: line.number,
                offset: line.offset + skip as u64,
                len: content.len() as u32,
                key: hash128(&row.id),
                source,
            });
        }
        plan.rows_read.insert(subset.name().to_string(), read);
    }
    plan.input_sha256 = hasher.finalize().into();

    // Collisions, over the whole input.
    let mut by_key: HashMap<u128, Vec<usize>> = HashMap::new();
    for (i, c) in candidates.iter().enumerate() {
        by_key.entry(c.key).or_default().push(i);
    }
    let mut failed = vec![false; candidates.len()];
    let paths: HashMap<Subset, &PathBuf> = opts.inputs.iter().map(|(s, p)| (*s, p)).collect();
    let mut colliding: Vec<&Vec<usize>> = by_key.values().filter(|v| v.len() > 1).collect();
    colliding.sort();
    for group in colliding {
        let lines: Vec<String> = group
            .iter()
            .map(|&i| candidates[i].line.to_string())
            .collect();
        for (k, &i) in group.iter().enumerate() {
            if opts.collisions == CollisionPolicy::KeepFirst && k == 0 {
                continue;
            }
            failed[i] = true;
            let c = &candidates[i];
            let row = read_line_at(paths[&c.subset], c.offset, c.len)
                .ok()
                .and_then(|b| rows::parse_row(c.subset, c.line, &b).ok());
            let detail = match opts.collisions {
                CollisionPolicy::DropAll => format!(
                    "lines {} of {} share this output image; such rows are known to be \
                     corrupted, so all are dropped (--on-collision keep-first keeps the first)",
                    lines.join(", "),
                    c.subset.file()
                ),
                CollisionPolicy::KeepFirst => format!(
                    "duplicate of line {} of {} (kept); this copy is dropped",
                    lines[0],
                    c.subset.file()
                ),
            };
            let f = Failure::new(c.subset, c.line, "collision", detail)
                .id(row.as_ref().map(|r| r.id.clone()))
                .url(row.map(|r| r.source_url));
            early.push((f, Some(c.source)));
        }
    }

    let in_part = |source: Option<u128>| match (opts.part, source) {
        (None, _) => true,
        (Some((i, n)), Some(s)) => ((s >> 64) as u64 % u64::from(n.max(1))) as u32 == i,
        // Rows without a readable source are reported by part 0.
        (Some((i, _)), None) => i == 0,
    };
    let wanted = |subset: Subset, line: u64| {
        opts.only
            .as_ref()
            .is_none_or(|only| only.contains(&(subset, line)))
    };
    for (f, source) in early {
        let subset = Subset::from_name(&f.subset).expect("set from a Subset");
        if in_part(source) && wanted(subset, f.line) {
            plan.failures.push(f);
        }
    }
    plan.failures.sort_by_key(Failure::sort_key);

    let mut groups: HashMap<u128, u32> = HashMap::new();
    for (i, c) in candidates.iter().enumerate() {
        if failed[i] || !in_part(Some(c.source)) || !wanted(c.subset, c.line) {
            continue;
        }
        let next = groups.len() as u32;
        let group = *groups.entry(c.source).or_insert(next);
        plan.rows.push(PlanRow {
            subset: c.subset,
            line: c.line,
            offset: c.offset,
            len: c.len,
            group,
        });
    }
    drop(candidates);
    plan.rows.sort_by_key(|r| r.group);
    let mut start = 0;
    for i in 1..=plan.rows.len() {
        let cut = i == plan.rows.len()
            || plan.rows[i].group != plan.rows[start].group
            || i - start >= BATCH_ROWS;
        if cut {
            plan.batches.push(start..i);
            start = i;
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_split_uses_the_same_hash_as_the_plan() {
        // `in_part` takes the top 64 bits of the 128-bit source hash: check that it agrees
        // with `part_of`, which documents the rule.
        for url in ["https://a/1.jpg", "https://b/2.jpg", "x"] {
            let h = hash128(url);
            assert_eq!(((h >> 64) as u64 % 7) as u32, part_of(url, 7));
        }
    }
}
