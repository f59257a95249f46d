//! WebDataset tar shards: `shard-NNNNN.tar`, one per dataset shard, in record order.
//!
//! Each record is one sample: consecutive tar members sharing a key, the part after the
//! key's first dot saying what the member is:
//!
//! | member | what |
//! |---|---|
//! | `KEY.json` | the record's metadata (as `editshard cat` prints it: id, kind, instructions, edit types, image sizes and hashes, provenance, extras) |
//! | `KEY.src.jpg` | the source image (extension from its media type) |
//! | `KEY.edit.png` | single-turn records: the edited (chosen) image |
//! | `KEY.rejected1.png`, ... | preference records: the rejected edits |
//! | `KEY.turn1.png`, ... | multi-turn records: one per turn, the last is the final image |
//!
//! The key is the record's global position in the dataset, zero-padded to 9 digits
//! (`000001234`): record ids contain `/` and `.`, which WebDataset readers would split on,
//! and could be long or hostile, so they stay in `KEY.json` instead. Members carry fixed
//! metadata (mode 0644, mtime 0, uid/gid 0), so the tars are byte-identical across runs.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use bytes::Bytes;

use super::out_dir::is_file_number;
use super::{ExportReport, OutDir, extension};
use editshard::atomic::PARTIAL_SUFFIX;
use editshard::error::{Error, Result};
use editshard::manifest::Manifest;
use editshard::record::{Kind, Record};

/// The members of one record: name suffix (after `KEY.`) and bytes.
pub fn members(record: &Record) -> std::result::Result<Vec<(String, Bytes)>, String> {
    let id = &record.id;
    let mut out = Vec::new();
    let json = serde_json::to_vec(&record.to_json()).map_err(|e| format!("{id}: {e}"))?;
    out.push(("json".to_string(), Bytes::from(json)));
    let src = &record.source;
    out.push((format!("src.{}", extension(src)), image_data(src, id)?));
    let multi = record.kind == Kind::MultiTurn || record.turns.len() > 1;
    for (t, turn) in record.turns.iter().enumerate() {
        let stem = if multi {
            format!("turn{}", t + 1)
        } else {
            "edit".to_string()
        };
        let o = &turn.output;
        out.push((format!("{stem}.{}", extension(o)), image_data(o, id)?));
        for (k, r) in turn.rejected.iter().enumerate() {
            let name = if multi {
                format!("{stem}.rejected{}.{}", k + 1, extension(r))
            } else {
                format!("rejected{}.{}", k + 1, extension(r))
            };
            out.push((name, image_data(r, id)?));
        }
    }
    Ok(out)
}

fn image_data(image: &editshard::record::Image, id: &str) -> std::result::Result<Bytes, String> {
    image
        .data
        .clone()
        .ok_or_else(|| format!("{id}: an image's bytes were not read"))
}

pub fn key(global: u64) -> String {
    format!("{global:09}")
}

struct OpenTar {
    builder: tar::Builder<BufWriter<File>>,
    partial: PathBuf,
    path: PathBuf,
    name: String,
    samples: u64,
}

pub fn export(
    records: impl Iterator<Item = Result<Record>>,
    manifest: &Manifest,
    out: &mut OutDir,
) -> Result<ExportReport> {
    let mut report = ExportReport::default();
    let mut records = records;
    let mut global = 0u64;
    out.replaces("", is_tar_name)?;
    for (s, shard) in manifest.shards.iter().enumerate() {
        let mut tar = open(out, s)?;
        for _ in 0..shard.records {
            let Some(record) = records.next() else {
                return Err(Error::truncated(format!(
                    "the dataset ended before the {} records its manifest lists",
                    manifest.records
                )));
            };
            let record = record?;
            report.records += 1;
            match members(&record) {
                Ok(members) => {
                    let key = key(global);
                    for (suffix, bytes) in members {
                        append(&mut tar, &format!("{key}.{suffix}"), &bytes)?;
                    }
                    tar.samples += 1;
                }
                Err(problem) => report.problems.push(problem),
            }
            global += 1;
        }
        report.written.push((tar.name.clone(), tar.samples));
        close(out, tar)?;
    }
    // Read on to the end of the stream, which checks the last shard's index and trailer and
    // that each shard held exactly the records its manifest entry lists: stopping at the
    // count would drop a record beyond a lying count and accept a shard cut short.
    match records.next() {
        None => Ok(report),
        Some(Err(e)) => Err(e),
        Some(Ok(extra)) => Err(Error::malformed(format!(
            "the dataset holds more records than the {} its manifest lists (record {:?})",
            manifest.records, extra.id
        ))
        .with_id(extra.id)),
    }
}

/// A tar as this export names them, `shard-NNNNN.tar`, or its temporary name: an earlier
/// export's when this one does not write it again.
fn is_tar_name(name: &str) -> bool {
    let name = name.strip_suffix(PARTIAL_SUFFIX).unwrap_or(name);
    name.strip_prefix("shard-")
        .and_then(|n| n.strip_suffix(".tar"))
        .is_some_and(is_file_number)
}

fn open(out: &mut OutDir, s: usize) -> Result<OpenTar> {
    let name = format!("shard-{s:05}.tar");
    let path = out.prepare(&name)?;
    let partial = out.partial_of(&path);
    let file = editshard::atomic::create_new(&partial)
        .map_err(|e| Error::from(e).in_shard(partial.display().to_string()))?;
    let mut builder = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
    builder.mode(tar::HeaderMode::Deterministic);
    Ok(OpenTar {
        builder,
        partial,
        path,
        name,
        samples: 0,
    })
}

fn append(tar: &mut OpenTar, name: &str, bytes: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.builder
        .append_data(&mut header, name, bytes)
        .map_err(|e| Error::from(e).in_shard(tar.partial.display().to_string()))
}

fn close(out: &mut OutDir, tar: OpenTar) -> Result<()> {
    let shown = tar.partial.display().to_string();
    let mut w = tar
        .builder
        .into_inner()
        .map_err(|e| Error::from(e).in_shard(shown.clone()))?;
    w.flush()
        .map_err(|e| Error::from(e).in_shard(shown.clone()))?;
    drop(w);
    // Published with the rest once the whole dataset was read: the stream verifies a shard
    // (its index, trailer and record count) only after its last record, when this tar is
    // already written.
    out.finish(tar.partial, tar.path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use editshard::record::{Image, Turn};

    fn img(b: &'static [u8], mt: &str) -> Image {
        Image::with_info(bytes::Bytes::from_static(b), mt.into(), 1, 1)
    }

    #[test]
    fn member_names_follow_the_convention() {
        let mut turn = Turn::new(img(b"e", "image/png"));
        turn.rejected = vec![img(b"r1", "image/png"), img(b"r2", "image/webp")];
        let r = Record::new(
            "preference/a/../b.png",
            Kind::Preference,
            img(b"s", "image/jpeg"),
            vec![turn],
        );
        let names: Vec<String> = members(&r).unwrap().into_iter().map(|m| m.0).collect();
        assert_eq!(
            names,
            [
                "json",
                "src.jpg",
                "edit.png",
                "rejected1.png",
                "rejected2.webp"
            ]
        );
        let turns = (0..2).map(|_| Turn::new(img(b"t", "image/png"))).collect();
        let r = Record::new("m", Kind::MultiTurn, img(b"s", "image/jpeg"), turns);
        let names: Vec<String> = members(&r).unwrap().into_iter().map(|m| m.0).collect();
        assert_eq!(names, ["json", "src.jpg", "turn1.png", "turn2.png"]);
        assert_eq!(key(12), "000000012");
    }

    #[test]
    fn earlier_tars_are_told_by_their_names() {
        for own in [
            "shard-00000.tar",
            "shard-123456.tar",
            "shard-00007.tar.partial",
        ] {
            assert!(is_tar_name(own), "{own}");
        }
        for other in [
            "shard-0001.tar",
            "shard-x.tar",
            "shard-00001.tar.gz",
            "shard-00001.tar.partial.partial",
            "my-shard-00001.tar",
            "notes.txt",
        ] {
            assert!(!is_tar_name(other), "{other}");
        }
    }
}
