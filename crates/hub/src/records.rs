//! Rows into records: one row per record, or (with a `[session]` mapping) the rows sharing
//! a session key, wherever they are ([`crate::sessions`]), as one multi-turn record whose
//! turns follow the turn column.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::cell::Cell;
use crate::mapping::Mapping;
use crate::reader::{Pos, Row};
use crate::sessions::{MAX_SESSION_TURNS, SessionIndex};
use editshard::record::{Image, Kind, Provenance, Record, Score, Turn};

/// A row that did not become (part of) a record.
#[derive(Debug, Clone, PartialEq)]
pub struct RowFailure {
    /// The (first) row.
    pub pos: Pos,
    pub id: Option<String>,
    /// How many rows from `pos` on the failure stands for (the rest of a row group that
    /// cannot be read, or that its pages do not hold); 1 for a single row.
    pub rows: u64,
    /// A short code: `missing-image`, `invalid-image`, `bad-row`, `duplicate-turn`,
    /// `session-too-long`, `too-large`, `unreadable-row-group`, `missing-rows`,
    /// `invalid-record`.
    pub reason: String,
    pub detail: String,
}

/// What the builder hands back. Records and failures carry the ordinal they are handed back
/// at (the row whose arrival completed them: a session's last row), which only grows: a
/// conversion resumed from it redoes exactly what came after.
#[derive(Debug)]
pub enum Out {
    Record(Box<Record>, u64),
    Failed(RowFailure, u64),
    /// Something a person should know that did not stop a row: a session whose turn's source
    /// is not the previous turn's output (it is split there).
    Notice(Pos, String),
    /// A session whose turns were let go to stay within memory is complete: read its rows
    /// (ordinals) again and hand them to [`Builder::complete`] with `at`.
    Reread {
        key: String,
        rows: Vec<u64>,
        at: u64,
    },
}

struct Piece {
    pos: Pos,
    id_value: Option<String>,
    source: Image,
    turn: Turn,
    order: i64,
    extras: Map<String, Value>,
}

impl Piece {
    /// The piece with its images copied out of the batch they came from (a view would keep
    /// the whole batch in memory while the session waits for its other rows).
    fn owned(mut self) -> Piece {
        let own = |img: &mut Image| {
            if let Some(d) = &img.data {
                img.data = Some(Bytes::copy_from_slice(d));
            }
        };
        own(&mut self.source);
        own(&mut self.turn.output);
        if let Some(m) = &mut self.turn.mask {
            own(m);
        }
        self
    }

    fn bytes(&self) -> u64 {
        let len = |img: &Image| img.data.as_ref().map_or(0, |d| d.len() as u64);
        len(&self.source) + len(&self.turn.output) + self.turn.mask.as_ref().map_or(0, len)
    }
}

/// A session some of whose rows have come.
#[derive(Default)]
struct Open {
    pieces: Vec<Piece>,
    failures: Vec<RowFailure>,
    bytes: u64,
    /// Its turns were let go: it is read again when complete.
    deferred: bool,
    last: u64,
}

pub struct Builder {
    mapping: Mapping,
    /// The columns the mapping names (`Mapping::columns`), taken once: every other column
    /// of a row goes to the record's extras.
    mapped: Vec<String>,
    revision: Option<String>,
    /// With a `[session]` mapping: where each session's rows are.
    index: Option<Arc<SessionIndex>>,
    open: HashMap<String, Open>,
    open_bytes: u64,
    max_open_bytes: u64,
}

impl Builder {
    pub fn new(mapping: Mapping, revision: Option<String>) -> Builder {
        let revision = revision.or_else(|| mapping.revision.clone());
        Builder {
            mapped: mapping.columns().into_iter().map(String::from).collect(),
            mapping,
            revision,
            index: None,
            open: HashMap::new(),
            open_bytes: 0,
            max_open_bytes: 0,
        }
    }

    /// Sessions as `index` finds them, keeping at most `max_open_bytes` of images of
    /// sessions still open.
    pub fn with_sessions(mut self, index: Arc<SessionIndex>, max_open_bytes: u64) -> Builder {
        self.index = Some(index);
        self.max_open_bytes = max_open_bytes;
        self
    }

    /// Takes row `ordinal`.
    pub fn push(&mut self, row: Row, ordinal: u64, out: &mut Vec<Out>) {
        let Some(index) = self.index.clone() else {
            match self.piece(&row) {
                Ok(piece) => {
                    let id = piece.id_value.clone().unwrap_or_else(|| row_id(&piece.pos));
                    let record = self.record(id, Kind::Sft, vec![piece], Map::new());
                    out.push(Out::Record(Box::new(record), ordinal));
                }
                Err(e) => out.push(Out::Failed(self.failure(&row, e), ordinal)),
            }
            return;
        };
        let key = match self.id_of(&row) {
            Some(k) if !k.is_empty() => k,
            // The piece's error names the empty key.
            _ => {
                let e = self.piece(&row).err().unwrap_or(("bad-row", String::new()));
                out.push(Out::Failed(self.failure(&row, e), ordinal));
                return;
            }
        };
        if index.too_long(&key) {
            let detail = format!(
                "session {key:?} has more than {MAX_SESSION_TURNS} rows (turns); a session \
                 is one record, and at most {MAX_SESSION_TURNS} turns are put in one"
            );
            out.push(Out::Failed(
                self.failure(&row, ("session-too-long", detail)),
                ordinal,
            ));
            return;
        }
        let last = index.span(&key).map_or(ordinal, |s| s.last);
        let mut open = self.open.remove(&key).unwrap_or(Open {
            last,
            ..Open::default()
        });
        if !open.deferred {
            match self.piece(&row) {
                Ok(p) if ordinal >= last && open.pieces.is_empty() => open.pieces.push(p),
                Ok(p) => {
                    let p = p.owned();
                    open.bytes += p.bytes();
                    self.open_bytes += p.bytes();
                    open.pieces.push(p);
                }
                Err(e) => open.failures.push(self.failure(&row, e)),
            }
        }
        if ordinal >= last {
            self.close(key, open, ordinal, out);
        } else {
            self.open.insert(key, open);
            self.shed();
        }
    }

    /// Completes the sessions whose last row came before `ordinal` without reaching the
    /// builder (it could not be read).
    pub fn passed(&mut self, ordinal: u64, out: &mut Vec<Out>) {
        let mut done: Vec<(u64, String)> = self
            .open
            .iter()
            .filter(|(_, o)| o.last < ordinal)
            .map(|(k, o)| (o.last, k.clone()))
            .collect();
        done.sort();
        for (last, key) in done {
            if let Some(o) = self.open.remove(&key) {
                self.close(key, o, last, out);
            }
        }
    }

    /// Completes every session still open: those whose last row lies at or past `end` (rows
    /// this run does not read in order: beyond its part) are read again whole.
    pub fn finish(&mut self, end: u64, out: &mut Vec<Out>) {
        let mut rest: Vec<(u64, String)> =
            self.open.iter().map(|(k, o)| (o.last, k.clone())).collect();
        rest.sort();
        for (last, key) in rest {
            let Some(mut o) = self.open.remove(&key) else {
                continue;
            };
            if last >= end && !o.deferred {
                self.open_bytes -= o.bytes;
                o = Open {
                    deferred: true,
                    last,
                    ..Open::default()
                };
            }
            self.close(key, o, last, out);
        }
    }

    /// Puts together a session read again ([`Out::Reread`]): `rows` are those of its rows
    /// that could be read, in order.
    pub fn complete(&mut self, key: String, rows: Vec<Row>, at: u64, out: &mut Vec<Out>) {
        let mut open = Open::default();
        for row in rows {
            match self.piece(&row) {
                Ok(p) => open.pieces.push(p),
                Err(e) => open.failures.push(self.failure(&row, e)),
            }
        }
        self.assemble(key, open, at, out);
    }

    fn close(&mut self, key: String, open: Open, at: u64, out: &mut Vec<Out>) {
        self.open_bytes -= open.bytes;
        if open.deferred {
            let rows = self
                .index
                .as_ref()
                .map_or_else(Vec::new, |ix| ix.rows(&key).to_vec());
            out.push(Out::Reread { key, rows, at });
        } else {
            self.assemble(key, open, at, out);
        }
    }

    /// Over the budget for open sessions: the largest lets go of its turns.
    fn shed(&mut self) {
        while self.open_bytes > self.max_open_bytes {
            let Some(largest) = self
                .open
                .values_mut()
                .filter(|o| !o.deferred)
                .max_by_key(|o| o.bytes)
            else {
                return;
            };
            self.open_bytes -= largest.bytes;
            largest.bytes = 0;
            largest.deferred = true;
            largest.pieces = Vec::new();
            largest.failures = Vec::new();
        }
    }

    fn failure(&self, row: &Row, (reason, detail): (&'static str, String)) -> RowFailure {
        RowFailure {
            pos: row.pos.clone(),
            id: self.id_of(row),
            rows: 1,
            reason: reason.into(),
            detail,
        }
    }

    /// The session's records (split where a turn's source is not the previous output) and
    /// its rows' failures, handed back at `at`.
    fn assemble(&mut self, key: String, open: Open, at: u64, out: &mut Vec<Out>) {
        out.extend(open.failures.into_iter().map(|f| Out::Failed(f, at)));
        let mut pieces = open.pieces;
        if pieces.is_empty() {
            return;
        }
        let session = self.mapping.session.clone().expect("sessions only");
        pieces.sort_by(|a, b| (a.order, &a.pos).cmp(&(b.order, &b.pos)));
        let mut runs: Vec<Vec<Piece>> = Vec::new();
        for p in pieces {
            let Some(run) = runs.last_mut() else {
                runs.push(vec![p]);
                continue;
            };
            let last = run.last().expect("runs are never empty");
            if last.order == p.order {
                out.push(Out::Failed(
                    RowFailure {
                        id: Some(key.clone()),
                        rows: 1,
                        detail: format!(
                            "session {key:?} has two rows with {} = {} (the first, row {} of \
                             {}, is kept)",
                            session.turn, p.order, last.pos.row, last.pos.file
                        ),
                        pos: p.pos,
                        reason: "duplicate-turn".into(),
                    },
                    at,
                ));
            } else if last.turn.output.sha256 != p.source.sha256 {
                out.push(Out::Notice(
                    p.pos.clone(),
                    format!(
                        "session {key:?}: the source of turn {} = {} is not the output of turn \
                         {}: the session is split there (a record `{key}#{}` starts)",
                        session.turn, p.order, last.order, p.order
                    ),
                ));
                runs.push(vec![p]);
            } else {
                run.push(p);
            }
        }
        for (i, run) in runs.into_iter().enumerate() {
            let id = if i == 0 {
                key.clone()
            } else {
                format!("{key}#{}", run[0].order)
            };
            // A session too large for one record: each of its rows is refused, by position
            // (the shard writer would refuse the record as one row, the others unreported).
            let room = session_room();
            let bytes = session_image_bytes(&run);
            if bytes > room {
                let detail = format!(
                    "session {key:?}: its turns' images take {bytes} bytes together, over the \
                     {room} one record may hold"
                );
                refuse_session(&id, run.into_iter().map(|p| p.pos), &detail, at, out);
                continue;
            }
            let mut extras = Map::new();
            extras.insert(
                session.turn.clone(),
                Value::Array(run.iter().map(|p| Value::from(p.order)).collect()),
            );
            let record = self.record(id, Kind::MultiTurn, run, extras);
            out.push(Out::Record(Box::new(record), at));
        }
    }

    fn record(
        &self,
        id: String,
        kind: Kind,
        pieces: Vec<Piece>,
        mut extras: Map<String, Value>,
    ) -> Record {
        let multi = pieces.len() > 1 || kind == Kind::MultiTurn;
        let mut pieces = pieces.into_iter();
        let first = pieces.next().expect("a record has a row");
        let pos = first.pos.clone();
        let mut turns = vec![first.turn];
        let mut row_extras = vec![first.extras];
        for p in pieces {
            turns.push(p.turn);
            row_extras.push(p.extras);
        }
        if multi {
            // One list per column, one entry per turn.
            let mut cols: Vec<String> = Vec::new();
            for e in &row_extras {
                for k in e.keys() {
                    if !cols.contains(k) {
                        cols.push(k.clone());
                    }
                }
            }
            for c in cols {
                let v = row_extras
                    .iter()
                    .map(|e| e.get(&c).cloned().unwrap_or(Value::Null))
                    .collect();
                extras.insert(c, Value::Array(v));
            }
        } else {
            extras.extend(row_extras.into_iter().flatten());
        }
        let mut r = Record::new(id, kind, first.source, turns);
        r.provenance = Provenance {
            subset: Some(split_of(&pos.file)),
            file: Some(pos.file.to_string()),
            line: None,
            licence: self.mapping.licence.clone(),
            dataset: self.mapping.dataset.clone(),
            revision: self.revision.clone(),
            row_group: Some(pos.row_group),
            row: Some(pos.row),
        };
        r.extras = extras;
        r
    }

    fn id_of(&self, row: &Row) -> Option<String> {
        let col = self.id_column()?;
        row.get(col).and_then(Cell::as_key)
    }

    fn id_column(&self) -> Option<&str> {
        self.mapping
            .session
            .as_ref()
            .map(|s| s.key.as_str())
            .or(self.mapping.id.as_deref())
    }

    fn piece(&self, row: &Row) -> Result<Piece, (&'static str, String)> {
        let m = &self.mapping;
        let id_value = match self.id_column() {
            Some(c) => match row.get(c).and_then(Cell::as_key) {
                Some(v) if !v.is_empty() => Some(v),
                _ => {
                    let role = if m.session.is_some() {
                        "the session key"
                    } else {
                        "the id"
                    };
                    return Err(("bad-row", format!("column {c:?} ({role}) is null or empty")));
                }
            },
            None => None,
        };
        let order = match &m.session {
            Some(s) => match row.get(&s.turn).and_then(turn_number) {
                Some(v) => v,
                None => {
                    return Err((
                        "bad-row",
                        format!("column {:?} (the turn order) is not an integer", s.turn),
                    ));
                }
            },
            None => 0,
        };
        let mut source = image(row, &m.source)?.ok_or_else(|| missing(&m.source))?;
        let mut output = image(row, &m.output)?.ok_or_else(|| missing(&m.output))?;
        source.caption = text(row, m.source_caption.as_deref())?;
        output.caption = text(row, m.output_caption.as_deref())?;
        for s in &m.scores {
            match row.get(s) {
                None | Some(Cell::Null) => {}
                Some(c) => match c.as_f64() {
                    Some(v) => output.scores.push(Score {
                        name: s.clone(),
                        value: v as f32,
                    }),
                    None => {
                        return Err(("bad-row", format!("column {s:?} (a score) is not a number")));
                    }
                },
            }
        }
        let mut turn = Turn::new(output);
        turn.mask = match &m.mask {
            Some(c) => image(row, c)?,
            None => None,
        };
        turn.instruction = text(row, m.instruction.as_deref())?;
        turn.edit_type = text(row, m.edit_type.as_deref())?;
        if let Some(c) = &m.instruction_variants {
            match row.get(c) {
                None | Some(Cell::Null) => {}
                Some(Cell::List(items)) => {
                    for item in items {
                        match item {
                            Cell::Text(t) => turn.instruction_variants.push(t.clone()),
                            _ => {
                                return Err((
                                    "bad-row",
                                    format!("column {c:?} holds a non-string"),
                                ));
                            }
                        }
                    }
                }
                Some(_) => {
                    return Err(("bad-row", format!("column {c:?} is not a list of strings")));
                }
            }
            if turn.instruction.is_none() {
                turn.instruction = turn.instruction_variants.first().cloned();
            }
        }
        let extras = row
            .cells
            .iter()
            .filter(|(n, _)| !self.mapped.iter().any(|c| c.as_str() == &**n))
            .map(|(n, c)| (n.to_string(), c.to_json()))
            .collect();
        Ok(Piece {
            pos: row.pos.clone(),
            id_value,
            source,
            turn,
            order,
            extras,
        })
    }
}

fn missing(column: &str) -> (&'static str, String) {
    (
        "missing-image",
        format!("column {column:?} is null (no image bytes)"),
    )
}

/// The image in `column`: `None` when the column is absent or null (or a struct with no
/// bytes); an error when its bytes are not a JPEG, PNG or WebP.
fn image(row: &Row, column: &str) -> Result<Option<Image>, (&'static str, String)> {
    let (bytes, path) = match row.get(column) {
        None | Some(Cell::Null) | Some(Cell::Image { bytes: None, .. }) => return Ok(None),
        Some(Cell::Image {
            bytes: Some(b),
            path,
        }) => (b.clone(), path.clone()),
        Some(Cell::Bytes(b)) => (b.clone(), None),
        Some(_) => {
            return Err((
                "bad-row",
                format!("column {column:?} does not hold an image"),
            ));
        }
    };
    let mut img = Image::from_bytes(bytes)
        .map_err(|e| ("invalid-image", format!("column {column:?}: {e}")))?;
    img.path = path;
    Ok(Some(img))
}

fn text(row: &Row, column: Option<&str>) -> Result<Option<String>, (&'static str, String)> {
    let Some(c) = column else { return Ok(None) };
    match row.get(c) {
        None | Some(Cell::Null) => Ok(None),
        Some(Cell::Text(t)) => Ok(Some(t.clone())),
        Some(_) => Err(("bad-row", format!("column {c:?} is not a string"))),
    }
}

/// The id of a row of a dataset without an id column: `<file>#<row>`.
pub fn row_id(pos: &Pos) -> String {
    format!("{}#{}", pos.file, pos.row)
}

/// The split a Hub file belongs to, from its name: `data/train-00000-of-00051-ab12.parquet`
/// and `data/FreeForm_3-00000-of-00002.parquet` are `train` and `FreeForm_3`; any other
/// name is its stem (`HQ-Edit_7`).
pub fn split_of(file: &str) -> String {
    let name = file.rsplit('/').next().unwrap_or(file);
    let stem = name.strip_suffix(".parquet").unwrap_or(name);
    let parts: Vec<&str> = stem.split('-').collect();
    for i in 1..parts.len() {
        if parts[i].len() == 5
            && parts[i].bytes().all(|b| b.is_ascii_digit())
            && parts.get(i + 1) == Some(&"of")
        {
            return parts[..i].join("-");
        }
    }
    stem.to_string()
}

/// What one record's images may take together: a session over it is refused.
pub fn session_room() -> u64 {
    editshard::format::Limits::DEFAULT.record_image_room()
}

/// Refuses a session too large for one record: each of its rows (at `positions`) as
/// `too-large`, handed back at `at`.
pub fn refuse_session(
    id: &str,
    positions: impl IntoIterator<Item = Pos>,
    detail: &str,
    at: u64,
    out: &mut Vec<Out>,
) {
    out.extend(positions.into_iter().map(|pos| {
        let failure = RowFailure {
            pos,
            id: Some(id.to_string()),
            rows: 1,
            reason: "too-large".into(),
            detail: detail.to_string(),
        };
        Out::Failed(failure, at)
    }));
}

/// The bytes of a session's distinct images (a turn's source is the previous turn's output,
/// stored once).
fn session_image_bytes(run: &[Piece]) -> u64 {
    let mut distinct = std::collections::HashSet::new();
    run.iter()
        .flat_map(|p| {
            std::iter::once(&p.source).chain(
                std::iter::once(&p.turn.output)
                    .chain(p.turn.rejected.iter())
                    .chain(p.turn.mask.iter()),
            )
        })
        .filter(|i| distinct.insert(i.sha256))
        .map(|i| i.len)
        .sum()
}

/// A turn column's value as an exact integer: integers as they are (not through an f64,
/// which rounds past 2^53 and would make two turns one), whole floats within the range of
/// `i64` (not saturated to its ends); anything else is not a turn number.
fn turn_number(c: &Cell) -> Option<i64> {
    match c {
        Cell::Int(i) => Some(*i),
        Cell::Bool(b) => Some(i64::from(*b)),
        Cell::Float(f)
            if f.fract() == 0.0
                && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(f) =>
        {
            Some(*f as i64)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits_come_from_hub_file_names() {
        assert_eq!(
            super::split_of("data/train-00000-of-00051-ab12.parquet"),
            "train"
        );
        assert_eq!(
            super::split_of("data/FreeForm_3-00001-of-00002.parquet"),
            "FreeForm_3"
        );
        assert_eq!(super::split_of("data/HQ-Edit_7.parquet"), "HQ-Edit_7");
    }
}
