//! [`salvage`]: every intact record of a damaged or truncated shard, and a located account of
//! what was lost. The resynchronising reader behind `editshard repair`.
//!
//! Only what the shard's structure vouches for is a record. A frame vouches for its records
//! when its CRC checks *and* it starts where the structure says a frame starts: where the
//! index (footer) lists one, or, without a usable index, at the end of the header or of the
//! frame before it. A frame found anywhere else (inside a span the index or a damaged frame's
//! length assigns to something else) may be the bytes of an image that happen to form a
//! valid frame, so it is never taken as one.
//!
//! - When the index is intact, it lists every frame and every record's parts: the frames are
//!   read where it lists them, each checked against its entry; a damaged frame is salvaged
//!   record by record, each record's metadata and images checked against their own CRCs (and
//!   each image against its SHA-256), so a record the damage did not touch survives even in a
//!   damaged frame.
//! - Without the index (a truncated shard, a damaged trailer), frames are followed from the
//!   header one after another (`chain.rs`); after a damaged frame, the walk goes on where that
//!   frame's own length, or its CRC, places its end, and stops (reporting the rest as lost)
//!   where nothing does.
//!
//! Nothing unverified is ever returned: a record comes from a frame whose CRC checks, or from
//! parts whose CRCs (and SHA-256) check with an id from an index whose CRC checks. Every
//! lost range is reported with its byte offsets and, when the index names them, the ids of
//! the records it held.
//!
//! The reader does no I/O of its own: it reads through [`ReadAt`] (a file, a buffer), in
//! reads bounded by the frame limit and the file's size.

mod chain;

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

/// Hands each record to the caller once (a second record with an id already handed over is a
/// loss: ids are unique in a shard), and collects the losses.
struct Sink<E> {
    emit: E,
    seen: HashSet<String>,
    report: SalvageReport,
}

impl<E: FnMut(Record) -> Result<()>> Sink<E> {
    fn record(&mut self, record: Record, at: u64) -> Result<()> {
        if !self.seen.insert(record.id.clone()) {
            self.report.losses.push(Loss {
                start: at,
                end: at,
                reason: format!("a second record with id {:?} (ids are unique)", record.id),
                records: Vec::new(),
                unknown_records: false,
            });
            return Ok(());
        }
        self.report.recovered += 1;
        (self.emit)(record)
    }

    fn loss(&mut self, loss: Loss) {
        self.report.losses.push(loss);
    }
}

/// Reads every intact record of the shard in `source` (named `name` in messages), handing
/// each to `emit` in file order, and reports what was lost. Fails only when `source` cannot be
/// read or `emit` fails; damage goes into the report.
pub fn salvage<R: ReadAt>(
    source: &R,
    name: &str,
    limits: &Limits,
    emit: impl FnMut(Record) -> Result<()>,
) -> Result<SalvageReport> {
    let io = |e: std::io::Error| Error::from(e).in_shard(name.to_string());
    let size = source.size().map_err(io)?;
    let mut sink = Sink {
        emit,
        seen: HashSet::new(),
        report: SalvageReport::default(),
    };
    match open_index(source, name, size, limits) {
        Ok(shard) => {
            sink.report.index_intact = true;
            walk_indexed(source, name, size, limits, &shard, &mut sink)?;
        }
        Err(problem) => chain::walk(source, size, limits, &problem, &mut sink)?,
    }
    let mut report = sink.report;
    report.losses.sort_by_key(|l| (l.start, l.end));
    Ok(report)
}

/// Reads each frame where the intact index lists it. A frame that does not read back as the
/// index's entry (damaged, or another frame than the one listed) is salvaged record by record
/// through the index.
fn walk_indexed<R: ReadAt, E: FnMut(Record) -> Result<()>>(
    source: &R,
    name: &str,
    size: u64,
    limits: &Limits,
    shard: &RandomAccessShard<&R>,
    sink: &mut Sink<E>,
) -> Result<()> {
    let index = shard.index();
    let dictionary = index.dictionary.as_ref();
    for (k, frame) in index.frames().iter().enumerate() {
        let (first, end) = (index.frame_records(k).start, index.frame_records(k).end);
        let problem = match read_frame(source, frame.offset, size, limits, dictionary) {
            Ok(Frame::Group { len, records })
                if len == frame.len
                    && frame.frame_type == FRAME_GROUP
                    && records.len() == end - first
                    && records
                        .iter()
                        .zip(first..end)
                        .all(|(r, l)| r.id == index.record(l).id) =>
            {
                for r in records {
                    sink.record(r, frame.offset)?;
                }
                continue;
            }
            Ok(Frame::Dictionary { len, .. })
                if len == frame.len && frame.frame_type == FRAME_DICTIONARY =>
            {
                continue;
            }
            Ok(Frame::Skipped { len })
                if len == frame.len && frame.frame_type >= FRAME_OPTIONAL_MIN =>
            {
                continue;
            }
            Ok(_) => format!(
                "the frame here is intact but is not the frame the index lists here (a type \
                 {:#04x} frame of {} bytes, with records {}..{})",
                frame.frame_type, frame.len, first, end
            ),
            Err(reason) => reason,
        };
        let mut lost = Vec::new();
        for i in first..end {
            match shard.view().record_range(i).and_then(|span| {
                let bytes = read(source, span.start, span.end - span.start, name)?;
                shard.view().decode_parts(i, &bytes, span.start, true)
            }) {
                Ok(record) => sink.record(record, frame.offset)?,
                Err(_) => lost.push(LostRecord {
                    number: Some(i as u64),
                    id: index.record(i).id.to_string(),
                }),
            }
        }
        sink.loss(Loss {
            start: frame.offset,
            end: frame.offset + frame.len,
            reason: format!("{problem}; its intact records were salvaged through the index"),
            records: lost,
            unknown_records: false,
        });
    }
    Ok(())
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
    frame_of(body, header_end, limits, dictionary)
}

/// What a frame body whose CRC checked holds (starting at `body_at`), checked further: a
/// group's table, data and every image's SHA-256.
fn frame_of(
    body: Bytes,
    body_at: u64,
    limits: &Limits,
    dictionary: Option<&Dictionary>,
) -> std::result::Result<Frame, String> {
    let len = FRAME_HEADER_LEN as u64 + body.len() as u64;
    match body.first().copied() {
        Some(FRAME_GROUP) => {
            let (_, records) =
                decode_group(&body, body_at, limits, 0, dictionary).map_err(|e| e.to_string())?;
            for r in &records {
                for image in r.images() {
                    image
                        .check_data()
                        .map_err(|e| format!("record {:?}: {e}", r.id))?;
                }
            }
            Ok(Frame::Group { len, records })
        }
        Some(FRAME_DICTIONARY) => {
            let dictionary = Dictionary::parse(body.slice(2..), limits.max_dictionary_len)
                .map_err(|e| e.to_string())?;
            Ok(Frame::Dictionary { len, dictionary })
        }
        Some(FRAME_INDEX) => Ok(Frame::Index),
        Some(t) if t >= FRAME_OPTIONAL_MIN => Ok(Frame::Skipped { len }),
        Some(t) => Err(format!("unknown required frame type {t:#04x}")),
        None => Err("an empty frame body".into()),
    }
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
