//! The order a Parquet conversion reads rows in, and what a part reads: the row groups of all
//! files in natural file order, each row numbered across them (its ordinal).

use std::collections::HashSet;
use std::ops::ControlFlow;

use editshard_hub::Mapping;
use editshard_hub::cell::Cell;
use editshard_hub::reader::{ParquetFile, Pos, Row};
use editshard_hub::records::{Builder, Out, RowFailure};

use crate::failures::Failure;
use editshard::error::{Error, Result};
use editshard::record::Record;

/// What the walk hands the writer: a record with the ordinal of its first row, or a row that
/// failed with its ordinal.
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
    files: Vec<ParquetFile>,
    file_starts: Vec<u64>,
    units: Vec<Unit>,
    /// The units of this part: `units[range]`.
    range: std::ops::Range<usize>,
}

impl Plan {
    pub fn new(files: Vec<ParquetFile>, part: Option<(u32, u32)>) -> Plan {
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
                n += rows;
            }
        }
        let u = units.len();
        let range = match part {
            Some((i, p)) => (i as usize * u / p as usize)..((i as usize + 1) * u / p as usize),
            None => 0..u,
        };
        Plan {
            files,
            file_starts,
            units,
            range,
        }
    }

    /// The ordinal of this part's first row.
    pub fn start_row(&self) -> u64 {
        self.units.get(self.range.start).map_or_else(
            || self.units.last().map_or(0, |u| u.first + u.rows),
            |u| u.first,
        )
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
        budget: u64,
        only: Option<&HashSet<u64>>,
        sink: &mut dyn FnMut(Event) -> Result<()>,
    ) -> Result<Counts> {
        let mut builder = Builder::new(mapping.clone(), revision);
        let key_col = mapping.session.as_ref().map(|s| s.key.clone());
        let key_of = |row: &Row| {
            key_col
                .as_ref()
                .and_then(|k| row.get(k))
                .and_then(Cell::as_key)
        };
        let mut counts = Counts::default();
        // A session that started in the previous part is that part's: skip its rows.
        let mut skip_key = match &key_col {
            Some(k) if next_row == self.start_row() => self.last_key_before(self.range.start, k),
            _ => None,
        };
        let mut outs = Vec::new();
        for u in self.range.clone() {
            let unit = &self.units[u];
            if unit.first + unit.rows <= next_row {
                continue;
            }
            let skip = next_row.saturating_sub(unit.first);
            let file = &self.files[unit.file];
            let read = file.read_row_group(unit.rg, skip, budget, |row| {
                if skip_key.is_some() {
                    if key_of(&row) == skip_key {
                        return Ok(ControlFlow::Continue(()));
                    }
                    skip_key = None;
                }
                counts.rows += 1;
                builder.push(row, &mut outs);
                self.drain(mapping, &mut outs, &mut counts, only, sink)?;
                Ok(ControlFlow::Continue(()))
            });
            match read {
                // This callback never breaks: the whole row group was read.
                Ok(r) => {
                    let _: ControlFlow<()> = r?;
                }
                Err(e) => {
                    for r in skip + e.delivered..unit.rows {
                        let pos = Pos {
                            file_index: unit.file,
                            file: file.rel.clone(),
                            row_group: unit.rg as u64,
                            row: file.first_row(unit.rg) + r,
                        };
                        let f = RowFailure {
                            pos,
                            id: None,
                            reason: "unreadable-row-group".into(),
                            detail: format!(
                                "row group {} of {} cannot be read: {}",
                                unit.rg, file.rel, e.reason
                            ),
                        };
                        outs.push(Out::Failed(f));
                    }
                    self.drain(mapping, &mut outs, &mut counts, only, sink)?;
                }
            }
        }
        // A session still open at the end of the part goes on into the next part's rows.
        'more: for u in self.range.end..self.units.len() {
            let Some(open) = builder.open_key().map(str::to_string) else {
                break;
            };
            let unit = &self.units[u];
            let file = &self.files[unit.file];
            let read = file.read_row_group(unit.rg, 0, budget, |row| {
                if key_of(&row).as_deref() != Some(open.as_str()) {
                    return Ok(ControlFlow::Break(()));
                }
                counts.rows += 1;
                builder.push(row, &mut outs);
                self.drain(mapping, &mut outs, &mut counts, only, sink)?;
                Ok(ControlFlow::Continue(()))
            });
            match read {
                Ok(Ok(ControlFlow::Continue(()))) => {}
                Ok(Ok(ControlFlow::Break(()))) => break 'more,
                Ok(Err(e)) => return Err(e),
                // The next part reports the row group.
                Err(_) => break 'more,
            }
        }
        builder.flush(&mut outs);
        self.drain(mapping, &mut outs, &mut counts, only, sink)?;
        Ok(counts)
    }

    /// The session key of the last row before unit `u` (`None` at the start, or when it
    /// cannot be read: the previous part then reports that row group).
    fn last_key_before(&self, u: usize, key: &str) -> Option<String> {
        let unit = self.units[..u].iter().rev().find(|x| x.rows > 0)?;
        let file = &self.files[unit.file];
        file.cell_at(unit.rg, unit.rows - 1, key).ok()?.as_key()
    }

    fn drain(
        &self,
        mapping: &Mapping,
        outs: &mut Vec<Out>,
        counts: &mut Counts,
        only: Option<&HashSet<u64>>,
        sink: &mut dyn FnMut(Event) -> Result<()>,
    ) -> Result<()> {
        // `--retry-failed`: only the listed rows (one record a row: no session key).
        let wanted = |ordinal: u64| only.is_none_or(|o| o.contains(&ordinal));
        for out in outs.drain(..) {
            match out {
                Out::Record(r, pos) => {
                    let ordinal = self.ordinal(&pos);
                    if wanted(ordinal) {
                        sink(Event::Record(r, ordinal))?
                    }
                }
                Out::Failed(f) => {
                    let ordinal = self.ordinal(&f.pos);
                    if wanted(ordinal) {
                        sink(Event::Failed(failure(&mapping.name, f, ordinal), ordinal))?
                    }
                }
                Out::Notice(pos, text) => {
                    counts.session_splits += 1;
                    log::warn!("{}, row {}: {text}", pos.file, pos.row);
                }
            }
        }
        Ok(())
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
    }
}

/// The failure for a record the writer refused (a duplicate id, an id too long).
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
    }
}
