//! `failures.jsonl` written in bounded memory, however many rows failed.
//!
//! A conversion records each failure in its work directory as it happens (in the order rows
//! are converted); the published file lists them by subset and line ([`Failure::sort_key`]),
//! as [`to_jsonl`](crate::failures::to_jsonl) would. Here the recorded failures are sorted
//! in runs of at most [`RUN_BYTES`] (each spilled to a file of its own when another follows),
//! then merged with the driver's planned failures (already sorted) into the output file. Equal
//! keys keep their order: planned first, then as recorded (a stable sort of the two in turn).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Lines, Write};
use std::path::{Path, PathBuf};

use crate::failures::{Failure, Tally};
use editshard::error::{Error, Result};

/// Serialized failures sorted in memory at once, at most.
const RUN_BYTES: usize = 16 << 20;

type Key = (u8, u64);

/// Writes `planned` (sorted) and `recorded` (in any order) to `out`, sorted, using `spill`
/// (created if missing, emptied after) for runs that do not fit in memory together.
pub fn write_sorted(
    planned: &[Failure],
    recorded: impl Iterator<Item = Result<Failure>>,
    spill: &Path,
    out: &Path,
) -> Result<Tally> {
    let shown = |p: &Path| p.display().to_string();
    let mut tally = Tally::default();
    planned.iter().for_each(|f| tally.add(f));
    let mut runs: Vec<PathBuf> = Vec::new();
    let mut run: Vec<(Key, Vec<u8>)> = Vec::new();
    let mut run_bytes = 0usize;
    for f in recorded {
        let f = f?;
        tally.add(&f);
        let line = line_of(&f);
        run_bytes += line.len() + 32;
        run.push((f.sort_key(), line));
        if run_bytes >= RUN_BYTES {
            fs::create_dir_all(spill).map_err(|e| Error::from(e).in_shard(shown(spill)))?;
            let path = spill.join(format!("run-{:05}.jsonl", runs.len()));
            write_run(&mut run, &path)?;
            runs.push(path);
            run_bytes = 0;
        }
    }
    run.sort_by_key(|(k, _)| *k);

    let mut sources: Vec<Source> = Vec::with_capacity(runs.len() + 2);
    sources.push(Source::Memory(
        planned.iter().map(|f| (f.sort_key(), line_of(f))).collect(),
    ));
    for path in &runs {
        let file = File::open(path).map_err(|e| Error::from(e).in_shard(shown(path)))?;
        sources.push(Source::File(BufReader::new(file).lines(), path.clone()));
    }
    sources.push(Source::Memory(run.into_iter().collect()));

    let file = File::create(out).map_err(|e| Error::from(e).in_shard(shown(out)))?;
    let mut w = BufWriter::new(file);
    let mut heads: Vec<Option<Vec<u8>>> = vec![None; sources.len()];
    let mut heap = BinaryHeap::new();
    for (i, s) in sources.iter_mut().enumerate() {
        if let Some((k, line)) = s.next()? {
            heads[i] = Some(line);
            heap.push(Reverse((k, i)));
        }
    }
    while let Some(Reverse((_, i))) = heap.pop() {
        let line = heads[i].take().expect("a head for each entry");
        w.write_all(&line)
            .map_err(|e| Error::from(e).in_shard(shown(out)))?;
        if let Some((k, next)) = sources[i].next()? {
            heads[i] = Some(next);
            heap.push(Reverse((k, i)));
        }
    }
    let file = w
        .into_inner()
        .map_err(|e| Error::from(e.into_error()).in_shard(shown(out)))?;
    file.sync_all()
        .map_err(|e| Error::from(e).in_shard(shown(out)))?;
    drop(sources);
    if !runs.is_empty() {
        let _ = fs::remove_dir_all(spill);
    }
    Ok(tally)
}

/// One failure as a line of `failures.jsonl`.
fn line_of(f: &Failure) -> Vec<u8> {
    let mut line = serde_json::to_vec(f).expect("a failure always serializes");
    line.push(b'\n');
    line
}

/// Sorts `run` (stably) and writes it to `path`, emptying it.
fn write_run(run: &mut Vec<(Key, Vec<u8>)>, path: &Path) -> Result<()> {
    run.sort_by_key(|(k, _)| *k);
    let context = |e: std::io::Error| Error::from(e).in_shard(path.display().to_string());
    let mut w = BufWriter::new(File::create(path).map_err(context)?);
    for (_, line) in run.drain(..) {
        w.write_all(&line).map_err(context)?;
    }
    w.flush().map_err(context)
}

/// A sorted sequence of failure lines.
enum Source {
    Memory(std::collections::VecDeque<(Key, Vec<u8>)>),
    File(Lines<BufReader<File>>, PathBuf),
}

impl Source {
    fn next(&mut self) -> Result<Option<(Key, Vec<u8>)>> {
        match self {
            Source::Memory(q) => Ok(q.pop_front()),
            Source::File(lines, path) => {
                let Some(line) = lines.next() else {
                    return Ok(None);
                };
                let context = |e: String| {
                    Error::malformed(format!("{}: {e}", path.display()))
                        .in_shard(path.display().to_string())
                };
                let line = line.map_err(|e| context(e.to_string()))?;
                let f: Failure = serde_json::from_str(&line).map_err(|e| context(e.to_string()))?;
                let mut bytes = line.into_bytes();
                bytes.push(b'\n');
                Ok(Some((f.sort_key(), bytes)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failures::to_jsonl;
    use editshard_pico::rows::Subset;

    fn failure(subset: Subset, line: u64, detail: &str) -> Failure {
        Failure::new(subset, line, "missing-file", detail)
    }

    /// Whatever the runs, the file is what sorting everything in memory writes.
    #[test]
    fn spilled_runs_merge_into_the_in_memory_order() {
        let t = tempfile::tempdir().unwrap();
        let planned = vec![
            failure(Subset::Sft, 3, "planned"),
            failure(Subset::Preference, 1, "planned"),
        ];
        // Enough to spill several runs; equal keys with different details keep their order.
        let pad = "x".repeat(4000);
        let recorded: Vec<Failure> = (0..12_000u64)
            .map(|i| {
                let subset = [Subset::Sft, Subset::Preference, Subset::MultiTurn][i as usize % 3];
                failure(subset, (i * 7919) % 5000, &format!("{i} {pad}"))
            })
            .collect();
        let out = t.path().join("failures.jsonl");
        let spill = t.path().join("spill");
        let tally =
            write_sorted(&planned, recorded.clone().into_iter().map(Ok), &spill, &out).unwrap();
        let mut all = planned.clone();
        all.extend(recorded);
        assert_eq!(fs::read(&out).unwrap(), to_jsonl(&mut all));
        assert_eq!(tally.lines, 12_002);
        assert_eq!(tally.by_reason["missing-file"], 12_002);
        assert!(!spill.exists(), "the runs are removed");
    }
}
