//! Reading the release's JSONL files and turning one line into a [`ParsedRow`], per subset.
//!
//! Lines are read with a hard length cap, blank lines are skipped (they are not rows), and
//! every way a line can be unusable becomes a [`RowError`] with a reason, never a panic.
//! [`rebuild_row`] is the inverse used by `export`: it rebuilds the source row (same keys, key
//! order and values) from a record.

use std::io::{BufRead, Read};

use serde_json::{Map, Value};

use editshard_format::record::{Kind, Record};

/// Longest JSONL line accepted. Real rows are under 4 KiB; a multi-megabyte line is damage.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Most images one row may name (a multi-turn session has at most a handful).
pub const MAX_IMAGES_PER_ROW: usize = 64;
/// Longest natural key accepted (the writer's id limit is larger; real keys are ~40 bytes).
pub const MAX_KEY_BYTES: usize = 1024;
/// The extras key holding what `export` needs beyond the mapped fields. A row that already
/// has a field of this name is refused (reported), as it could not be rebuilt.
pub const RELEASE_KEY: &str = "editshard.release";

/// The three subsets of the release, in the order they are converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subset {
    Sft,
    Preference,
    MultiTurn,
}

impl Subset {
    pub const ALL: [Subset; 3] = [Subset::Sft, Subset::Preference, Subset::MultiTurn];

    pub fn name(self) -> &'static str {
        match self {
            Subset::Sft => "sft",
            Subset::Preference => "preference",
            Subset::MultiTurn => "multi-turn",
        }
    }
    pub fn from_name(name: &str) -> Option<Subset> {
        Subset::ALL.into_iter().find(|s| s.name() == name)
    }
    /// The JSONL file relative to the release root.
    pub fn file(self) -> &'static str {
        match self {
            Subset::Sft => "jsonl/sft.jsonl",
            Subset::Preference => "jsonl/preference.jsonl",
            Subset::MultiTurn => "jsonl/multi-turn.jsonl",
        }
    }
    pub fn kind(self) -> Kind {
        match self {
            Subset::Sft => Kind::Sft,
            Subset::Preference => Kind::Preference,
            Subset::MultiTurn => Kind::MultiTurn,
        }
    }
    pub fn index(self) -> u8 {
        self as u8
    }
    pub fn from_index(i: u8) -> Option<Subset> {
        Subset::ALL.get(i as usize).copied()
    }
}

/// Why a line did not become a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Short machine-readable reason: `malformed-json`, `line-too-long`, `bad-row`.
    pub reason: &'static str,
    pub detail: String,
    /// The row's id when it could be read.
    pub id: Option<String>,
}

fn bad(detail: impl Into<String>) -> RowError {
    RowError {
        reason: "bad-row",
        detail: detail.into(),
        id: None,
    }
}

/// One turn as written: instructions and image references (not yet resolved).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedTurn {
    pub instruction: Option<String>,
    pub short_instruction: Option<String>,
    pub edit_type: Option<String>,
    pub output: String,
    pub rejected: Vec<String>,
}

/// A well-formed row of any subset.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRow {
    pub subset: Subset,
    pub line: u64,
    /// The natural key: `output_image`, or the multi-turn `final_image` url.
    pub key: String,
    /// `<subset>/<key>`.
    pub id: String,
    /// `open_image_input_url`, or the multi-turn `original_input_image` url.
    pub source_url: String,
    /// Apple's mapping script's `local_input_image`, when it is a string.
    pub local_input_image: Option<String>,
    pub turns: Vec<ParsedTurn>,
    /// Unmapped fields verbatim, plus [`RELEASE_KEY`].
    pub extras: Map<String, Value>,
}

impl ParsedRow {
    /// Every edited image reference (outputs and rejected), in record order.
    pub fn edited_refs(&self) -> impl Iterator<Item = &str> {
        self.turns.iter().flat_map(|t| {
            std::iter::once(t.output.as_str()).chain(t.rejected.iter().map(String::as_str))
        })
    }
}

/// One physical line: its 1-based number, byte offset and content (without the line end).
pub struct Line {
    pub number: u64,
    pub offset: u64,
    /// `Err(len)` when the line exceeded [`MAX_LINE_BYTES`] (its bytes were skipped).
    pub content: Result<Vec<u8>, u64>,
}

/// Reads lines with a length cap, keeping byte offsets so that a line can be read again later
/// without holding it in memory.
pub struct LineReader<R> {
    inner: R,
    number: u64,
    offset: u64,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            number: 0,
            offset: 0,
        }
    }

    pub fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        let mut buf = Vec::new();
        let start = self.offset;
        let n = (&mut self.inner)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.offset += n as u64;
        self.number += 1;
        if !buf.ends_with(b"\n") && buf.len() > MAX_LINE_BYTES {
            // Skip the rest of the over-long line without keeping it.
            let mut skipped = n as u64;
            loop {
                let chunk = self.inner.fill_buf()?;
                if chunk.is_empty() {
                    break;
                }
                let (used, done) = match chunk.iter().position(|&b| b == b'\n') {
                    Some(p) => (p + 1, true),
                    None => (chunk.len(), false),
                };
                self.inner.consume(used);
                skipped += used as u64;
                if done {
                    break;
                }
            }
            self.offset = start + skipped;
            return Ok(Some(Line {
                number: self.number,
                offset: start,
                content: Err(skipped),
            }));
        }
        Ok(Some(Line {
            number: self.number,
            offset: start,
            content: Ok(buf),
        }))
    }
}

/// Strips the line end and, on the first line, a UTF-8 byte order mark.
pub fn trim_line(bytes: &[u8], first: bool) -> &[u8] {
    let mut b = bytes;
    if first {
        b = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b);
    }
    b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// True when the line holds only whitespace: skipped, not a row.
pub fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| b.is_ascii_whitespace())
}

/// Parses one non-blank line of `subset`.
pub fn parse_row(subset: Subset, line: u64, bytes: &[u8]) -> Result<ParsedRow, RowError> {
    let obj: Map<String, Value> = match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(o)) => o,
        Ok(other) => {
            return Err(RowError {
                reason: "malformed-json",
                detail: format!("expected a JSON object, found {}", type_name(&other)),
                id: None,
            });
        }
        Err(e) => {
            return Err(RowError {
                reason: "malformed-json",
                detail: format!("invalid JSON at column {}: {e}", e.column()),
                id: None,
            });
        }
    };
    if obj.contains_key(RELEASE_KEY) {
        return Err(bad(format!(
            "the row has a field named {RELEASE_KEY:?}, which editshard reserves"
        )));
    }
    let mut row = match subset {
        Subset::Sft | Subset::Preference => single_turn(subset, line, &obj)?,
        Subset::MultiTurn => multi_turn(line, &obj)?,
    };
    check_key(&row.key)?;
    row.id = format!("{}/{}", subset.name(), row.key);
    let images = 1 + row
        .turns
        .iter()
        .map(|t| 1 + t.rejected.len())
        .sum::<usize>();
    if images > MAX_IMAGES_PER_ROW {
        return Err(bad(format!(
            "{images} images in one row (at most {MAX_IMAGES_PER_ROW} accepted)"
        ))
        .with_id(&row.id));
    }
    let keys: Vec<Value> = obj.keys().map(|k| Value::String(k.clone())).collect();
    let mapped = mapped_keys(subset);
    let mut extras = Map::new();
    for (k, v) in &obj {
        if !mapped.contains(&k.as_str()) {
            extras.insert(k.clone(), v.clone());
        }
    }
    let mut release = Map::new();
    release.insert("keys".into(), Value::Array(keys));
    if subset == Subset::MultiTurn {
        release.insert("files".into(), obj["files"].clone());
    }
    extras.insert(RELEASE_KEY.into(), Value::Object(release));
    row.extras = extras;
    row.local_input_image = obj
        .get("local_input_image")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Ok(row)
}

impl RowError {
    fn with_id(mut self, id: &str) -> Self {
        self.id = Some(id.to_string());
        self
    }
}

fn mapped_keys(subset: Subset) -> &'static [&'static str] {
    match subset {
        Subset::Sft => &[
            "open_image_input_url",
            "text",
            "output_image",
            "edit_type",
            "summarized_text",
        ],
        Subset::Preference => &[
            "open_image_input_url",
            "text",
            "output_image",
            "edit_type",
            "summarized_text",
            "rejected_images",
        ],
        Subset::MultiTurn => &["files", "metadata_edit_turn_prompts"],
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_key(key: &str) -> Result<(), RowError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES || key.chars().any(char::is_control) {
        return Err(bad(format!(
            "natural key {:?} must be 1 to {MAX_KEY_BYTES} bytes without control characters",
            truncate(key, 80)
        )));
    }
    Ok(())
}

/// At most `max` bytes of `s`, cut at a character boundary (for messages).
pub fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn required_str(obj: &Map<String, Value>, key: &str) -> Result<String, RowError> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(bad(format!("{key:?} is empty"))),
        Some(other) => Err(bad(format!(
            "{key:?} is {}, expected a string",
            type_name(other)
        ))),
        None => Err(bad(format!("missing field {key:?}"))),
    }
}

/// A string or null (null and absent both map to `None`; the key list tells them apart).
fn optional_str(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, RowError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(bad(format!(
            "{key:?} is {}, expected a string or null",
            type_name(other)
        ))),
    }
}

fn string_list(obj: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, RowError> {
    let Some(v) = obj.get(key) else {
        return Ok(None);
    };
    let Value::Array(items) = v else {
        return Err(bad(format!(
            "{key:?} is {}, expected a list of strings",
            type_name(v)
        )));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            other => Err(bad(format!(
                "{key:?}[{i}] is {}, expected a non-empty string",
                type_name(other)
            ))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn single_turn(subset: Subset, line: u64, obj: &Map<String, Value>) -> Result<ParsedRow, RowError> {
    let output = required_str(obj, "output_image")?;
    let with_id = |e: RowError| e.with_id(&format!("{}/{output}", subset.name()));
    let source_url = required_str(obj, "open_image_input_url").map_err(with_id)?;
    let text = required_str(obj, "text").map_err(with_id)?;
    let rejected = if subset == Subset::Preference {
        string_list(obj, "rejected_images")
            .map_err(with_id)?
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let turn = ParsedTurn {
        instruction: Some(text),
        short_instruction: optional_str(obj, "summarized_text").map_err(with_id)?,
        edit_type: optional_str(obj, "edit_type").map_err(with_id)?,
        output: output.clone(),
        rejected,
    };
    Ok(ParsedRow {
        subset,
        line,
        key: output,
        id: String::new(),
        source_url,
        local_input_image: None,
        turns: vec![turn],
        extras: Map::new(),
    })
}

/// Multi-turn: entries are selected by `id`, never by position. The last turn exists only as
/// `final_image`; `edit_turn1..edit_turn{K-1}` are the earlier ones and must be contiguous.
fn multi_turn(line: u64, obj: &Map<String, Value>) -> Result<ParsedRow, RowError> {
    let Some(files) = obj.get("files") else {
        return Err(bad("missing field \"files\""));
    };
    let Value::Array(files) = files else {
        return Err(bad(format!(
            "\"files\" is {}, expected a list",
            type_name(files)
        )));
    };
    let mut edits: Vec<(u32, String)> = Vec::new();
    let (mut final_url, mut source_url) = (None, None);
    for (i, f) in files.iter().enumerate() {
        let (Some(id), Some(url)) = (
            f.get("id").and_then(Value::as_str),
            f.get("url")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty()),
        ) else {
            return Err(bad(format!(
                "files[{i}] must be an object with string \"id\" and non-empty \"url\""
            )));
        };
        let dup = || bad(format!("files lists id {id:?} twice"));
        match id {
            "final_image" => {
                if final_url.replace(url.to_string()).is_some() {
                    return Err(dup());
                }
            }
            "original_input_image" => {
                if source_url.replace(url.to_string()).is_some() {
                    return Err(dup());
                }
            }
            _ => {
                let n = id
                    .strip_prefix("edit_turn")
                    .filter(|n| !n.starts_with('0') && n.len() <= 4)
                    .and_then(|n| n.parse::<u32>().ok())
                    .ok_or_else(|| bad(format!("files[{i}] has an unknown id {id:?}")))?;
                if edits.iter().any(|(m, _)| *m == n) {
                    return Err(dup());
                }
                edits.push((n, url.to_string()));
            }
        }
    }
    let final_url = final_url.ok_or_else(|| bad("files has no \"final_image\" entry"))?;
    let id = format!("multi-turn/{final_url}");
    let with_id = |e: RowError| e.with_id(&id);
    let source_url =
        source_url.ok_or_else(|| with_id(bad("files has no \"original_input_image\" entry")))?;
    edits.sort();
    for (i, (n, _)) in edits.iter().enumerate() {
        if *n as usize != i + 1 {
            return Err(with_id(bad(format!(
                "edit turns are not numbered 1..{}: edit_turn{} is missing",
                edits.len(),
                i + 1
            ))));
        }
    }
    let prompts = string_list(obj, "metadata_edit_turn_prompts")
        .map_err(with_id)?
        .ok_or_else(|| with_id(bad("missing field \"metadata_edit_turn_prompts\"")))?;
    let outputs: Vec<String> = edits
        .into_iter()
        .map(|(_, u)| u)
        .chain(std::iter::once(final_url.clone()))
        .collect();
    if prompts.len() != outputs.len() {
        return Err(with_id(bad(format!(
            "{} prompts for {} turn images (edit_turn1..N plus final_image)",
            prompts.len(),
            outputs.len()
        ))));
    }
    let turns = outputs
        .into_iter()
        .zip(prompts)
        .map(|(output, prompt)| ParsedTurn {
            instruction: Some(prompt),
            short_instruction: None,
            edit_type: None,
            output,
            rejected: Vec::new(),
        })
        .collect();
    Ok(ParsedRow {
        subset: Subset::MultiTurn,
        line,
        key: final_url,
        id: String::new(),
        source_url,
        local_input_image: None,
        turns,
        extras: Map::new(),
    })
}

/// Rebuilds the release row a record was converted from: the same keys in the same order with
/// the same values. `None` if the record was not made by `convert` (no [`RELEASE_KEY`]).
pub fn rebuild_row(record: &Record) -> Option<Map<String, Value>> {
    let release = record.extras.get(RELEASE_KEY)?.as_object()?;
    let keys = release.get("keys")?.as_array()?;
    let turn = record.turns.first();
    let opt = |v: Option<&String>| v.map_or(Value::Null, |s| Value::String(s.clone()));
    let mut out = Map::new();
    for key in keys {
        let key = key.as_str()?;
        let value = match (record.kind, key) {
            (Kind::MultiTurn, "files") => release.get("files")?.clone(),
            (Kind::MultiTurn, "metadata_edit_turn_prompts") => Value::Array(
                record
                    .turns
                    .iter()
                    .map(|t| opt(t.instruction.as_ref()))
                    .collect(),
            ),
            (Kind::Sft | Kind::Preference, "open_image_input_url") => {
                opt(record.source.url.as_ref())
            }
            (Kind::Sft | Kind::Preference, "text") => opt(turn?.instruction.as_ref()),
            (Kind::Sft | Kind::Preference, "output_image") => opt(turn?.output.path.as_ref()),
            (Kind::Sft | Kind::Preference, "edit_type") => opt(turn?.edit_type.as_ref()),
            (Kind::Sft | Kind::Preference, "summarized_text") => {
                opt(turn?.short_instruction.as_ref())
            }
            (Kind::Preference, "rejected_images") => Value::Array(
                turn?
                    .rejected
                    .iter()
                    .map(|r| opt(r.path.as_ref()))
                    .collect(),
            ),
            _ => record.extras.get(key)?.clone(),
        };
        out.insert(key.to_string(), value);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_turn_selects_by_id_and_keeps_final_turn() {
        let line = br#"{"files": [{"id": "final_image", "url": "images/multi-turn/x_turn3.png"}, {"id": "original_input_image", "url": "https://h/s.jpg"}, {"id": "edit_turn2", "url": "images/multi-turn/x_turn2.png"}, {"id": "edit_turn1", "url": "images/multi-turn/x_turn1.png"}], "metadata_edit_turn_prompts": ["a", "b", "c"]}"#;
        let row = parse_row(Subset::MultiTurn, 7, line).unwrap();
        assert_eq!(row.id, "multi-turn/images/multi-turn/x_turn3.png");
        assert_eq!(row.source_url, "https://h/s.jpg");
        let outs: Vec<_> = row.turns.iter().map(|t| t.output.as_str()).collect();
        assert_eq!(
            outs,
            [
                "images/multi-turn/x_turn1.png",
                "images/multi-turn/x_turn2.png",
                "images/multi-turn/x_turn3.png"
            ]
        );
        assert_eq!(row.turns[2].instruction.as_deref(), Some("c"));
    }

    #[test]
    fn rejects_gaps_unknown_ids_and_prompt_mismatch() {
        let cases: [&[u8]; 4] = [
            br#"{"files": [{"id": "edit_turn2", "url": "a"}, {"id": "final_image", "url": "b"}, {"id": "original_input_image", "url": "s"}], "metadata_edit_turn_prompts": ["x", "y"]}"#,
            br#"{"files": [{"id": "thumbnail", "url": "a"}, {"id": "final_image", "url": "b"}, {"id": "original_input_image", "url": "s"}], "metadata_edit_turn_prompts": ["x"]}"#,
            br#"{"files": [{"id": "final_image", "url": "b"}, {"id": "original_input_image", "url": "s"}], "metadata_edit_turn_prompts": ["x", "y"]}"#,
            br#"{"files": [{"id": "edit_turn1", "url": "b"}, {"id": "original_input_image", "url": "s"}], "metadata_edit_turn_prompts": ["x"]}"#,
        ];
        for c in cases {
            let e = parse_row(Subset::MultiTurn, 1, c).unwrap_err();
            assert_eq!(e.reason, "bad-row", "{e:?}");
        }
    }

    #[test]
    fn malformed_and_wrong_types_are_reported() {
        let e = parse_row(Subset::Sft, 1, b"{\"text\": \"Make").unwrap_err();
        assert_eq!(e.reason, "malformed-json");
        let e = parse_row(Subset::Sft, 1, b"[1]").unwrap_err();
        assert_eq!(e.reason, "malformed-json");
        let e = parse_row(
            Subset::Sft,
            1,
            br#"{"open_image_input_url": 5, "text": "t", "output_image": "o.png"}"#,
        )
        .unwrap_err();
        assert_eq!((e.reason, e.id.as_deref()), ("bad-row", Some("sft/o.png")));
    }

    #[test]
    fn line_reader_caps_length_and_keeps_offsets() {
        let mut data = b"{}\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
        data.extend(b"\n\nlast");
        let mut r = LineReader::new(std::io::Cursor::new(&data));
        let a = r.next_line().unwrap().unwrap();
        assert_eq!(
            (a.number, a.offset, a.content.unwrap()),
            (1, 0, b"{}\n".to_vec())
        );
        let b = r.next_line().unwrap().unwrap();
        assert_eq!((b.number, b.offset), (2, 3));
        assert_eq!(b.content, Err(MAX_LINE_BYTES as u64 + 11));
        let c = r.next_line().unwrap().unwrap();
        assert_eq!((c.number, c.content.unwrap()), (3, b"\n".to_vec()));
        let d = r.next_line().unwrap().unwrap();
        assert_eq!((d.number, d.content.unwrap()), (4, b"last".to_vec()));
        assert!(r.next_line().unwrap().is_none());
    }
}
