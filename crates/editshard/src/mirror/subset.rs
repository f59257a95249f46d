//! `mirror --subset`: a smaller dataset with its own manifest.
//!
//! Every selected shard is read record by record (CRCs checked), the records the filter
//! accepts are written to a new shard in a local staging directory, and that shard is
//! published under the source shard's name. Rewriting even shards whose records all pass
//! keeps one code path and makes the new manifest's counts (kinds, edit types, images) exact:
//! the source manifest only has totals for the whole dataset. The writer is deterministic, so
//! a re-run produces the same bytes and finds already-published shards intact.

use std::io::BufWriter;
use std::ops::Range;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;

use crate::error::{Error, Result};
use crate::read::{Dataset, Filter, StreamOptions};
use crate::record::Kind;
use crate::shard::{ShardSummary, ShardWriter};

/// Which records a subset keeps. Within one field any value matches; fields combine with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subset {
    pub filter: Filter,
    /// Shards by position in the source manifest, half-open, 0-based.
    pub shards: Option<Range<usize>>,
}

impl Subset {
    /// Parses `--subset` expressions: `kind=sft,preference`, `edit-type=Zoom in` (one type per
    /// expression: types contain commas), `category=Stylistic`, `shards=0..10`.
    pub fn parse(exprs: &[String]) -> Result<Subset> {
        let mut out = Subset::default();
        for expr in exprs {
            let bad = |why: String| {
                Error::invalid(format!(
                    "--subset {expr:?}: {why} (expected kind=K[,K...], edit-type=TYPE, \
                     category=CATEGORY or shards=A..B)"
                ))
            };
            let (key, value) = expr.split_once('=').ok_or_else(|| bad("no `=`".into()))?;
            let value = value.trim();
            if value.is_empty() {
                return Err(bad("empty value".into()));
            }
            match key.trim() {
                "kind" => {
                    for k in value.split(',') {
                        let kind = Kind::from_name(k.trim()).ok_or_else(|| {
                            bad(format!(
                                "unknown kind {k:?}; kinds are generic, sft, preference, \
                                 multi-turn"
                            ))
                        })?;
                        out.filter.kinds.push(kind);
                    }
                }
                "edit-type" => out.filter.edit_types.push(value.to_string()),
                "category" => out.filter.categories.push(value.to_string()),
                "shards" => {
                    let (a, b) = value
                        .split_once("..")
                        .ok_or_else(|| bad("a shard range is written A..B".into()))?;
                    let num = |s: &str| {
                        s.trim()
                            .parse::<usize>()
                            .map_err(|_| bad(format!("{s:?} is not a shard number")))
                    };
                    let range = num(a)?..num(b)?;
                    if range.is_empty() {
                        return Err(bad("the shard range is empty".into()));
                    }
                    out.shards = Some(range);
                }
                other => return Err(bad(format!("unknown field {other:?}"))),
            }
        }
        Ok(out)
    }

    /// The selected shard positions among `n` shards.
    pub fn select(&self, n: usize) -> Result<Range<usize>> {
        match &self.shards {
            None => Ok(0..n),
            Some(r) if r.start >= n => Err(Error::invalid(format!(
                "--subset shards={}..{}: the source has only {n} shards (0..{n})",
                r.start, r.end
            ))),
            Some(r) => Ok(r.start..r.end.min(n)),
        }
    }

    /// A description kept in the new manifest (an extra field readers ignore).
    pub fn describe(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        let f = &self.filter;
        if !f.kinds.is_empty() {
            let kinds: Vec<&str> = f.kinds.iter().map(|k| k.name()).collect();
            m.insert("kinds".into(), kinds.into());
        }
        if !f.edit_types.is_empty() {
            m.insert("edit_types".into(), f.edit_types.clone().into());
        }
        if !f.categories.is_empty() {
            m.insert("categories".into(), f.categories.clone().into());
        }
        if let Some(r) = &self.shards {
            m.insert("shards".into(), format!("{}..{}", r.start, r.end).into());
        }
        m.into()
    }
}

/// A unique staging file for shard `s`.
pub fn staging_path(dir: &Path, s: usize) -> PathBuf {
    dir.join(format!("shard-{s:06}.esd{}", crate::atomic::PARTIAL_SUFFIX))
}

/// Writes the records of shard `s` that `filter` accepts to `out`. `None` (and no file) when
/// none passes.
pub async fn rewrite(
    ds: &Dataset,
    s: usize,
    filter: &Filter,
    out: &Path,
) -> Result<Option<ShardSummary>> {
    let name = ds.manifest().shards[s].path.clone();
    let mut stream = ds.stream(StreamOptions {
        shards: Some(vec![s]),
        prefetch_bytes: 64 << 20,
        ..StreamOptions::default()
    });
    let shown = out.display().to_string();
    let file =
        crate::atomic::create_new(out).map_err(|e| Error::from(e).in_shard(shown.clone()))?;
    // File writes are short and sequential; the reading side is what overlaps.
    let mut writer = ShardWriter::new(BufWriter::with_capacity(1 << 20, file))?;
    let mut kept = 0u64;
    while let Some(record) = stream.next().await {
        let record = record.map_err(|e| e.in_shard(name.clone()))?;
        if filter.accepts(&record) {
            writer
                .append(&record)
                .map_err(|e| e.in_shard(shown.clone()))?;
            kept += 1;
        }
    }
    if kept == 0 {
        drop(writer);
        let _ = std::fs::remove_file(out);
        return Ok(None);
    }
    let (buf, summary) = writer.finish().map_err(|e| e.in_shard(shown.clone()))?;
    let file = buf
        .into_inner()
        .map_err(|e| Error::from(e.into_error()).in_shard(shown.clone()))?;
    file.sync_all()
        .map_err(|e| Error::from(e).in_shard(shown.clone()))?;
    Ok(Some(summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(exprs: &[&str]) -> Result<Subset> {
        Subset::parse(&exprs.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_expressions() {
        let s = parse(&[
            "kind=sft,multi-turn",
            "edit-type=Change an object's attribute (e.g., color/material)",
            "shards=2..5",
        ])
        .unwrap();
        assert_eq!(s.filter.kinds, vec![Kind::Sft, Kind::MultiTurn]);
        assert_eq!(
            s.filter.edit_types.len(),
            1,
            "commas stay inside an edit type"
        );
        assert_eq!(s.shards, Some(2..5));
        assert_eq!(s.select(4).unwrap(), 2..4);
        assert!(s.select(2).is_err());
        for bad in [
            "kind=nope",
            "shards=3..3",
            "shards=a..b",
            "colour=red",
            "kind",
            "kind=",
        ] {
            assert!(parse(&[bad]).is_err(), "{bad}");
        }
    }
}
