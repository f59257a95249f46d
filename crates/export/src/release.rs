//! The raw release layout, as Apple's release and its mapping script lay it out:
//!
//! ```text
//! jsonl/sft.jsonl, jsonl/preference.jsonl, jsonl/multi-turn.jsonl
//! images/...                       edited images at the paths the rows name
//! sources/<host>/<url path>        source images (local_input_image points here)
//! ```
//!
//! Rows are rebuilt by [`rebuild_row`] (same keys, order and values as the converted line);
//! the only change is `local_input_image`, set to the exported source file (in place when
//! the row had the field, appended last otherwise, as the mapping script does). Rows come out
//! in their original line order: records are stored by source, so each row is spilled to a
//! side file and the files are written sorted by line at the end, with memory for only a
//! small index entry per row.
//!
//! Edited images go to their release-relative path (the `nano-banana-300k/` and CDN forms of
//! `rejected_images` resolve as convert resolves them); an absolute URL elsewhere goes under
//! `external/<host>/<path>`. Source files are named after their URL (`sources/<host>/<path>`)
//! when that is a plain path, else `sources/by-sha256/<hex>.<ext>`. Sources and images shared
//! by several rows are written once; two different images claiming one path is reported.
//! Every file is written under a temporary name; when the whole dataset was read, the images
//! are published, then the JSONL files that name them. Over an earlier export (`--force`) the
//! three JSONL files are rewritten whole, so none of its rows remain; its images that no new
//! row names are left where they were (their names follow no pattern of the export's own by
//! which they could be told from someone else's files, and nothing reads them).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::{ExportReport, OutDir, extension, image_bytes};
use editshard::error::{Error, Result};
use editshard::path::check_relative_path;
use editshard::record::{Image, Kind, Record};
use editshard_pico::layout::release_relative;
use editshard_pico::rows::{Subset, rebuild_row};

/// Top-level names of the layout itself: no image may be written under them.
const RESERVED: [&str; 2] = ["jsonl", "sources"];

pub fn export(
    records: impl Iterator<Item = Result<Record>>,
    out: &mut OutDir,
) -> Result<ExportReport> {
    let mut w = ReleaseWriter {
        claimed: HashMap::new(),
        spills: Vec::new(),
    };
    let written = w.write(records, out);
    // Every image was written under its temporary name: published once the whole dataset
    // was read, before the JSONL files that name them ([`OutDir::publish`], after this).
    let images = || w.claimed.keys().map(String::as_str);
    written
        .and_then(|report| out.publish_written(images()).map(|()| report))
        .inspect_err(|_| out.discard_written(images()))
}

struct ReleaseWriter {
    /// Every file written so far and the SHA-256 of its bytes.
    claimed: HashMap<String, [u8; 32]>,
    spills: Vec<Spill>,
}

impl ReleaseWriter {
    /// Writes every record's files and the three JSONL files, all under temporary names.
    fn write(
        &mut self,
        records: impl Iterator<Item = Result<Record>>,
        out: &mut OutDir,
    ) -> Result<ExportReport> {
        for s in Subset::ALL {
            self.spills.push(Spill::create(out, s)?);
        }
        let mut report = ExportReport::default();
        for (seq, record) in records.enumerate() {
            let record = record?;
            report.records += 1;
            if let Err(problem) = self.add(out, &record, seq as u64) {
                report.problems.push(problem);
            }
        }
        for spill in std::mem::take(&mut self.spills) {
            let name = spill.subset.file().to_string();
            let rows = spill.finish(out)?;
            report.written.push((name, rows));
        }
        Ok(report)
    }

    /// Writes one record's files and spills its row; an `Err` names the record and why it
    /// was left out (nothing of it is written then).
    fn add(
        &mut self,
        out: &mut OutDir,
        record: &Record,
        seq: u64,
    ) -> std::result::Result<(), String> {
        let id = &record.id;
        let subset = record
            .provenance
            .subset
            .as_deref()
            .and_then(Subset::from_name)
            .or(match record.kind {
                Kind::Sft => Some(Subset::Sft),
                Kind::Preference => Some(Subset::Preference),
                Kind::MultiTurn => Some(Subset::MultiTurn),
                Kind::Generic => None,
            })
            .ok_or_else(|| format!("{id}: a generic record has no place in the release layout"))?;
        let mut row = rebuild_row(record).ok_or_else(|| {
            format!(
                "{id}: not converted from a release (no editshard.release field), so its row \
                 cannot be rebuilt; export it with --format webdataset"
            )
        })?;
        // Decide every path first, so that a refused record writes nothing.
        let mut files: Vec<(String, &Image)> = Vec::new();
        for turn in &record.turns {
            for image in std::iter::once(&turn.output).chain(&turn.rejected) {
                let written = image
                    .path
                    .as_deref()
                    .or(image.url.as_deref())
                    .ok_or_else(|| format!("{id}: an edited image has neither a path nor a URL"))?;
                files.push((self.edited_path(written, image)?, image));
            }
        }
        let source = self.source_path(&record.source);
        files.push((source.clone(), &record.source));
        let mut mine: HashMap<&str, [u8; 32]> = HashMap::new();
        for (rel, image) in &files {
            let earlier = self.claimed.get(rel).or(mine.get(rel.as_str()));
            if let Some(sha) = earlier {
                if *sha != image.sha256 {
                    return Err(format!(
                        "{id}: {rel} was already written with different bytes (two records \
                         name one file for different images); this record is left out"
                    ));
                }
            }
            mine.insert(rel, image.sha256);
        }
        for (rel, image) in files {
            if self.claimed.contains_key(&rel) {
                continue;
            }
            let bytes = image_bytes(image, id)?;
            out.write_unpublished(&rel, bytes)
                .map_err(|e| format!("{id}: {e}"))?;
            self.claimed.insert(rel, image.sha256);
        }
        row.insert("local_input_image".into(), Value::String(source));
        let line = record.provenance.line.unwrap_or(u64::MAX);
        self.spills[subset.index() as usize]
            .push(&row, line, seq)
            .map_err(|e| format!("{id}: {e}"))
    }

    /// Where an edited image reference is written.
    fn edited_path(&self, written: &str, image: &Image) -> std::result::Result<String, String> {
        let rel = match release_relative(written) {
            Some(rel) => rel,
            None => url_path("external", written).unwrap_or_else(|| by_sha("external", image)),
        };
        let first = rel.split('/').next().unwrap_or("");
        if check_relative_path(&rel).is_err() || RESERVED.contains(&first) {
            return Err(format!(
                "image path {written:?} would leave the export directory or overwrite its own \
                 files: refused"
            ));
        }
        Ok(rel)
    }

    /// Where a source image is written: after its URL when that is a plain path not yet
    /// taken by other bytes, else by content.
    fn source_path(&self, image: &Image) -> String {
        image
            .url
            .as_deref()
            .and_then(|u| url_path("sources", u))
            .filter(|p| self.claimed.get(p).is_none_or(|sha| *sha == image.sha256))
            .unwrap_or_else(|| by_sha("sources", image))
    }
}

/// `TOP/<host>/<path>` for a plain http(s) URL whose parts are all safe file names.
fn url_path(top: &str, url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let plain = |c: char| c.is_ascii_alphanumeric() || "._-/".contains(c);
    if !rest.chars().all(plain) || rest.split('/').any(|c| c.len() > 200) {
        return None;
    }
    let rel = format!("{top}/{rest}");
    check_relative_path(&rel).ok()?;
    // A host alone is not a file name.
    (rel.matches('/').count() >= 2).then_some(rel)
}

fn by_sha(top: &str, image: &Image) -> String {
    format!(
        "{top}/by-sha256/{}.{}",
        image.sha256_hex(),
        extension(image)
    )
}

/// One JSONL file's rows in record order, then sorted into line order.
struct Spill {
    subset: Subset,
    path: PathBuf,
    file: BufWriter<File>,
    offset: u64,
    /// (line, record sequence, offset, length) per row.
    index: Vec<(u64, u64, u64, u32)>,
}

impl Spill {
    fn create(out: &mut OutDir, subset: Subset) -> Result<Spill> {
        let path = out.prepare(&format!("jsonl/.{}.rows.partial", subset.name()))?;
        // Read back at the end, hence read and write.
        out.track(&path);
        let file = editshard::atomic::create_new(&path)
            .map_err(|e| Error::from(e).in_shard(shown(&path)))?;
        Ok(Spill {
            subset,
            path,
            file: BufWriter::new(file),
            offset: 0,
            index: Vec::new(),
        })
    }

    fn push(&mut self, row: &Map<String, Value>, line: u64, seq: u64) -> Result<()> {
        let mut bytes = Vec::with_capacity(512);
        let mut ser = serde_json::Serializer::with_formatter(&mut bytes, PythonStyle);
        serde::Serialize::serialize(row, &mut ser).map_err(|e| Error::invalid(e.to_string()))?;
        bytes.push(b'\n');
        self.file
            .write_all(&bytes)
            .map_err(|e| Error::from(e).in_shard(shown(&self.path)))?;
        self.index
            .push((line, seq, self.offset, bytes.len() as u32));
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Writes `jsonl/<subset>.jsonl` in line order; returns the number of rows.
    fn finish(mut self, out: &mut OutDir) -> Result<u64> {
        let err = |p: &PathBuf| {
            let p = shown(p);
            move |e: std::io::Error| Error::from(e).in_shard(p.clone())
        };
        self.file.flush().map_err(err(&self.path))?;
        let spill = self
            .file
            .into_inner()
            .map_err(|e| Error::from(e.into_error()).in_shard(shown(&self.path)))?;
        self.index.sort_unstable();
        let path = out.prepare(self.subset.file())?;
        let partial = out.partial_of(&path);
        let mut dest =
            BufWriter::new(editshard::atomic::create_new(&partial).map_err(err(&partial))?);
        let mut buf = Vec::new();
        for &(_, _, offset, len) in &self.index {
            buf.resize(len as usize, 0);
            spill
                .read_exact_at(&mut buf, offset)
                .map_err(err(&self.path))?;
            dest.write_all(&buf).map_err(err(&partial))?;
        }
        dest.flush().map_err(err(&partial))?;
        drop(dest);
        drop(spill);
        let _ = fs::remove_file(&self.path);
        out.forget(&self.path);
        out.finish(partial, path);
        Ok(self.index.len() as u64)
    }
}

fn shown(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// JSON as Python's `json.dumps` writes it (the release's own style): `", "` between items
/// and `": "` after keys, on one line.
struct PythonStyle;

impl serde_json::ser::Formatter for PythonStyle {
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }
    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_paths_are_plain_or_refused() {
        assert_eq!(
            url_path("sources", "https://farm8.staticflickr.com/2915/1_o.jpg").as_deref(),
            Some("sources/farm8.staticflickr.com/2915/1_o.jpg")
        );
        for bad in [
            "https://h/../../etc/passwd",
            "https://h/a?x=1",
            "https://h:8080/a.jpg",
            "https://h",
            "ftp://h/a.jpg",
            "https://h//a.jpg",
        ] {
            assert_eq!(url_path("sources", bad), None, "{bad}");
        }
    }

    #[test]
    fn python_style_json() {
        let row: Map<String, Value> =
            serde_json::from_str(r#"{"b": [1, "x"], "a": {"k": null}}"#).unwrap();
        let mut bytes = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut bytes, PythonStyle);
        serde::Serialize::serialize(&row, &mut ser).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"b": [1, "x"], "a": {"k": null}}"#
        );
    }
}
