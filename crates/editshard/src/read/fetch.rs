//! Fetching records by index: coalesced ranged reads, projection and filters.
//!
//! A batch of wanted records is read in at most two phases, each one set of ranged reads
//! where ranges that touch or overlap (or lie within `coalesce_gap` of each other) are merged
//! into one request:
//! - first the metadata blocks (contiguous within a group). When all images are wanted and
//!   no filter needs the metadata, the images come in this phase too: the record's whole
//!   span (one request) if it holds at most `span_slack` bytes of other records, else the
//!   metadata and each image range;
//! - then, for the records the filter kept, the chosen images not fetched yet.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};

use super::select::{Filter, Images, roles};
use super::shards::{Inner, LoadedShard};
use crate::error::{Error, Result};
use crate::record::Record;

/// Called with each damaged record that is skipped instead of failing the read.
pub type SkipFn = Arc<dyn Fn(&Error) + Send + Sync>;

/// The default skip handler: a warning through the `log` facade (target `editshard`), which
/// the `editshard` command prints on standard error and a library user routes wherever their
/// logs go. The library itself never prints.
pub fn log_skip() -> SkipFn {
    Arc::new(|e: &Error| log::warn!(target: "editshard", "skipping damaged record: {e}"))
}

/// Merges sorted-by-start ranges that overlap or lie within `gap` bytes, up to `max` bytes per
/// merged range (a single larger range is kept whole).
pub fn coalesce(mut ranges: Vec<Range<u64>>, gap: u64, max: u64) -> Vec<Range<u64>> {
    ranges.retain(|r| !r.is_empty());
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut out: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        if let Some(last) = out.last_mut() {
            let end = last.end.max(r.end);
            if r.start <= last.end.saturating_add(gap) && end - last.start <= max {
                last.end = end;
                continue;
            }
            if r.end <= last.end {
                continue; // contained in the last range
            }
        }
        out.push(r);
    }
    out
}

/// Bytes fetched from one shard: disjoint ranges, sorted.
#[derive(Default)]
struct Fetched {
    parts: Vec<(u64, Bytes)>,
}

impl Fetched {
    /// The fetched bytes covering `range`, and their start offset.
    fn covering(&self, range: &Range<u64>) -> Option<(&Bytes, u64)> {
        let i = self.parts.partition_point(|(s, _)| *s <= range.start);
        let (start, bytes) = self.parts.get(i.checked_sub(1)?)?;
        (range.end <= start + bytes.len() as u64).then_some((bytes, *start))
    }

    fn slice(&self, range: &Range<u64>) -> Option<Bytes> {
        let (bytes, start) = self.covering(range)?;
        Some(bytes.slice((range.start - start) as usize..(range.end - start) as usize))
    }
}

/// Fetches `ranges` of each shard (coalesced), all shards' requests sharing one
/// concurrency limit.
async fn fetch_all(
    inner: &Inner,
    wanted: BTreeMap<usize, (Arc<LoadedShard>, Vec<Range<u64>>)>,
) -> Result<HashMap<usize, Fetched>> {
    let opts = &inner.options;
    let mut requests = Vec::new();
    for (s, (shard, ranges)) in wanted {
        for r in coalesce(ranges, opts.coalesce_gap, opts.max_request) {
            requests.push((s, shard.clone(), r));
        }
    }
    let parts: Vec<(usize, u64, Bytes)> = futures_util::stream::iter(requests)
        .map(|(s, shard, r)| async move {
            let start = r.start;
            let bytes = super::shards::read_range(
                &inner.location,
                shard.path(),
                shard.mapped(),
                r,
                shard.name(),
            )
            .await?;
            Ok::<_, Error>((s, start, bytes))
        })
        .buffer_unordered(opts.concurrency.max(1))
        .try_collect()
        .await?;
    let mut out: HashMap<usize, Fetched> = HashMap::new();
    for (s, start, bytes) in parts {
        out.entry(s).or_default().parts.push((start, bytes));
    }
    for f in out.values_mut() {
        f.parts.sort_by_key(|(s, _)| *s);
    }
    Ok(out)
}

/// What happens to a damaged record.
fn damaged(e: Error, skip: Option<&SkipFn>) -> Result<Option<Record>> {
    match skip {
        Some(log) if e.is_corruption() => {
            log(&e);
            Ok(None)
        }
        _ => Err(e),
    }
}

fn not_fetched(shard: &LoadedShard, local: usize) -> Error {
    Error::bug(format!("record #{local} was not fetched")).in_shard(shard.name().to_string())
}

/// Reads the records `wants` (shard, record within shard) with the given projection and
/// filter. The result is aligned with `wants`; `None` means filtered out, or damaged and
/// skipped (when `skip` is given).
pub(crate) async fn fetch_records(
    inner: &Arc<Inner>,
    wants: &[(usize, usize)],
    images: Images,
    filter: &Filter,
    skip: Option<&SkipFn>,
) -> Result<Vec<Option<Record>>> {
    let mut shards: BTreeMap<usize, Arc<LoadedShard>> = BTreeMap::new();
    for &(s, _) in wants {
        if let std::collections::btree_map::Entry::Vacant(slot) = shards.entry(s) {
            slot.insert(inner.shard(s).await?);
        }
    }
    for &(s, local) in wants {
        let shard = &shards[&s];
        if local >= shard.index().len() {
            return Err(Error::invalid(format!(
                "record #{local} does not exist: the shard has {}",
                shard.index().len()
            ))
            .in_shard(shard.name().to_string()));
        }
    }
    // The kind is in the index: records of other kinds cost nothing.
    let todo: Vec<usize> = (0..wants.len())
        .filter(|&i| {
            let (s, local) = wants[i];
            filter.accepts_kind(shards[&s].index().record(local).kind)
        })
        .collect();
    let mut out: Vec<Option<Record>> = vec![None; wants.len()];

    // Phase 1: metadata, and when every image is wanted regardless of metadata, the images
    // too (the view says which ranges: the record's whole span when it holds little else).
    let direct = images == Images::All && !filter.needs_metadata();
    let mut first: BTreeMap<usize, (Arc<LoadedShard>, Vec<Range<u64>>)> = BTreeMap::new();
    for &i in &todo {
        let (s, local) = wants[i];
        let shard = &shards[&s];
        let ranges = shard
            .view()
            .fetch_ranges(local, direct, inner.options.span_slack)?;
        first
            .entry(s)
            .or_insert_with(|| (shard.clone(), Vec::new()))
            .1
            .extend(ranges);
    }
    let fetched = fetch_all(inner, first).await?;
    let mut kept = Vec::new();
    for &i in &todo {
        let (s, local) = wants[i];
        let shard = &shards[&s];
        let range = shard.view().metadata_range(local)?;
        let Some((bytes, start)) = fetched.get(&s).and_then(|f| f.covering(&range)) else {
            return Err(not_fetched(shard, local));
        };
        match shard.view().decode(local, bytes, start, false) {
            Ok(r) if filter.accepts(&r) => {
                out[i] = Some(r);
                kept.push(i);
            }
            Ok(_) => {}
            Err(e) => out[i] = damaged(e, skip)?,
        }
    }
    if images == Images::None || kept.is_empty() {
        return Ok(out);
    }

    // Phase 2: the chosen images not fetched yet.
    let chosen = |out: &[Option<Record>], i: usize| -> Result<Vec<(usize, Range<u64>)>> {
        let record = out[i].as_ref().expect("kept records are present");
        let (s, local) = wants[i];
        let ranges = shards[&s].view().image_ranges(local)?;
        Ok(roles(record)
            .into_iter()
            .zip(ranges)
            .enumerate()
            .filter(|(_, (role, _))| images.wants(*role))
            .map(|(k, (_, range))| (k, range))
            .collect())
    };
    let mut second: BTreeMap<usize, (Arc<LoadedShard>, Vec<Range<u64>>)> = BTreeMap::new();
    for &i in &kept {
        let s = wants[i].0;
        let shard = &shards[&s];
        for (_, range) in chosen(&out, i)? {
            if fetched.get(&s).and_then(|f| f.covering(&range)).is_none() {
                let entry = second
                    .entry(s)
                    .or_insert_with(|| (shard.clone(), Vec::new()));
                entry.1.push(range);
            }
        }
    }
    let fetched2 = if second.is_empty() {
        HashMap::new()
    } else {
        fetch_all(inner, second).await?
    };
    for &i in &kept {
        let (s, local) = wants[i];
        let shard = &shards[&s];
        let picks = chosen(&out, i)?;
        let record = out[i].as_mut().expect("kept records are present");
        let mut result = Ok(());
        for (k, range) in picks {
            let data = fetched
                .get(&s)
                .and_then(|f| f.slice(&range))
                .or_else(|| fetched2.get(&s).and_then(|f| f.slice(&range)));
            let Some(data) = data else {
                return Err(not_fetched(shard, local));
            };
            // The view checks the bytes: their CRC (the frame head checked in phase 1 says
            // the index's reference is the frame's own) and, with Verify::Full, the hash
            // the record's metadata gives.
            if let Err(e) = shard.view().attach_image(local, k, record, data) {
                result = Err(e);
                break;
            }
        }
        if let Err(e) = result {
            out[i] = damaged(e, skip)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::coalesce;

    #[test]
    fn coalesces_touching_and_overlapping_ranges() {
        let r = coalesce(vec![10..20, 0..10, 15..18, 30..40, 41..50], 0, 1000);
        assert_eq!(r, vec![0..20, 30..40, 41..50]);
        let r = coalesce(vec![0..10, 12..20, 30..40], 2, 1000);
        assert_eq!(r, vec![0..20, 30..40]);
        // The size cap splits a run.
        let r = coalesce(vec![0..10, 10..20, 20..30], 0, 20);
        assert_eq!(r, vec![0..20, 20..30]);
        let empty: Vec<std::ops::Range<u64>> = vec![5..5, 7..7];
        assert!(coalesce(empty, 0, 10).is_empty());
    }
}
