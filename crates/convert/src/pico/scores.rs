//! `--scores FILE.jsonl`: judge scores produced after the release (none were published).
//!
//! One JSON object per line, keyed by the record id:
//! `{"id": "sft/images/positive-edit/1.png", "scores": {"instruction_compliance": 0.9, ...}}`
//! or flat: `{"id": ..., "instruction_compliance": 0.9, ...}`. An optional `"image"` names the
//! scored image by its path as written in the release (an output or a rejected image); without
//! it the scores go to the last turn's output. Scores keep the order they were written in.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use serde_json::Value;

use editshard::error::{Error, Result};
use editshard::record::{Record, Score};
use editshard_pico::rows::{self, LineReader};

/// Scores for one image of a record: the image's path (`None`: last turn's output).
type ImageScores = (Option<String>, Vec<Score>);

#[derive(Debug, Default)]
pub struct Scores {
    by_id: HashMap<String, Vec<ImageScores>>,
}

impl Scores {
    pub fn load(path: &Path) -> Result<Scores> {
        // A wrong --scores file is a wrong argument, not a damaged shard: its errors are
        // `Invalid`, whose advice is about the call.
        let ctx = |e: Error| e.in_shard(path.display().to_string());
        let file = File::open(path)
            .map_err(|e| ctx(Error::invalid(format!("--scores: cannot open it: {e}"))))?;
        let mut reader = LineReader::new(BufReader::new(file));
        let mut out = Scores::default();
        while let Some(line) = reader.next_line().map_err(|e| ctx(e.into()))? {
            let n = line.number;
            let bad = |m: String| {
                ctx(Error::invalid(format!(
                    "--scores line {n}: {m} (expected JSONL: {{\"id\": ..., \"scores\": {{...}}}})"
                )))
            };
            let bytes = line
                .content
                .map_err(|len| bad(format!("line of {len} bytes is too long")))?;
            let content = rows::trim_line(&bytes, n == 1);
            if rows::is_blank(content) {
                continue;
            }
            let Value::Object(obj) =
                serde_json::from_slice(content).map_err(|e| bad(e.to_string()))?
            else {
                return Err(bad("expected a JSON object".into()));
            };
            let id = obj
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("no string \"id\"".into()))?
                .to_string();
            let image = obj.get("image").and_then(Value::as_str).map(str::to_string);
            let fields = match obj.get("scores") {
                Some(Value::Object(s)) => s.clone(),
                Some(_) => return Err(bad("\"scores\" must be an object".into())),
                None => obj
                    .into_iter()
                    .filter(|(k, _)| k != "id" && k != "image")
                    .collect(),
            };
            let mut scores = Vec::new();
            for (name, v) in fields {
                let value = v
                    .as_f64()
                    .ok_or_else(|| bad(format!("score {name:?} is not a number")))?;
                scores.push(Score {
                    name,
                    value: value as f32,
                });
            }
            out.by_id.entry(id).or_default().push((image, scores));
        }
        Ok(out)
    }

    /// Attaches the scores of `record.id`. Unknown image paths are an error for the row.
    pub fn apply(&self, record: &mut Record) -> std::result::Result<(), String> {
        let Some(entries) = self.by_id.get(&record.id) else {
            return Ok(());
        };
        for (image, scores) in entries {
            let target = match image {
                None => record.turns.last_mut().map(|t| &mut t.output),
                Some(p) => record
                    .turns
                    .iter_mut()
                    .flat_map(|t| std::iter::once(&mut t.output).chain(t.rejected.iter_mut()))
                    .find(|i| i.path.as_deref() == Some(p.as_str())),
            };
            let Some(target) = target else {
                return Err(format!(
                    "--scores names image {:?}, which the row does not have",
                    image.as_deref().unwrap_or("")
                ));
            };
            target.scores.extend(scores.iter().cloned());
        }
        Ok(())
    }
}
