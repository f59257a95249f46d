//! `failures.jsonl`: one line per release row that did not become a record.
//!
//! Each line is `{"subset", "line", "id", "url", "reason", "detail"}`: `line` is the 1-based
//! line in the subset's JSONL file, `id` the record id the row would have had (null when the
//! line could not be read), `url` the image that failed (or the row's source), `reason` a
//! short code counted in the summary (`malformed-json`, `bad-row`, `unsafe-path`,
//! `collision`, `http-404`, `network`, `missing-file`, `too-large`, `invalid-image`,
//! `invalid-record`, `line-too-long`) and `detail` a sentence for humans. Lines are sorted by
//! subset then line, so the file is the same whatever order downloads finished in.
//!
//! Parquet conversions (`--preset`, `--mapping`) add `file`, `row_group` and `row` (see
//! [`Failure::file`]) with the reasons `missing-image`, `invalid-image`, `bad-row`,
//! `duplicate-turn`, `too-large`, `unreadable-row-group`, `missing-rows` and
//! `invalid-record`; a line may stand for several consecutive rows (`rows`).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use editshard_pico::rows::Subset;

pub const FAILURES_NAME: &str = "failures.jsonl";
/// Largest failures file `--retry-failed` reads.
pub const MAX_FAILURES_BYTES: usize = 1 << 30;

/// How many rows the `failures.jsonl` in `root` lists as failed (0 without one): a line
/// counts for its `rows`.
pub async fn count_in(root: &editshard::storage::Location) -> u64 {
    let Ok(bytes) = root.get_max(FAILURES_NAME, MAX_FAILURES_BYTES as u64).await else {
        return 0;
    };
    bytes
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice::<Failure>(l)
                .ok()
                .and_then(|f| f.rows)
                .unwrap_or(1)
        })
        .fold(0u64, u64::saturating_add)
}

/// How many rows `failures` stand for (a line counts for its `rows`).
pub fn rows_of(failures: &[Failure]) -> u64 {
    failures
        .iter()
        .map(|f| f.rows.unwrap_or(1))
        .fold(0, u64::saturating_add)
}

/// What a conversion's failures add up to, counted as they are written (the failures
/// themselves go to disk: a dataset where every row fails is not held in memory).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Lines of `failures.jsonl`.
    pub lines: u64,
    /// Rows they stand for (a line counts for its `rows`).
    pub rows: u64,
    /// Lines by reason.
    pub by_reason: BTreeMap<String, u64>,
}

impl Tally {
    pub fn add(&mut self, f: &Failure) {
        self.lines += 1;
        self.rows = self.rows.saturating_add(f.rows.unwrap_or(1));
        match self.by_reason.get_mut(&f.reason) {
            Some(n) => *n += 1,
            None => {
                self.by_reason.insert(f.reason.clone(), 1);
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub subset: String,
    pub line: u64,
    pub id: Option<String>,
    pub url: Option<String>,
    pub reason: String,
    pub detail: String,
    /// Parquet sources (`convert --preset/--mapping`): the file under SOURCE, its row group
    /// and the row from 0 across the file. `subset` is then the mapping's name and `line` the
    /// 1-based row across all the dataset's files in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_group: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    /// Parquet sources: how many consecutive rows from `row` (and `line`) this line stands
    /// for, when more than one (the rest of a row group that cannot be read, or rows its
    /// footer lists and its pages do not hold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

impl Failure {
    pub fn new(
        subset: Subset,
        line: u64,
        reason: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Failure {
            subset: subset.name().to_string(),
            line,
            id: None,
            url: None,
            reason: reason.into(),
            detail: detail.into(),
            file: None,
            row_group: None,
            row: None,
            rows: None,
        }
    }
    pub fn id(mut self, id: Option<String>) -> Self {
        self.id = id;
        self
    }
    pub fn url(mut self, url: Option<String>) -> Self {
        self.url = url;
        self
    }
    pub fn sort_key(&self) -> (u8, u64) {
        let s = Subset::from_name(&self.subset).map_or(u8::MAX, Subset::index);
        (s, self.line)
    }
}

/// Serializes failures sorted by subset and line, one JSON object per line.
pub fn to_jsonl(failures: &mut [Failure]) -> Vec<u8> {
    failures.sort_by_key(Failure::sort_key);
    let mut out = Vec::new();
    for f in failures.iter() {
        serde_json::to_writer(&mut out, f).expect("a failure always serializes");
        out.push(b'\n');
    }
    out
}

/// The `(subset, line)` pairs of a failures file, for `--retry-failed`.
pub fn parse_rows(bytes: &[u8]) -> editshard::Result<HashSet<(Subset, u64)>> {
    parse_each(bytes, |f, line| {
        let subset = Subset::from_name(&f.subset).ok_or_else(|| {
            editshard::Error::malformed(format!(
                "{FAILURES_NAME} line {line}: unknown subset {:?}",
                f.subset
            ))
        })?;
        Ok((subset, f.line))
    })
}

/// Each failure of a failures file, as `key` makes it (given the failure and its 1-based
/// line in the file).
fn parse_each<K: std::hash::Hash + Eq>(
    bytes: &[u8],
    key: impl Fn(Failure, usize) -> editshard::Result<K>,
) -> editshard::Result<HashSet<K>> {
    if bytes.len() > MAX_FAILURES_BYTES {
        return Err(editshard::Error::limit(format!(
            "{FAILURES_NAME} is {} bytes; at most {MAX_FAILURES_BYTES} are read",
            bytes.len()
        )));
    }
    let mut out = HashSet::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if editshard_pico::rows::is_blank(line) {
            continue;
        }
        let f: Failure = serde_json::from_slice(line).map_err(|e| {
            editshard::Error::malformed(format!("{FAILURES_NAME} line {}: {e}", i + 1))
        })?;
        out.insert(key(f, i + 1)?);
    }
    Ok(out)
}

/// The rows of a Parquet conversion's failures file (their ordinals, `line - 1`), for
/// `--retry-failed`.
pub fn parse_ordinals(bytes: &[u8]) -> editshard::Result<HashSet<u64>> {
    parse_each(bytes, |f, _| Ok(f.line.saturating_sub(1)))
}
