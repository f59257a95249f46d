//! The order a Parquet conversion reads rows in, and what a part reads: the row groups of all
//! files in natural file order, each row numbered across them (its ordinal).
//!
//! With a `[session]` mapping, a first pass reads the session key column of every row group
//! (editshard-hub's `sessions`): a session is then put together at its last row, wherever
//! its rows are. A session belongs to the part its first row is in; its rows in later parts'
//! row groups are read again by position when the part ends. Records and failures come out
//! with the ordinal of the row that completed them, which only grows: a resumed run starts
//! again at the first row of any session not finished before its saved ordinal, and skips
//! what was finished.

use std::collections::HashSet;
use std::ops::{ControlFlow, Range};
use std::sync::Arc;

use editshard_hub::Mapping;
use editshard_hub::cell::Cell;
use editshard_hub::reader::{Delivery, FileOutline, ParquetFile, Pos, ReadLimits, Row};
use editshard_hub::records::{self, Builder, Out, RowFailure};
use editshard_hub::sessions::SessionIndex;

use crate::failures::Failure;
use editshard::error::{Error, Result};
use editshard::record::Record;

/// What the walk hands the writer: a record, or a row that failed, with the ordinal of the
/// row that completed it (a record's own first row, or a session's last).
pub enum Event {
    Record(Box<Record>, u64),
    Failed(Failure, u64),
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub rows: u64,
    pub session_splits: u64,
}

struct Unit {
    file: usize,
    rg: usize,
    first: u64,
    rows: u64,
}

pub struct Plan {
    files: Vec<FileOutline>,
    /// The file opened last (its footer), for the rows read next.
    opened: std::cell::RefCell<Option<Arc<ParquetFile>>>,
    file_starts: Vec<u64>,
    units: Vec<Unit>,
    /// The units of this part: `units[range]`.
    range: Range<usize>,
}

/// What a run needs to decide about each row.
struct RunState<'a> {
    mapping: &'a Mapping,
    next_row: u64,
    /// `--retry-failed`: only these rows (one record a row: no session key).
    only: Option<&'a HashSet<u64>>,
    part: Range<u64>,
    index: Option<Arc<SessionIndex>>,
    limits: ReadLimits,
}

impl Plan {
    pub fn new(files: Vec<FileOutline>, part: Option<(u32, u32)>) -> Result<Plan> {
        let mut units = Vec::new();
        let mut file_starts = Vec::new();
        let mut n = 0u64;
        for (i, f) in files.iter().enumerate() {
            file_starts.push(n);
            for rg in 0..f.row_groups() {
                let rows = f.rows_in(rg);
                units.push(Unit {
                    file: i,
                    rg,
                    first: n,
                    rows,
                });
                n = n.checked_add(rows).ok_or_else(|| {
                    Error::invalid(format!(
                        "{}: the files' footers list more than 2^64 rows in all",
                        f.rel
                    ))
                })?;
            }
        }
        let u = units.len();
        let range = match part {
            Some((i, p)) => (i as usize * u / p as usize)..((i as usize + 1) * u / p as usize),
            None => 0..u,
        };
        Ok(Plan {
            files,
            opened: std::cell::RefCell::new(None),
            file_starts,
            units,
            range,
        })
    }

    /// The ordinal of this part's first row.
    pub fn start_row(&self) -> u64 {
        self.units
            .get(self.range.start)
            .map_or_else(|| self.end_row(), |u| u.first)
    }

    /// The ordinal after this part's last row.
    fn end_row(&self) -> u64 {
        match self
            .range
            .end
            .checked_sub(1)
            .and_then(|u| self.units.get(u))
        {
            Some(u) if !self.range.is_empty() => u.first + u.rows,
            _ => self.units.get(self.range.start).map_or_else(
                || self.units.last().map_or(0, |u| u.first + u.rows),
                |u| u.first,
            ),
        }
    }

    /// File `i`, opened (its footer read again) unless it was the last one opened.
    fn file(&self, i: usize, mapping: &Mapping) -> Result<Arc<ParquetFile>> {
        let mut opened = self.opened.borrow_mut();
        if let Some(f) = opened.as_ref().filter(|f| f.index == i) {
            return Ok(f.clone());
        }
        *opened = None;
        let f = Arc::new(self.files[i].open(mapping)?);
        *opened = Some(f.clone());
        Ok(f)
    }

    fn ordinal(&self, pos: &Pos) -> u64 {
        self.file_starts[pos.file_index] + pos.row
    }

    /// Converts this part's rows from ordinal `next_row` on, handing records and failures to
    /// `sink` in order.
    pub fn run(
        &self,
        mapping: &Mapping,
        revision: Option<String>,
        next_row: u64,
        limits: ReadLimits,
        only: Option<&HashSet<u64>>,
        sink: &mut dyn FnMut(Event) -> Result<()>,
    ) -> Result<Counts> {
        let mut builder = Builder::new(mapping.clone(), revision);
        let index = match &mapping.session {
            Some(s) => {
                let ix = Arc::new(self.key_pass(mapping, &s.key, limits)?);
                builder = builder.with_sessions(ix.clone(), limits.batch_bytes);
                Some(ix)
            }
            None => None,
        };
        let run = RunState {
            mapping,
            next_row,
            only,
            part: self.start_row()..self.end_row(),
            index,
            limits,
        };
        // Earlier rows of sessions not finished before `next_row` are read again.
        let restart = run.index.as_ref().map_or(next_row, |ix| {
            ix.spans()
                .filter(|(k, s)| {
                    run.part.contains(&s.first) && s.last >= next_row && !ix.too_long(k)
                })
                .map(|(_, s)| s.first)
                .fold(next_row, u64::min)
        });
        let mut counts = Counts::default();
        let mut outs = Vec::new();
        for u in self.range.clone() {
            let unit = &self.units[u];
            if unit.first + unit.rows <= restart {
                continue;
            }
            let skip = restart.saturating_sub(unit.first);
            let file = self.file(unit.file, mapping)?;
            let read = file.read_row_group(unit.rg, skip, limits, |d| {
                let pos = match &d {
                    Delivery::Row(r) => &r.pos,
                    Delivery::Refused(pos, _) => pos,
                };
                let ordinal = self.ordinal(pos);
                let row = match &d {
                    Delivery::Row(r) => Some(r),
                    Delivery::Refused(..) => None,
                };
                if !run.wants(ordinal, row) {
                    return Ok(ControlFlow::Continue(()));
                }
                counts.rows += 1;
                match d {
                    Delivery::Row(row) => builder.push(row, ordinal, &mut outs),
                    Delivery::Refused(pos, detail) => {
                        outs.push(Out::Failed(refused(pos, detail), ordinal));
                    }
                }
                self.drain(&run, &mut builder, &mut outs, &mut counts, sink)?;
                Ok(ControlFlow::Continue(()))
            });
            match read {
                // This callback never breaks: the whole row group was read.
                Ok(r) => {
                    let _: ControlFlow<()> = r?;
                }
                Err(e) => {
                    // The rows from there to the end of the row group, as one failure.
                    let first = skip + e.delivered;
                    if first < unit.rows && unit.first + first >= next_row {
                        let pos = Pos {
                            file_index: unit.file,
                            file: file.rel.clone(),
                            row_group: unit.rg as u64,
                            row: file.first_row(unit.rg) + first,
                        };
                        let (reason, detail) = if e.missing {
                            ("missing-rows", format!("{}: {}", file.rel, e.reason))
                        } else {
                            (
                                "unreadable-row-group",
                                format!(
                                    "row group {} of {} cannot be read: {}",
                                    unit.rg, file.rel, e.reason
                                ),
                            )
                        };
                        let f = RowFailure {
                            pos,
                            id: None,
                            rows: unit.rows - first,
                            reason: reason.into(),
                            detail,
                        };
                        outs.push(Out::Failed(f, unit.first + first));
                    }
                }
            }
            // Sessions whose last row was in rows that could not be read end here.
            builder.passed(unit.first + unit.rows, &mut outs);
            self.drain(&run, &mut builder, &mut outs, &mut counts, sink)?;
        }
        builder.finish(run.part.end, &mut outs);
        self.drain(&run, &mut builder, &mut outs, &mut counts, sink)?;
        Ok(counts)
    }

    /// The first pass of a session mapping: the key of every row of the dataset, read from
    /// the key column alone. Rows whose key cannot be read are left out (the converting
    /// pass reports them).
    fn key_pass(&self, mapping: &Mapping, key: &str, limits: ReadLimits) -> Result<SessionIndex> {
        let mut ix = SessionIndex::default();
        for unit in &self.units {
            let file = self.file(unit.file, mapping)?;
            let _ = file.read_column(unit.rg, key, limits, |d| {
                if let Delivery::Row(r) = d
                    && let Some(k) = r.cells.first().and_then(|(_, c)| c.as_key())
                    && !k.is_empty()
                {
                    ix.add(k, self.ordinal(&r.pos));
                }
                Ok(ControlFlow::Continue(()))
            });
        }
        log::info!("{} sessions in {} files", ix.len(), self.files.len());
        Ok(ix)
    }

    /// The rows at `ordinals` (increasing), those that can be read.
    /// The row group holding row `ordinal`.
    fn unit_of(&self, ordinal: u64) -> Option<&Unit> {
        self.units
            .get(self.units.partition_point(|u| u.first + u.rows <= ordinal))
    }

    /// Where row `ordinal` is.
    fn pos_of(&self, ordinal: u64) -> Option<Pos> {
        let unit = self.unit_of(ordinal)?;
        let file = &self.files[unit.file];
        Some(Pos {
            file_index: file.index,
            file: file.rel.clone(),
            row_group: unit.rg as u64,
            row: ordinal - self.file_starts[unit.file],
        })
    }

    /// A session's rows read again, or `Err(bytes)` once what they hold passes what one
    /// record may (`room`): the rest are not read, so a session is never held past that.
    fn reread(
        &self,
        mapping: &Mapping,
        ordinals: &[u64],
        limits: ReadLimits,
        room: u64,
    ) -> std::result::Result<Vec<Row>, u64> {
        let mut rows = Vec::new();
        let mut bytes = 0u64;
        let mut i = 0;
        while i < ordinals.len() {
            let o = ordinals[i];
            let Some(unit) = self.unit_of(o) else { break };
            let mut local = Vec::new();
            while i < ordinals.len() && ordinals[i] < unit.first + unit.rows {
                local.push(ordinals[i] - unit.first);
                i += 1;
            }
            let Ok(file) = self.file(unit.file, mapping) else {
                continue;
            };
            let _ = file.read_rows(unit.rg, &local, limits, |d| {
                if let Delivery::Row(r) = d {
                    bytes = r
                        .cells
                        .iter()
                        .fold(bytes, |b, (_, c)| b.saturating_add(c.byte_len()));
                    if bytes > room {
                        return Ok(ControlFlow::Break(()));
                    }
                    rows.push(r);
                }
                Ok(ControlFlow::Continue(()))
            });
            if bytes > room {
                return Err(bytes);
            }
        }
        Ok(rows)
    }

    fn drain(
        &self,
        run: &RunState,
        builder: &mut Builder,
        outs: &mut Vec<Out>,
        counts: &mut Counts,
        sink: &mut dyn FnMut(Event) -> Result<()>,
    ) -> Result<()> {
        while !outs.is_empty() {
            for out in std::mem::take(outs) {
                match out {
                    // Finished before the saved ordinal: written by the run that saved it.
                    Out::Record(_, at) | Out::Failed(_, at) if at < run.next_row => {}
                    Out::Record(_, at) | Out::Failed(_, at)
                        if run.only.is_some_and(|o| !o.contains(&at)) => {}
                    Out::Record(r, at) => sink(Event::Record(r, at))?,
                    Out::Failed(f, at) => {
                        let line = self.ordinal(&f.pos);
                        sink(Event::Failed(failure(&run.mapping.name, f, line), at))?
                    }
                    Out::Notice(pos, text) => {
                        counts.session_splits += 1;
                        log::warn!("{}, row {}: {text}", pos.file, pos.row);
                    }
                    Out::Reread { key, rows, at } => {
                        let room = records::session_room();
                        match self.reread(run.mapping, &rows, run.limits, room) {
                            Ok(read) => builder.complete(key, read, at, outs),
                            Err(bytes) => {
                                let detail = format!(
                                    "session {key:?}: its rows hold more than {room} bytes \
                                     (at least {bytes}), over what one record may hold"
                                );
                                let positions = rows.iter().filter_map(|&o| self.pos_of(o));
                                records::refuse_session(&key, positions, &detail, at, outs);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl RunState<'_> {
    /// Whether row `ordinal` is this run's to convert: from `next_row` on, and before it
    /// the rows of sessions not finished by then; never a row of a session that begins in
    /// an earlier part.
    fn wants(&self, ordinal: u64, row: Option<&Row>) -> bool {
        let (Some(ix), Some(row)) = (&self.index, row) else {
            return ordinal >= self.next_row;
        };
        let key = self
            .mapping
            .session
            .as_ref()
            .and_then(|s| row.get(&s.key))
            .and_then(Cell::as_key);
        match key.as_deref().and_then(|k| Some((k, ix.span(k)?))) {
            Some((k, s)) if !ix.too_long(k) => {
                self.part.contains(&s.first)
                    && (ordinal >= self.next_row || s.last >= self.next_row)
            }
            _ => ordinal >= self.next_row,
        }
    }
}

/// A row refused on its own while reading (a cell over the limits).
fn refused(pos: Pos, detail: String) -> RowFailure {
    RowFailure {
        pos,
        id: None,
        rows: 1,
        reason: "too-large".into(),
        detail,
    }
}

fn failure(name: &str, f: RowFailure, ordinal: u64) -> Failure {
    Failure {
        subset: name.to_string(),
        line: ordinal + 1,
        id: f.id,
        url: None,
        reason: f.reason,
        detail: f.detail,
        file: Some(f.pos.file.to_string()),
        row_group: Some(f.pos.row_group),
        row: Some(f.pos.row),
        rows: (f.rows > 1).then_some(f.rows),
    }
}

/// The failure for a record the writer refused (a duplicate id, an id too long); its line is
/// that of the row that completed the record (a session's last row).
pub fn failure_of_record(name: &str, record: &Record, ordinal: u64, e: &Error) -> Failure {
    let p = &record.provenance;
    Failure {
        subset: name.to_string(),
        line: ordinal + 1,
        id: Some(record.id.clone()),
        url: None,
        reason: "invalid-record".into(),
        detail: e.to_string(),
        file: p.file.clone(),
        row_group: p.row_group,
        row: p.row,
        rows: None,
    }
}
