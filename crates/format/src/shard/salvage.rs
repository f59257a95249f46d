//! [`salvage`]: every intact record of a damaged or truncated shard, and a located account of
//! what was lost. The resynchronising reader behind `editshard repair`.
//!
//! A shard is walked frame by frame from the end of its header. A frame whose CRC checks
//! yields its records. After damage the reader resynchronises, as Riegeli's recovery does:
//!
//! - when the index (footer) is intact, it knows where every frame starts and what every
//!   record's parts are: a damaged frame is salvaged record by record, each record's metadata
//!   and images checked against their own CRCs (and each image against its SHA-256), so a
//!   record the damage did not touch survives even in a damaged frame; the walk goes on at
//!   the next frame the index lists;
//! - without the index (a truncated shard, a damaged trailer), it scans forward byte by byte
//!   for the next position holding a plausible frame header whose body's CRC checks.
//!
//! Nothing unverified is ever returned: a record comes from a frame whose CRC checks, or from
//! parts whose CRCs (and SHA-256) check with an id from an index whose CRC checks. Every
//! lost range is reported with its byte offsets and, when the index names them, the ids of
//! the records it held.
//!
//! The reader does no I/O of its own: it reads through [`ReadAt`] (a file, a buffer), in
//! reads bounded by the frame limit and the file's size.

use std::collections::HashSet;

use bytes::Bytes;

use super::options::{ReadOptions, Verify};
use super::random::{RandomAccessShard, ReadAt};
use super::stream::decode_group;
use crate::error::{Error, Result};
use crate::format::wire::crc32;
use crate::format::{
    Dictionary, FRAME_DICTIONARY, FRAME_GROUP, FRAME_HEADER_LEN, FRAME_INDEX, FRAME_OPTIONAL_MIN,
    FrameHeader, HEADER_LEN, Limits, TRAILER_LEN, Trailer,
};
use crate::record::Record;

/// A record that was lost and is known by name (from the index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostRecord {
    /// Its number within the shard, when known.
    pub number: Option<u64>,
    pub id: String,
}

/// One lost byte range of a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    /// Absolute byte range that could not be used.
    pub start: u64,
    pub end: u64,
    /// What was wrong there.
    pub reason: String,
    /// The records lost with it, as far as the index names them.
    pub records: Vec<LostRecord>,
    /// True when records may have been lost that no intact index names (the index was not
    /// usable): their number and ids are unknown.
    pub unknown_records: bool,
}

/// What [`salvage`] found.
#[derive(Debug, Clone, Default)]
pub struct SalvageReport {
    /// Records handed to the caller.
    pub recovered: u64,
    /// Every lost range, in file order.
    pub losses: Vec<Loss>,
    /// Whether the shard's index was intact (so lost records are named).
    pub index_intact: bool,
}

impl SalvageReport {
    /// True when nothing was lost and the shard was whole.
    pub fn is_clean(&self) -> bool {
        self.losses.is_empty()
    }
    /// Records known to be lost (named by the index).
    pub fn named_losses(&self) -> u64 {
        self.losses.iter().map(|l| l.records.len() as u64).sum()
    }
}

/// What one frame position held.
enum Frame {
    Group { len: u64, records: Vec<Record> },
    Index,
    Skipped { len: u64 },
    Dictionary { len: u64, dictionary: Dictionary },
}

/// Reads every intact record of the shard in `source` (named `name` in messages), handing
/// each to `emit` in file order, and reports what was lost. Fails only when `source` cannot be
/// read or `emit` fails; damage goes into the report.
pub fn salvage<R: ReadAt>(
    source: &R,
    name: &str,
    limits: &Limits,
    mut emit: impl FnMut(Record) -> Result<()>,
) -> Result<SalvageReport> {
    let io = |e: std::io::Error| Error::from(e).in_shard(name.to_string());
    let size = source.size().map_err(io)?;
    let mut report = SalvageReport::default();
    let (indexed, index_problem) = match open_index(source, name, size, limits) {
        Ok(shard) => (Some(shard), None),
        Err(e) => (None, Some(e)),
    };
    report.index_intact = indexed.is_some();
    let index = indexed.as_ref().map(|s| s.index());
    let frames_end = index.map_or(size, |i| i.trailer.index_offset);
    let mut seen: HashSet<String> = HashSet::new();
    let mut emitted = |record: Record, report: &mut SalvageReport, at: u64| -> Result<()> {
        if !seen.insert(record.id.clone()) {
            report.losses.push(Loss {
                start: at,
                end: at,
                reason: format!("a second record with id {:?} (ids are unique)", record.id),
                records: Vec::new(),
                unknown_records: false,
            });
            return Ok(());
        }
        report.recovered += 1;
        emit(record)
    };

    // The metadata dictionary (format 1.1): the index's copy when the index is intact, else
    // the dictionary frame's own once the walk has passed it.
    let mut dictionary = index.and_then(|i| i.dictionary.clone());
    let mut at = HEADER_LEN as u64;
    let mut reached_index = false;
    while at < frames_end {
        match read_frame(source, at, size, limits, dictionary.as_ref()) {
            Ok(Frame::Group { len, records }) => {
                for r in records {
                    emitted(r, &mut report, at)?;
                }
                at += len;
            }
            Ok(Frame::Skipped { len }) => at += len,
            Ok(Frame::Dictionary {
                len,
                dictionary: found,
            }) => {
                dictionary.get_or_insert(found);
                at += len;
            }
            Ok(Frame::Index) => {
                reached_index = true;
                break;
            }
            Err(reason) => {
                let known = index.and_then(|i| {
                    i.frames
                        .binary_search_by_key(&at, |f| f.offset)
                        .ok()
                        .map(|k| (k, i.frames[k]))
                });
                if let (Some((k, frame)), Some(shard)) = (known, indexed.as_ref()) {
                    // The index knows this frame: salvage it record by record.
                    let mut lost = Vec::new();
                    // Records are numbered in frame order: this frame's are one run.
                    let records = &shard.index().records;
                    let first = records.partition_point(|r| (r.frame as usize) < k);
                    let end = records.partition_point(|r| (r.frame as usize) <= k);
                    for i in first..end {
                        match shard.view().record_range(i).and_then(|span| {
                            let bytes = read(source, span.start, span.end - span.start, name)?;
                            shard.view().decode_parts(i, &bytes, span.start, true)
                        }) {
                            Ok(record) => emitted(record, &mut report, at)?,
                            Err(_) => lost.push(LostRecord {
                                number: Some(i as u64),
                                id: shard.index().records[i].id.clone(),
                            }),
                        }
                    }
                    report.losses.push(Loss {
                        start: frame.offset,
                        end: frame.offset + frame.len,
                        reason: format!(
                            "{reason}; its intact records were salvaged through the index"
                        ),
                        records: lost,
                        unknown_records: false,
                    });
                    at = frame.offset + frame.len;
                    continue;
                }
                let next = resync(
                    source,
                    at + 1,
                    frames_end,
                    size,
                    limits,
                    index,
                    dictionary.as_ref(),
                )?;
                report.losses.push(Loss {
                    start: at,
                    end: next,
                    reason,
                    records: named_in(index, at, next),
                    unknown_records: index.is_none(),
                });
                at = next;
            }
        }
    }
    if let Some(problem) = index_problem {
        // The frames were walked without the footer; say what was wrong with it.
        if reached_index {
            report.losses.push(Loss {
                start: at,
                end: size,
                reason: format!("the trailer is unusable ({problem}); every frame was intact"),
                records: Vec::new(),
                unknown_records: false,
            });
        } else if report.losses.last().is_none_or(|l| l.end < size) {
            report.losses.push(Loss {
                start: size,
                end: size,
                reason: format!(
                    "the shard ends without its index ({problem}): it was cut short, and \
                     records after byte {size}, if any, are lost"
                ),
                records: Vec::new(),
                unknown_records: true,
            });
        }
    }
    report.losses.sort_by_key(|l| (l.start, l.end));
    Ok(report)
}

/// The records the index places in `start..end`.
fn named_in(index: Option<&crate::format::ShardIndex>, start: u64, end: u64) -> Vec<LostRecord> {
    let Some(index) = index else {
        return Vec::new();
    };
    index
        .records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.meta_offset >= start && r.meta_offset < end)
        .map(|(i, r)| LostRecord {
            number: Some(i as u64),
            id: r.id.clone(),
        })
        .collect()
}

/// The shard's index, if its trailer and index frame are intact, with a reader over `source`
/// for salvaging records through it.
fn open_index<'a, R: ReadAt>(
    source: &'a R,
    name: &str,
    size: u64,
    limits: &Limits,
) -> Result<RandomAccessShard<&'a R>> {
    if size < (HEADER_LEN + TRAILER_LEN) as u64 {
        return Err(Error::truncated(format!(
            "{size} bytes is too short to be a shard"
        )));
    }
    let trailer_at = size - TRAILER_LEN as u64;
    let trailer = Trailer::parse(
        &read(source, trailer_at, TRAILER_LEN as u64, name)?,
        trailer_at,
    )?;
    let len = trailer.index_len;
    if len > u64::from(limits.max_index_len) + FRAME_HEADER_LEN as u64 + 3
        || trailer.index_offset.checked_add(len) != Some(trailer_at)
    {
        return Err(
            Error::malformed("the trailer's index location is impossible").at_offset(trailer_at),
        );
    }
    let footer = read(source, trailer.index_offset, len + TRAILER_LEN as u64, name)?;
    // Salvage returns only what checked, against the SHA-256s too.
    let options = ReadOptions {
        verify: Verify::Full,
        limits: *limits,
    };
    RandomAccessShard::from_footer(
        source,
        name.to_string(),
        options,
        &footer,
        trailer.index_offset,
    )
}

/// The frame at `at`, checked (its CRC, and for a group its table, data and every image's
/// SHA-256), or why it is not usable.
fn read_frame<R: ReadAt>(
    source: &R,
    at: u64,
    size: u64,
    limits: &Limits,
    dictionary: Option<&Dictionary>,
) -> std::result::Result<Frame, String> {
    let header_end = at + FRAME_HEADER_LEN as u64;
    if header_end > size {
        return Err("the file ends inside a frame header (truncated)".into());
    }
    let bytes = source
        .read_at(at, FRAME_HEADER_LEN)
        .map_err(|e| format!("unreadable: {e}"))?;
    let header = FrameHeader::parse(&bytes, at).map_err(|e| e.to_string())?;
    if header.body_len < 2 || header.body_len > limits.max_frame_len {
        return Err(format!(
            "a frame length of {} bytes is impossible",
            header.body_len
        ));
    }
    if header_end + u64::from(header.body_len) > size {
        return Err("the frame runs past the end of the file (truncated)".into());
    }
    let body = source
        .read_at(header_end, header.body_len as usize)
        .map_err(|e| format!("unreadable: {e}"))?;
    let actual = crc32(&body);
    if actual != header.body_crc {
        return Err(format!(
            "frame CRC mismatch (stored {:#010x}, computed {actual:#010x})",
            header.body_crc
        ));
    }
    let len = header.frame_len();
    match body[0] {
        FRAME_GROUP => {
            let (_, records) = decode_group(&body, header_end, limits, 0, dictionary)
                .map_err(|e| e.to_string())?;
            for r in &records {
                for image in r.images() {
                    image
                        .check_data()
                        .map_err(|e| format!("record {:?}: {e}", r.id))?;
                }
            }
            Ok(Frame::Group { len, records })
        }
        FRAME_DICTIONARY => {
            let dictionary = Dictionary::parse(body.slice(2..), limits.max_dictionary_len)
                .map_err(|e| e.to_string())?;
            Ok(Frame::Dictionary { len, dictionary })
        }
        FRAME_INDEX => Ok(Frame::Index),
        t if t >= FRAME_OPTIONAL_MIN => Ok(Frame::Skipped { len }),
        t => Err(format!("unknown required frame type {t:#04x}")),
    }
}

/// Bytes scanned per read while resynchronising.
const SCAN_WINDOW: u64 = 64 << 10;

/// The first position at or after `from` (and before `end`) where a usable frame starts, or
/// `end`: a frame the index lists, or a plausible frame header (length within the limit and
/// the file, a known frame type, flags 0) whose frame reads back intact.
fn resync<R: ReadAt>(
    source: &R,
    from: u64,
    end: u64,
    size: u64,
    limits: &Limits,
    index: Option<&crate::format::ShardIndex>,
    dictionary: Option<&Dictionary>,
) -> Result<u64> {
    if let Some(index) = index {
        // Every frame start is known: the next one after `from`.
        let k = index.frames.partition_point(|f| f.offset < from);
        return Ok(index.frames.get(k).map_or(end, |f| f.offset.min(end)));
    }
    let probe = FRAME_HEADER_LEN as u64 + 2;
    let mut at = from;
    while at < end && at + probe <= size {
        let want = (SCAN_WINDOW + probe).min(size - at);
        let window = source
            .read_at(at, want as usize)
            .map_err(|e| Error::from(e).at_offset(at))?;
        let last = window.len() as u64 - probe + 1;
        for i in 0..last {
            let q = at + i;
            if q >= end {
                return Ok(end);
            }
            let w = &window[i as usize..];
            let body_len = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            let (frame_type, flags) = (w[8], w[9]);
            let plausible = body_len >= 2
                && body_len <= limits.max_frame_len
                && q + FRAME_HEADER_LEN as u64 + u64::from(body_len) <= size
                && flags == 0
                && (frame_type == FRAME_GROUP
                    || frame_type == FRAME_INDEX
                    || frame_type == FRAME_DICTIONARY
                    || frame_type >= FRAME_OPTIONAL_MIN);
            if plausible && read_frame(source, q, size, limits, dictionary).is_ok() {
                return Ok(q);
            }
        }
        at += last;
    }
    Ok(end)
}

fn read<R: ReadAt>(source: &R, offset: u64, len: u64, name: &str) -> Result<Bytes> {
    let len = usize::try_from(len).map_err(|_| Error::limit("a read larger than memory"))?;
    source.read_at(offset, len).map_err(|e| {
        let err = if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::truncated(format!("could not read {len} bytes: {e}"))
        } else {
            Error::from(e)
        };
        err.in_shard(name.to_string()).at_offset(offset)
    })
}
