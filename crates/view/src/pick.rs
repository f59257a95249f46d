//! Which records a gallery page shows: walks the dataset in stored or seeded-random order from
//! the page's start position, checks the kind and id from the shard index (no record bytes),
//! then reads the metadata of the candidates (one coalesced ranged read per group of adjacent
//! records, no image bytes) and applies the label and score filters to it.
//!
//! A damaged record (or shard footer) becomes a located error in the page, in the place of
//! its card: the rest of the page still shows.

use editshard::read::{Dataset, EpochOrder, Filter, Images, Shuffle};
use editshard::record::Record;
use editshard::{Error, Result};

use crate::query::Selection;

/// Records whose metadata a filtered page may read before it stops and offers "next"
/// (bounds the cost of one request when a filter matches little).
pub const METADATA_SCAN: u64 = 2048;
/// Records a page may check against the shard index alone (kind, id search).
pub const INDEX_SCAN: u64 = 1_000_000;
/// Candidates whose metadata is read together while a metadata filter is scanning.
const METADATA_CHUNK: usize = 64;

/// One card of a page: the record's global index and its metadata, or why it cannot be read.
pub struct Shown {
    pub index: u64,
    pub record: std::result::Result<Record, Error>,
}

pub struct Picked {
    pub shown: Vec<Shown>,
    /// Where the next page starts, if anything is left to look at.
    pub next: Option<u64>,
    /// Records looked at for this page.
    pub scanned: u64,
    /// True when the scan stopped at its budget before filling the page.
    pub budget_spent: bool,
}

/// The global index at each position of the selection's order.
pub struct Order(Option<EpochOrder>);

impl Order {
    pub fn new(ds: &Dataset, seed: Option<u64>) -> Order {
        Order(seed.map(|seed| {
            let counts: Vec<u64> = ds.manifest().shards.iter().map(|s| s.records).collect();
            EpochOrder::new(&counts, Shuffle::Full, seed, 0)
        }))
    }
    pub fn at(&self, position: u64) -> u64 {
        match &self.0 {
            Some(order) => order.record_at(position),
            None => position,
        }
    }
}

pub async fn pick(ds: &Dataset, sel: &Selection) -> Picked {
    let len = ds.len();
    let order = Order::new(ds, sel.seed);
    let budget = if sel.needs_metadata() {
        METADATA_SCAN
    } else {
        INDEX_SCAN
    };
    let label_filter = Filter {
        edit_types: sel.edit_type.iter().cloned().collect(),
        categories: sel.category.iter().cloned().collect(),
        ..Filter::default()
    };
    let id_needle = sel.id.as_deref().map(str::to_lowercase);
    let mut shown = Vec::new();
    let mut pos = sel.start;
    let mut scanned = 0u64;
    let mut next = None;
    'pages: while shown.len() < sel.per_page && pos < len && scanned < budget {
        let want = if sel.needs_metadata() {
            METADATA_CHUNK
        } else {
            sel.per_page - shown.len()
        };
        // (position, index, index error) of candidates that pass the index checks or could
        // not be checked (their error takes the card's place).
        let mut chunk: Vec<(u64, u64, Option<Error>)> = Vec::new();
        while chunk.len() < want && pos < len && scanned < budget {
            let index = order.at(pos);
            pos += 1;
            scanned += 1;
            match index_accepts(ds, sel, id_needle.as_deref(), index).await {
                Ok(true) => chunk.push((pos - 1, index, None)),
                Ok(false) => {}
                Err(e) => chunk.push((pos - 1, index, Some(e))),
            }
        }
        for (at, index, record) in read_metadata(ds, chunk, &label_filter).await {
            let keep = match &record {
                Ok(Some(r)) => score_accepts(sel, r),
                Ok(None) => false,
                Err(_) => true,
            };
            if keep {
                shown.push(Shown {
                    index,
                    record: record.map(|r| r.expect("kept records are present")),
                });
                if shown.len() >= sel.per_page {
                    next = Some(at + 1).filter(|&n| n < len);
                    break 'pages;
                }
            }
        }
    }
    if next.is_none() && pos < len && shown.len() < sel.per_page {
        // The scan budget ran out: the next page goes on from here.
        next = Some(pos);
    }
    Picked {
        budget_spent: scanned >= budget && pos < len,
        shown,
        next,
        scanned,
    }
}

/// Kind and id checks from the shard index (a footer read the first time a shard is seen);
/// `id_needle` is the id search in lower case.
async fn index_accepts(
    ds: &Dataset,
    sel: &Selection,
    id_needle: Option<&str>,
    index: u64,
) -> Result<bool> {
    if sel.kind.is_none() && id_needle.is_none() {
        return Ok(true);
    }
    let (s, local) = ds
        .locate(index)
        .ok_or_else(|| Error::bug(format!("record #{index} is past the end")))?;
    let shard = ds.shard(s).await?;
    let loc = shard.index().record(local);
    let kind_ok = sel.kind.is_none_or(|k| k == loc.kind);
    let id_ok = id_needle.is_none_or(|needle| loc.id.to_lowercase().contains(needle));
    Ok(kind_ok && id_ok)
}

/// Score thresholds: some turn's chosen output has the score, within the bounds.
pub fn score_accepts(sel: &Selection, r: &Record) -> bool {
    if sel.min.is_none() && sel.max.is_none() {
        return true;
    }
    let name = sel.score.as_deref().unwrap_or("overall");
    r.turns.iter().any(|t| {
        t.output.scores.iter().any(|s| {
            s.name == name
                && sel.min.is_none_or(|m| s.value >= m)
                && sel.max.is_none_or(|m| s.value <= m)
        })
    })
}

type Read = (u64, u64, std::result::Result<Option<Record>, Error>);

/// Metadata of the chunk's readable candidates in one batch; if the batch fails, record by
/// record, so that the error lands on the damaged record's card alone.
async fn read_metadata(
    ds: &Dataset,
    chunk: Vec<(u64, u64, Option<Error>)>,
    filter: &Filter,
) -> Vec<Read> {
    let indices: Vec<u64> = chunk
        .iter()
        .filter(|c| c.2.is_none())
        .map(|c| c.1)
        .collect();
    let batch = if indices.is_empty() {
        Ok(Vec::new())
    } else {
        ds.select(&indices, Images::None, filter, None).await
    };
    let mut batch = batch.ok().map(|v| v.into_iter());
    let mut out = Vec::with_capacity(chunk.len());
    for (at, i, error) in chunk {
        let read = match (error, batch.as_mut()) {
            (Some(e), _) => Err(e),
            (None, Some(records)) => Ok(records.next().flatten()),
            (None, None) => ds
                .select(&[i], Images::None, filter, None)
                .await
                .map(|mut v| v.pop().flatten()),
        };
        out.push((at, i, read));
    }
    out
}
