//! Salvage without an index: frames followed one after another from the end of the header,
//! each starting where the one before ends.
//!
//! After a frame that does not read back, the walk goes on only where that frame's end is
//! vouched for:
//!
//! 1. its length field, when a frame that reads back intact starts where that length ends
//!    (the damage is in the frame's body);
//! 2. its CRC, when a frame that reads back intact starts at a position up to which the
//!    damaged frame's body checks against its stored CRC (the damage is in the length field:
//!    the frame is whole, and its records are recovered too);
//! 3. its length field alone, when no frame reads back there either (the next frame is
//!    damaged as well; it is judged the same way in turn).
//!
//! Otherwise (the frame runs past the end of the file, or its length field is unreadable and
//! its CRC places no end) nothing after it is taken: the rest of the shard is reported lost.
//! Scanning for any position that holds a valid-looking frame, and starting over there, would
//! find frames inside the damaged frame's own span: the bytes of an image may form a valid
//! frame, and a record that was never in the dataset would come out of the repair.

use bytes::Bytes;

use super::{Frame, Loss, Sink, frame_of, read_frame};
use crate::error::{Error, Result};
use crate::format::{
    Dictionary, FRAME_DICTIONARY, FRAME_GROUP, FRAME_HEADER_LEN, FRAME_INDEX, FRAME_OPTIONAL_MIN,
    HEADER_LEN, Limits,
};
use crate::record::Record;
use crate::shard::random::ReadAt;

/// Bytes scanned per read while looking for a damaged frame's end.
const SCAN_WINDOW: u64 = 64 << 10;
/// Candidate ends (positions where an intact frame starts) checked against one damaged
/// frame's CRC before giving up on it.
const MAX_CANDIDATES: usize = 64;

/// Where the walk goes on after a damaged frame.
enum After {
    /// At this offset, where the damaged frame's length field places its end.
    Next(u64),
    /// The frame is whole (only its length field is damaged): it ends at `end` and holds
    /// `frame`.
    Whole { end: u64, frame: Frame },
    /// Nowhere: the rest of the shard is lost, for this reason.
    Lost(String),
}

/// Walks the frames of a shard whose index is unusable (`problem` says why).
pub(super) fn walk<R: ReadAt, E: FnMut(Record) -> Result<()>>(
    source: &R,
    size: u64,
    limits: &Limits,
    problem: &Error,
    sink: &mut Sink<E>,
) -> Result<()> {
    // The metadata dictionary (format 1.1): the dictionary frame's, once the walk passed it.
    let mut dictionary: Option<Dictionary> = None;
    let mut at = HEADER_LEN as u64;
    let mut reached_index = false;
    // Bytes that looking for damaged frames' ends may read, in all: a shard of many damaged
    // frames is not scanned once per frame (which would take time quadratic in its size).
    let mut scan_budget = size.saturating_mul(2).saturating_add(SCAN_WINDOW);
    while at < size {
        let (frame, len) = match read_frame(source, at, size, limits, dictionary.as_ref()) {
            Ok(frame) => {
                let len = frame_len(&frame);
                (frame, len)
            }
            Err(reason) => match after_damage(
                source,
                at,
                size,
                limits,
                dictionary.as_ref(),
                &mut scan_budget,
            )? {
                After::Next(end) => {
                    sink.loss(Loss {
                        start: at,
                        end,
                        reason: format!(
                            "{reason}; the walk goes on where this frame's length places its end"
                        ),
                        records: Vec::new(),
                        unknown_records: true,
                    });
                    at = end;
                    continue;
                }
                After::Whole { end, frame } => {
                    sink.loss(Loss {
                        start: at,
                        end: at + 4,
                        reason: format!(
                            "{reason}: the frame's length field is damaged; its CRC checks over \
                             its body up to byte {end}, so the frame is whole and its records \
                             were recovered"
                        ),
                        records: Vec::new(),
                        unknown_records: false,
                    });
                    (frame, end - at)
                }
                After::Lost(why) => {
                    sink.loss(Loss {
                        start: at,
                        end: size,
                        reason: format!("{reason}; {why}"),
                        records: Vec::new(),
                        unknown_records: true,
                    });
                    at = size;
                    break;
                }
            },
        };
        match frame {
            Frame::Group { records, .. } => {
                for r in records {
                    sink.record(r, at)?;
                }
            }
            Frame::Dictionary {
                dictionary: found, ..
            } => {
                dictionary.get_or_insert(found);
            }
            Frame::Skipped { .. } => {}
            Frame::Index => {
                reached_index = true;
                break;
            }
        }
        at += len;
    }
    // The frames were walked without the footer; say what was wrong with it.
    if reached_index {
        sink.loss(Loss {
            start: at,
            end: size,
            reason: format!("the trailer is unusable ({problem}); every frame was intact"),
            records: Vec::new(),
            unknown_records: false,
        });
    } else if sink.report.losses.last().is_none_or(|l| l.end < size) {
        sink.loss(Loss {
            start: size,
            end: size,
            reason: format!(
                "the shard ends without its index ({problem}): it was cut short, and records \
                 after byte {size}, if any, are lost"
            ),
            records: Vec::new(),
            unknown_records: true,
        });
    }
    Ok(())
}

fn frame_len(frame: &Frame) -> u64 {
    match frame {
        Frame::Group { len, .. } | Frame::Skipped { len } | Frame::Dictionary { len, .. } => *len,
        // The walk stops at the index frame.
        Frame::Index => 0,
    }
}

/// Where the walk goes on after the frame at `at`, which did not read back.
fn after_damage<R: ReadAt>(
    source: &R,
    at: u64,
    size: u64,
    limits: &Limits,
    dictionary: Option<&Dictionary>,
    scan_budget: &mut u64,
) -> Result<After> {
    let body_at = at + FRAME_HEADER_LEN as u64;
    if body_at > size {
        return Ok(After::Lost(
            "the file ends inside this frame's header: it was cut short".into(),
        ));
    }
    let header = source
        .read_at(at, FRAME_HEADER_LEN)
        .map_err(|e| Error::from(e).at_offset(at))?;
    let body_len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let stored_crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let plausible = body_len >= 2 && body_len <= limits.max_frame_len;
    let claimed = Some(body_at + u64::from(body_len)).filter(|&end| plausible && end <= size);
    if let Some(end) = claimed
        && (end == size || read_frame(source, end, size, limits, dictionary).is_ok())
    {
        return Ok(After::Next(end));
    }
    let found = end_by_crc(
        source,
        body_at,
        stored_crc,
        size,
        limits,
        dictionary,
        scan_budget,
    )?;
    if let Some((end, frame)) = found {
        return Ok(After::Whole { end, frame });
    }
    if let Some(end) = claimed {
        return Ok(After::Next(end));
    }
    Ok(After::Lost(if plausible {
        format!(
            "the frame claims {body_len} bytes, past the end of the file: it was cut short, and \
             everything after its start is inside it"
        )
    } else {
        format!(
            "its length field ({body_len} bytes) is damaged and its CRC places no end, so where \
             the next frame starts is unknown: a frame found by scanning could be bytes of one \
             of this frame's images, so none is taken"
        )
    }))
}

/// The end of a frame whose body starts at `body_at` and whose CRC is `stored_crc`, if its
/// length field is the damage: the first position `q` where a frame that reads back intact
/// starts (or the end of the file), such that the bytes from `body_at` to `q` check against
/// `stored_crc`; with what those bytes hold. One pass: the CRC is carried forward from one
/// candidate to the next. Gives up after [`MAX_CANDIDATES`] candidates, or when the bytes it
/// reads exceed `scan_budget` (which it spends).
fn end_by_crc<R: ReadAt>(
    source: &R,
    body_at: u64,
    stored_crc: u32,
    size: u64,
    limits: &Limits,
    dictionary: Option<&Dictionary>,
    scan_budget: &mut u64,
) -> Result<Option<(u64, Frame)>> {
    let last = size.min(body_at + u64::from(limits.max_frame_len));
    let mut crc = RunningCrc {
        hasher: crc32fast::Hasher::new(),
        to: body_at,
    };
    let whole_at = |q: u64, crc: &mut RunningCrc, budget: &mut u64| -> Result<Option<Frame>> {
        if crc.up_to(source, q, budget)? != Some(stored_crc) {
            return Ok(None);
        }
        let body: Bytes = source
            .read_at(body_at, (q - body_at) as usize)
            .map_err(|e| Error::from(e).at_offset(body_at))?;
        Ok(frame_of(body, body_at, limits, dictionary).ok())
    };
    let probe = FRAME_HEADER_LEN as u64 + 2;
    let mut candidates = 0;
    let mut at = body_at + 2;
    while at < last && at + probe <= size {
        let want = (SCAN_WINDOW + probe).min(size - at);
        if *scan_budget < want {
            return Ok(None);
        }
        *scan_budget -= want;
        let window = source
            .read_at(at, want as usize)
            .map_err(|e| Error::from(e).at_offset(at))?;
        let scanned = window.len() as u64 - probe + 1;
        for i in 0..scanned {
            let q = at + i;
            if q > last {
                return Ok(None);
            }
            if plausible_header(&window[i as usize..], q, size, limits)
                && read_frame(source, q, size, limits, dictionary).is_ok()
            {
                if let Some(frame) = whole_at(q, &mut crc, scan_budget)? {
                    return Ok(Some((q, frame)));
                }
                candidates += 1;
                if candidates >= MAX_CANDIDATES {
                    return Ok(None);
                }
            }
        }
        at += scanned;
    }
    // The frame may be the last thing in the file.
    if size <= last && size >= body_at + 2 {
        return Ok(whole_at(size, &mut crc, scan_budget)?.map(|frame| (size, frame)));
    }
    Ok(None)
}

/// The CRC of the bytes from a damaged frame's body start, carried forward.
struct RunningCrc {
    hasher: crc32fast::Hasher,
    /// Where the bytes hashed so far end.
    to: u64,
}

impl RunningCrc {
    /// The CRC of the bytes up to `q`, or `None` when reading them would exceed `budget`.
    fn up_to<R: ReadAt>(&mut self, source: &R, q: u64, budget: &mut u64) -> Result<Option<u32>> {
        while self.to < q {
            let n = (q - self.to).min(SCAN_WINDOW);
            if *budget < n {
                return Ok(None);
            }
            *budget -= n;
            let bytes = source
                .read_at(self.to, n as usize)
                .map_err(|e| Error::from(e).at_offset(self.to))?;
            self.hasher.update(&bytes);
            self.to += n;
        }
        Ok(Some(self.hasher.clone().finalize()))
    }
}

/// Whether `w` (at offset `q`) starts with a frame header worth checking: a length within the
/// limit and the file, flags 0 and a known frame type.
fn plausible_header(w: &[u8], q: u64, size: u64, limits: &Limits) -> bool {
    let body_len = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
    let (frame_type, flags) = (w[8], w[9]);
    body_len >= 2
        && body_len <= limits.max_frame_len
        && q + FRAME_HEADER_LEN as u64 + u64::from(body_len) <= size
        && flags == 0
        && (frame_type == FRAME_GROUP
            || frame_type == FRAME_INDEX
            || frame_type == FRAME_DICTIONARY
            || frame_type >= FRAME_OPTIONAL_MIN)
}
