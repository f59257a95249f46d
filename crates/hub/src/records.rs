//! Rows into records: one row per record, or (with a `[session]` mapping) the consecutive
//! rows sharing a session key as one multi-turn record whose turns follow the turn column.

use serde_json::{Map, Value};

use crate::cell::Cell;
use crate::mapping::Mapping;
use crate::reader::{Pos, Row};
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
    /// `too-large`, `unreadable-row-group`, `missing-rows`, `invalid-record`.
    pub reason: String,
    pub detail: String,
}

/// What the builder hands back.
#[derive(Debug)]
pub enum Out {
    /// A record and the position of its first row.
    Record(Box<Record>, Pos),
    Failed(RowFailure),
    /// Something a person should know that did not stop a row: a session whose turn's source
    /// is not the previous turn's output (it is split there).
    Notice(Pos, String),
}

struct Piece {
    pos: Pos,
    id_value: Option<String>,
    source: Image,
    turn: Turn,
    order: i64,
    extras: Map<String, Value>,
}

pub struct Builder {
    mapping: Mapping,
    /// The columns the mapping names (`Mapping::columns`), taken once: every other column
    /// of a row goes to the record's extras.
    mapped: Vec<String>,
    revision: Option<String>,
    open: Option<(String, Vec<Piece>)>,
}

impl Builder {
    pub fn new(mapping: Mapping, revision: Option<String>) -> Builder {
        let revision = revision.or_else(|| mapping.revision.clone());
        Builder {
            mapped: mapping.columns().into_iter().map(String::from).collect(),
            mapping,
            revision,
            open: None,
        }
    }

    /// The key of the session still open (its rows may go on in the next row group or file).
    pub fn open_key(&self) -> Option<&str> {
        self.open.as_ref().map(|(k, _)| k.as_str())
    }

    pub fn push(&mut self, row: Row, out: &mut Vec<Out>) {
        let piece = match self.piece(&row) {
            Ok(p) => p,
            Err((reason, detail)) => {
                let id = self.id_of(&row);
                out.push(Out::Failed(RowFailure {
                    pos: row.pos,
                    id,
                    rows: 1,
                    reason: reason.into(),
                    detail,
                }));
                return;
            }
        };
        if self.mapping.session.is_none() {
            let id = piece.id_value.clone().unwrap_or_else(|| row_id(&piece.pos));
            let pos = piece.pos.clone();
            out.push(Out::Record(
                Box::new(self.record(id, Kind::Sft, vec![piece], Map::new())),
                pos,
            ));
            return;
        }
        let key = piece.id_value.clone().unwrap_or_default();
        match &mut self.open {
            Some((k, pieces)) if *k == key => pieces.push(piece),
            _ => {
                self.flush(out);
                self.open = Some((key, vec![piece]));
            }
        }
    }

    /// Ends the open session, if any (a new key came, or the input ended).
    pub fn flush(&mut self, out: &mut Vec<Out>) {
        let Some((key, mut pieces)) = self.open.take() else {
            return;
        };
        let session = self.mapping.session.clone().expect("sessions only");
        pieces.sort_by_key(|p| p.order);
        let mut runs: Vec<Vec<Piece>> = Vec::new();
        for p in pieces {
            let Some(run) = runs.last_mut() else {
                runs.push(vec![p]);
                continue;
            };
            let last = run.last().expect("runs are never empty");
            if last.order == p.order {
                out.push(Out::Failed(RowFailure {
                    id: Some(key.clone()),
                    rows: 1,
                    detail: format!(
                        "session {key:?} has two rows with {} = {} (the first, row {}, is kept)",
                        session.turn, p.order, last.pos.row
                    ),
                    pos: p.pos,
                    reason: "duplicate-turn".into(),
                }));
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
            let mut extras = Map::new();
            extras.insert(
                session.turn.clone(),
                Value::Array(run.iter().map(|p| Value::from(p.order)).collect()),
            );
            let pos = run[0].pos.clone();
            out.push(Out::Record(
                Box::new(self.record(id, Kind::MultiTurn, run, extras)),
                pos,
            ));
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
                _ => return Err(("bad-row", format!("column {c:?} (the id) is null or empty"))),
            },
            None => None,
        };
        let order = match &m.session {
            Some(s) => match row.get(&s.turn).and_then(Cell::as_f64) {
                Some(v) if v.fract() == 0.0 => v as i64,
                _ => {
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
