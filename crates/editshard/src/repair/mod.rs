//! [`repair`]: a new, valid dataset holding every intact record of a damaged one, and an
//! account of everything lost (`editshard repair`).
//!
//! Each shard goes through [`salvage`](crate::shard::salvage), which resynchronises on the
//! frame boundaries the shard's structure vouches for after damage (never on a frame found
//! inside another's span); the records it returns are written with a [`DatasetWriter`] (new
//! shards, new manifest, ids still unique). Every lost range is reported with its shard, byte
//! offsets and the ids of its records when the shard's index names them, to the caller as it
//! is found and in `repair-report.json` in the destination.
//!
//! The destination is locked for the run, as `convert`, `mix` and `mirror` lock theirs, and
//! marked as the repair's until it completes: a repair killed at any point is run again with
//! the same command, which removes what the killed one wrote and starts over ([`dest`]).
//!
//! The source is a local directory. Its manifest names the shards; when the manifest itself
//! is missing or unusable, the `*.esd` files under the directory (two levels deep, sorted)
//! are salvaged instead, and that is reported too.

mod dest;

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::atomic::write_atomically;
use crate::error::{Error, ErrorKind, Result};
use crate::format::Limits;
use crate::lock::DestLock;
use crate::manifest::{MANIFEST_NAME, Manifest};
use crate::shard::salvage::{Loss, salvage};
use crate::write::DatasetWriter;

/// The report file written into the destination.
pub const REPORT_NAME: &str = "repair-report.json";

pub use dest::MARKER_NAME;

/// One lost range of one shard.
#[derive(Debug, Clone)]
pub struct ShardLoss {
    /// The shard's path relative to the source dataset (or `manifest.json`).
    pub shard: String,
    pub loss: Loss,
}

impl std::fmt::Display for ShardLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = &self.loss;
        write!(
            f,
            "{}, bytes {}..{}: {}",
            self.shard, l.start, l.end, l.reason
        )?;
        if !l.records.is_empty() {
            let ids: Vec<String> = l
                .records
                .iter()
                .map(|r| match r.number {
                    Some(n) => format!("#{n} {:?}", r.id),
                    None => format!("{:?}", r.id),
                })
                .collect();
            write!(f, "; lost {}: {}", l.records.len(), ids.join(", "))?;
        } else if l.unknown_records {
            write!(
                f,
                "; the ids of records lost there are unknown (no usable index)"
            )?;
        }
        Ok(())
    }
}

/// What [`repair`] did.
#[derive(Debug, Clone, Default)]
pub struct RepairReport {
    /// Shards read.
    pub shards: usize,
    /// Records written to the new dataset.
    pub recovered: u64,
    /// Records the source manifest lists, when it was usable.
    pub listed: Option<u64>,
    /// Every lost range, in shard and file order.
    pub losses: Vec<ShardLoss>,
    /// The new dataset's manifest.
    pub manifest: Option<Manifest>,
}

impl RepairReport {
    /// True when the source was whole: nothing lost, nothing damaged.
    pub fn is_clean(&self) -> bool {
        self.losses.is_empty()
    }
    /// Records known lost by id.
    pub fn named_losses(&self) -> u64 {
        self.losses
            .iter()
            .map(|l| l.loss.records.len() as u64)
            .sum()
    }

    fn to_json(&self, source: &Path) -> serde_json::Value {
        let losses: Vec<serde_json::Value> = self
            .losses
            .iter()
            .map(|l| {
                serde_json::json!({
                    "shard": l.shard,
                    "start": l.loss.start,
                    "end": l.loss.end,
                    "reason": l.loss.reason,
                    "records": l.loss.records.iter()
                        .map(|r| serde_json::json!({"number": r.number, "id": r.id}))
                        .collect::<Vec<_>>(),
                    "unknown_records": l.loss.unknown_records,
                })
            })
            .collect();
        serde_json::json!({
            "source": source.display().to_string(),
            "shards": self.shards,
            "recovered": self.recovered,
            "listed": self.listed,
            "lost_named": self.named_losses(),
            "losses": losses,
        })
    }
}

/// Salvages the dataset in the local directory `source` into a new dataset at `dest` (a new
/// or empty directory, or one an interrupted repair left: nothing else there is overwritten),
/// calling `on_loss` for each lost range as it is found. Fails only when the source cannot be
/// listed or the destination cannot be written; damage goes into the report (and
/// `dest/repair-report.json`).
///
/// `dest` is locked for the run ([`DestLock`]): a second run into it (a `repair`, `convert`,
/// `mix` or `mirror`) is refused, naming this one. A destination an interrupted repair left
/// (marked by its [`MARKER_NAME`]) is taken over: what that run wrote is removed first.
pub fn repair(source: &Path, dest: &Path, on_loss: impl FnMut(&ShardLoss)) -> Result<RepairReport> {
    let command = format!("repair {} --out {}", source.display(), dest.display());
    let lock = DestLock::acquire_local(dest, &command)?;
    let result = repair_locked(source, dest, on_loss);
    lock.release_local_after(result)
}

fn repair_locked(
    source: &Path,
    dest: &Path,
    mut on_loss: impl FnMut(&ShardLoss),
) -> Result<RepairReport> {
    dest::prepare(dest)?;
    let mut report = RepairReport::default();
    let mut note = |report: &mut RepairReport, loss: ShardLoss| {
        on_loss(&loss);
        report.losses.push(loss);
    };
    let manifest_path = source.join(MANIFEST_NAME);
    let listed = std::fs::read(&manifest_path)
        .map_err(Error::from)
        .and_then(|bytes| Manifest::parse(&bytes));
    let (shards, licence): (Vec<(String, Option<u64>)>, Option<String>) = match listed {
        Ok(m) => {
            report.listed = Some(m.records);
            let shards = m
                .shards
                .iter()
                .map(|s| (s.path.clone(), Some(s.records)))
                .collect();
            (shards, m.licence)
        }
        Err(e) => {
            let found = find_shards(source)?;
            note(
                &mut report,
                ShardLoss {
                    shard: MANIFEST_NAME.to_string(),
                    loss: Loss {
                        start: 0,
                        end: 0,
                        reason: format!(
                            "the manifest is unusable ({e}); salvaging the {} .esd files \
                             found under the directory, in name order",
                            found.len()
                        ),
                        records: Vec::new(),
                        unknown_records: false,
                    },
                },
            );
            (found.into_iter().map(|p| (p, None)).collect(), None)
        }
    };

    let mut writer = DatasetWriter::create(dest)?.licence(licence);
    for (path, listed) in shards {
        report.shards += 1;
        let file = match File::open(source.join(&path)) {
            Ok(file) => file,
            Err(e) => {
                let count = listed.map_or(String::new(), |n| format!(" (its {n} records)"));
                note(
                    &mut report,
                    ShardLoss {
                        shard: path.clone(),
                        loss: Loss {
                            start: 0,
                            end: 0,
                            reason: format!(
                                "the shard cannot be opened: {e}; all of it{count} is lost"
                            ),
                            records: Vec::new(),
                            unknown_records: true,
                        },
                    },
                );
                continue;
            }
        };
        let mut refused: Vec<Loss> = Vec::new();
        let mut written = 0u64;
        let salvaged = salvage(&file, &path, &Limits::DEFAULT, |record| {
            match writer.append(&record) {
                Ok(()) => {
                    written += 1;
                    Ok(())
                }
                // A record the new dataset cannot hold (an id an earlier shard holds): lost,
                // and said so; the rest goes on.
                Err(e) if matches!(e.kind(), ErrorKind::Rejected(_)) => {
                    refused.push(Loss {
                        start: 0,
                        end: 0,
                        reason: format!("refused by the writer: {e}"),
                        records: vec![crate::shard::salvage::LostRecord {
                            number: None,
                            id: record.id.clone(),
                        }],
                        unknown_records: false,
                    });
                    Ok(())
                }
                Err(e) => Err(e),
            }
        });
        let salvaged = salvaged?;
        report.recovered += written;
        // Without the index the lost records have no names, but the manifest still says how
        // many the shard held.
        let named = salvaged.named_losses() + refused.len() as u64;
        let unaccounted = listed.map_or(0, |n| n.saturating_sub(written + named));
        let size = file.metadata().map_or(0, |m| m.len());
        let mut losses: Vec<Loss> = salvaged.losses.into_iter().chain(refused).collect();
        if unaccounted > 0 {
            losses.push(Loss {
                start: size,
                end: size,
                reason: format!(
                    "the manifest lists {} records for this shard; {written} were recovered \
                     and {named} are named above: {unaccounted} more are lost",
                    listed.unwrap_or(0)
                ),
                records: Vec::new(),
                unknown_records: true,
            });
        }
        for loss in losses {
            note(
                &mut report,
                ShardLoss {
                    shard: path.clone(),
                    loss,
                },
            );
        }
    }
    let manifest = writer.finish()?;
    report.manifest = Some(manifest);
    let json = serde_json::to_vec_pretty(&report.to_json(source))
        .map_err(|e| Error::bug(format!("the repair report does not serialize: {e}")))?;
    write_atomically(&dest.join(REPORT_NAME), &json)?;
    dest::finish(dest)?;
    Ok(report)
}

/// The `.esd` files under `dir` and its subdirectories (one level: split conversions keep
/// their shards in `part-*/`), relative, `/`-separated, sorted.
fn find_shards(dir: &Path) -> Result<Vec<String>> {
    let list = |d: &Path| -> Result<Vec<PathBuf>> {
        let shown = d.display().to_string();
        let mut out = Vec::new();
        for entry in std::fs::read_dir(d).map_err(|e| Error::from(e).in_shard(shown.clone()))? {
            out.push(
                entry
                    .map_err(|e| Error::from(e).in_shard(shown.clone()))?
                    .path(),
            );
        }
        Ok(out)
    };
    let mut found = Vec::new();
    for path in list(dir)? {
        if path.is_dir() {
            for inner in list(&path)? {
                found.push(inner);
            }
        } else {
            found.push(path);
        }
    }
    let mut rel: Vec<String> = found
        .into_iter()
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "esd"))
        .filter_map(|p| {
            p.strip_prefix(dir)
                .ok()
                .map(|r| r.to_string_lossy().replace('\\', "/"))
        })
        .collect();
    rel.sort();
    Ok(rel)
}
