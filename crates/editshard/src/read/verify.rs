//! Checking a whole dataset: every shard against the manifest (length, SHA-256,
//! CRC-64/NVME where recorded, footer, record count), every frame and record CRC (by
//! streaming each shard once), the index against the frames, every image's length, hash and header, optionally a full decode, and
//! that no id appears twice in the dataset (across shards; by id hash, about 40 bytes per
//! record, each hit confirmed against the ids in the shards' indexes).
//! Every problem found is reported with its location; checking goes on after one.

use bytes::BytesMut;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio_util::codec::Decoder;

use super::dataset::Dataset;
use super::select::{Filter, Images};
use crate::error::{Error, Result};
use crate::hex::hex;
use crate::id_set::IdHashes;
use crate::record::Record;
use crate::shard::ShardDecoder;

/// What [`verify`] checks beyond the format.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions {
    /// Decode every image fully instead of reading its header only.
    pub decode: bool,
}

/// The outcome of [`verify`].
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub shards: usize,
    pub records: u64,
    pub images: u64,
    pub bytes: u64,
    /// Every problem, located (shard, record, id, offset as far as known).
    pub problems: Vec<Error>,
    /// The manifest's summaries recounted from the records and the indexes.
    counted: crate::shard::ShardStats,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies every shard of `ds`, calling `on_problem` as each problem is found. Fails only
/// when the dataset cannot be read at all; damage goes into the report.
pub async fn verify(
    ds: &Dataset,
    options: VerifyOptions,
    mut on_problem: impl FnMut(&Error),
) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let mut ids = IdHashes::default();
    for s in 0..ds.manifest().shards.len() {
        let mut problems = Vec::new();
        verify_shard(ds, s, options, &mut report, &mut problems).await?;
        check_unique_ids(ds, s, &mut ids, &mut problems).await?;
        if let Ok(shard) = ds.shard(s).await {
            let index = shard.index();
            report.counted.images_stored += index.blob_count() as u64;
            report.counted.image_bytes_stored +=
                index.blobs().map(|b| u64::from(b.len)).sum::<u64>();
        }
        for p in problems {
            on_problem(&p);
            report.problems.push(p);
        }
        report.shards += 1;
    }
    // Damage makes the recount incomplete: only an intact dataset is held to its summaries.
    if report.problems.is_empty() {
        for p in summaries_differ(ds.manifest(), &report.counted) {
            on_problem(&p);
            report.problems.push(p);
        }
    }
    Ok(report)
}

/// Where the manifest's summaries (what `ls` and `stats` print without reading a shard)
/// disagree with the records and indexes.
fn summaries_differ(
    m: &crate::manifest::Manifest,
    counted: &crate::shard::ShardStats,
) -> Vec<Error> {
    let mut out = Vec::new();
    let mut differ = |what: &str, says: String, holds: String| {
        if says != holds {
            out.push(
                Error::malformed(format!(
                    "the manifest's {what} say {says}, but the shards hold {holds}: it does not \
                     match its shards"
                ))
                .in_shard(crate::manifest::MANIFEST_NAME.to_string()),
            );
        }
    };
    // Counts of zero and absent keys are the same statement.
    let shown = |counts: &std::collections::BTreeMap<String, u64>| {
        let nonzero: Vec<_> = counts.iter().filter(|(_, n)| **n > 0).collect();
        format!("{nonzero:?}")
    };
    differ("kinds", shown(&m.kinds), shown(&counted.kinds));
    differ(
        "edit types",
        shown(&m.edit_types),
        shown(&counted.edit_types),
    );
    differ(
        "categories",
        shown(&m.categories),
        shown(&counted.categories),
    );
    let i = &m.images;
    differ(
        "image totals",
        format!(
            "{} referenced ({} bytes), {} stored ({} bytes)",
            i.referenced, i.bytes_referenced, i.stored, i.bytes_stored
        ),
        format!(
            "{} referenced ({} bytes), {} stored ({} bytes)",
            counted.images_referenced,
            counted.image_bytes_referenced,
            counted.images_stored,
            counted.image_bytes_stored
        ),
    );
    out
}

/// Adds shard `s`'s ids (from its index; a shard whose index cannot be read was reported
/// already) to `ids`, reporting each one an earlier shard holds, and each one the manifest's
/// id filter for the shard does not hold (a read by id would not find it).
async fn check_unique_ids(
    ds: &Dataset,
    s: usize,
    ids: &mut IdHashes<(u32, u32)>,
    problems: &mut Vec<Error>,
) -> Result<()> {
    let Ok(shard) = ds.shard(s).await else {
        return Ok(());
    };
    let filters = ds.id_filters().await?;
    let Some(filter) = filters.get(s) else {
        return Err(Error::bug(format!("no id filter for shard #{s}")));
    };
    for (local, loc) in shard.index().records().enumerate() {
        if !filter.may_contain(loc.id) {
            let frame = shard.index().frames()[loc.frame as usize];
            problems.push(
                Error::malformed(format!(
                    "the manifest's id filter for this shard does not hold record id {:?}: a \
                     read by id would not find it (the manifest does not match its shards)",
                    loc.id
                ))
                .in_shard(shard.name().to_string())
                .at_record(local as u64)
                .with_id(loc.id)
                .at_offset(frame.offset),
            );
        }
        let Some((ps, pl)) = ids.insert(loc.id, (s as u32, local as u32)) else {
            continue;
        };
        // A hash hit: confirm it against the earlier record's id.
        let Ok(earlier) = ds.shard(ps as usize).await else {
            continue;
        };
        if earlier.index().get(pl as usize).map(|r| r.id) != Some(loc.id) {
            continue;
        }
        let frame = shard.index().frames()[loc.frame as usize];
        problems.push(
            Error::malformed(format!(
                "record id {:?} is also record #{pl} of {}: ids are unique in a dataset, and \
                 a read by id finds only one of them",
                loc.id,
                earlier.name()
            ))
            .in_shard(shard.name().to_string())
            .at_record(local as u64)
            .with_id(loc.id)
            .at_offset(frame.offset),
        );
    }
    Ok(())
}

fn check_images(record: &Record, index: u64, name: &str, decode: bool, out: &mut Vec<Error>) {
    for (k, image) in record.images().enumerate() {
        let context = |e: Error| {
            e.in_shard(name.to_string())
                .at_record(index)
                .with_id(record.id.clone())
        };
        if let Err(e) = image.check_data() {
            out.push(context(Error::malformed(format!("image {k}: {e}"))));
            continue;
        }
        let Some(data) = &image.data else { continue };
        let probed = if decode {
            crate::probe::decode(data)
        } else {
            crate::probe::probe(data)
        };
        match probed {
            Ok(info) => {
                if (info.media_type, info.width, info.height)
                    != (image.media_type.as_str(), image.width, image.height)
                {
                    out.push(context(Error::malformed(format!(
                        "image {k} is a {}x{} {} but its metadata says {}x{} {}",
                        info.width,
                        info.height,
                        info.media_type,
                        image.width,
                        image.height,
                        image.media_type
                    ))));
                }
            }
            Err(e) => out.push(context(Error::malformed(format!("image {k}: {e}")))),
        }
    }
}

async fn verify_shard(
    ds: &Dataset,
    s: usize,
    options: VerifyOptions,
    report: &mut VerifyReport,
    problems: &mut Vec<Error>,
) -> Result<()> {
    let entry = ds.manifest().shards[s].clone();
    let name = ds.location().display_of(&entry.path);
    let located = |e: Error| e.in_shard(name.clone());

    // The footer where the manifest says it is, and what the index lists.
    let index = match ds.shard(s).await {
        Ok(shard) => Some(shard),
        Err(e) => {
            problems.push(located(e));
            None
        }
    };

    let mut stream = match ds.location().get_stream(&entry.path).await {
        Ok(stream) => stream,
        Err(e) => {
            problems.push(located(e));
            return Ok(());
        }
    };
    let mut hasher = Sha256::new();
    let mut crc = crate::crc64::Crc64Nvme::new();
    let mut length = 0u64;
    let mut decoder = Some(ShardDecoder::with_options(ds.options().read.clone()).named(&name));
    let mut buf = BytesMut::new();
    let yielded = std::cell::Cell::new(0u64);
    // Records after the first damage are checked one by one through the index.
    let mut damaged_from: Option<u64> = None;
    let check = |record: Record, problems: &mut Vec<Error>, report: &mut VerifyReport| {
        if let Some(index) = &index {
            match index.index().get(yielded.get() as usize) {
                Some(loc) if loc.id == record.id => {}
                other => problems.push(located(
                    Error::malformed(format!(
                        "the stream has record {:?} where the index lists {:?}",
                        record.id,
                        other.map(|l| l.id)
                    ))
                    .at_record(yielded.get()),
                )),
            }
        }
        report.records += 1;
        report.images += record.images().count() as u64;
        report.counted.count(&record);
        check_images(&record, yielded.get(), &name, options.decode, problems);
        yielded.set(yielded.get() + 1);
    };
    let mut feed = |buf: &mut BytesMut,
                    decoder: &mut Option<ShardDecoder>,
                    eof: bool,
                    problems: &mut Vec<Error>,
                    report: &mut VerifyReport| {
        while let Some(d) = decoder.as_mut() {
            let next = if eof {
                d.decode_eof(buf)
            } else {
                d.decode(buf)
            };
            match next {
                Ok(Some(record)) => check(record, problems, report),
                Ok(None) => break,
                Err(e) => {
                    problems.push(e);
                    *decoder = None;
                    buf.clear();
                    damaged_from = Some(yielded.get());
                }
            }
        }
    };
    loop {
        match stream.next().await {
            Some(Ok(chunk)) => {
                length += chunk.len() as u64;
                hasher.update(&chunk);
                crc.update(&chunk);
                if decoder.is_some() {
                    buf.extend_from_slice(&chunk);
                    feed(&mut buf, &mut decoder, false, problems, report);
                }
            }
            Some(Err(e)) => {
                problems.push(located(e));
                return Ok(());
            }
            None => {
                feed(&mut buf, &mut decoder, true, problems, report);
                break;
            }
        }
    }
    report.bytes += length;
    if length != entry.bytes {
        problems.push(located(Error::malformed(format!(
            "the shard is {length} bytes but the manifest says {}",
            entry.bytes
        ))));
    }
    let digest = hex(&hasher.finalize());
    if digest != entry.sha256 {
        problems.push(located(Error::malformed(format!(
            "the shard's SHA-256 is {digest} but the manifest says {}",
            entry.sha256
        ))));
    }
    // The manifest's CRC-64/NVME (spec section 12), where it records one.
    if let Some(want) = entry.crc64nvme_value()
        && crc.finalize() != want
    {
        problems.push(located(Error::malformed(format!(
            "the shard's CRC-64/NVME is {} but the manifest says {}",
            crate::crc64::encode(crc.finalize()),
            crate::crc64::encode(want)
        ))));
    }

    // After damage: every remaining record through the index, each problem reported.
    if let (Some(from), Some(shard)) = (damaged_from, index) {
        let n = shard.index().len() as u64;
        for local in from..n {
            let got = ds
                .select_in_shard(
                    s,
                    std::iter::once(local as usize),
                    Images::All,
                    &Filter::default(),
                    None,
                )
                .await;
            match got {
                Ok(mut records) => {
                    if let Some(Some(record)) = records.pop() {
                        report.records += 1;
                        report.images += record.images().count() as u64;
                        check_images(&record, local, &name, options.decode, problems);
                    }
                }
                Err(e) if e.is_corruption() => problems.push(e),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
