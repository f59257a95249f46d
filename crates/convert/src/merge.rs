//! `editshard merge`: one dataset from the parts of a split conversion.
//!
//! `convert --part I/N --out DEST` writes part I as a complete dataset of its own under
//! `DEST/part-IIII-of-NNNN/` (shards, `manifest.json`, `failures.jsonl`). `merge DEST --parts N`
//! checks that all N parts are finished and come from the same conversion (same input and
//! options: the `convert.fingerprint` each part manifest carries), then writes
//! `DEST/manifest.json` listing every part's shards in part order (the shards are not moved
//! or copied) and `DEST/failures.jsonl` with every part's failures.
//!
//! What merging guarantees, compared with one unsplit conversion of the same input:
//! - exactly the same set of records, each with the same content (ids, metadata and image
//!   bytes), and the same totals per kind, edit type and category;
//! - a byte-identical `failures.jsonl` (collisions are decided over the whole input by every
//!   part; rows without a readable source are reported by part 0);
//! - every source's rows in one part, so an image shared by rows is stored once as before.
//!
//! What differs: record order (part by part) and therefore shard boundaries and shard bytes.
//! Each part on its own is deterministic, so re-running a part gives the same shards.

use bytes::Bytes;

use super::failures::{FAILURES_NAME, Failure, MAX_FAILURES_BYTES, to_jsonl};
use super::part_dir;
use editshard::error::{Error, Result};
use editshard::manifest::{MANIFEST_NAME, Manifest};
use editshard::read::find_manifest;
use editshard::storage::{Location, StorageOptions};

pub struct MergeReport {
    pub records: u64,
    pub shards: usize,
    pub failures: usize,
}

pub async fn merge(dest: &str, parts: u32, s3_endpoint: Option<String>) -> Result<MergeReport> {
    if parts == 0 {
        return Err(Error::invalid("--parts must be at least 1"));
    }
    let opts = StorageOptions {
        s3_endpoint,
        ..StorageOptions::default()
    };
    let root = Location::parse(dest, &opts)?;
    // One writer per destination, as for convert and mirror (a part still running holds its
    // own part directory's lock, not this one).
    let lock = editshard::lock::DestLock::acquire(&root, &format!("merge {dest}"), false).await?;
    let result = merge_locked(&root, parts).await;
    lock.release_after(result).await
}

async fn merge_locked(root: &Location, parts: u32) -> Result<MergeReport> {
    let root = root.clone();
    let existing = find_manifest(&root).await?;
    if existing.is_none()
        && let Some(dir) = root.is_local()
        && dir.join(FAILURES_NAME).exists()
    {
        return Err(Error::invalid(format!(
            "{} holds a {FAILURES_NAME} but no {MANIFEST_NAME}: it is not a merge's, and merge \
             would replace it; move it away",
            root.display()
        )));
    }
    if let Some(m) = existing {
        let merged = m
            .extra
            .get("convert")
            .and_then(|c| c.get("merged_parts"))
            .is_some();
        if !merged {
            return Err(Error::invalid(format!(
                "{} already holds a dataset that is not a merge of parts; refusing to \
                     replace its {MANIFEST_NAME}",
                root.display()
            )));
        }
    }
    let mut merged: Option<Manifest> = None;
    let mut fingerprint: Option<String> = None;
    let mut inputs: Option<serde_json::Value> = None;
    let mut failures: Vec<Failure> = Vec::new();
    for i in 0..parts {
        let dir = part_dir(i, parts);
        let part = root.child(&dir)?;
        let Some(m) = find_manifest(&part).await? else {
            return Err(Error::invalid(format!(
                "part {i} of {parts} is not finished ({} is missing): run the same \
                 `editshard convert ... --part {i}/{parts}` again (it resumes)",
                part.display_of(MANIFEST_NAME)
            )));
        };
        let info = m.extra.get("convert");
        let fp = info
            .and_then(|c| c.get("fingerprint"))
            .and_then(|v| v.as_str());
        let (p, n) = (
            info.and_then(|c| c.get("part")).and_then(|v| v.as_u64()),
            info.and_then(|c| c.get("parts")).and_then(|v| v.as_u64()),
        );
        if (p, n) != (Some(u64::from(i)), Some(u64::from(parts))) || fp.is_none() {
            return Err(Error::invalid(format!(
                "{} was not written by `convert --part {i}/{parts}`",
                part.display_of(MANIFEST_NAME)
            )));
        }
        match &fingerprint {
            None => {
                fingerprint = fp.map(str::to_string);
                inputs = info.and_then(|c| c.get("inputs")).cloned();
            }
            Some(f) if Some(f.as_str()) != fp => {
                return Err(Error::invalid(format!(
                    "part {i} comes from a different conversion than part 0 (other input or \
                     options): convert every part with the same command"
                )));
            }
            Some(_) => {}
        }
        let mut m = m;
        for s in &mut m.shards {
            s.path = format!("{dir}/{}", s.path);
        }
        match &mut merged {
            None => {
                let mut first = Manifest::new(m.licence.clone());
                first.absorb(&m);
                merged = Some(first);
            }
            Some(all) => all.absorb(&m),
        }
        let f = part
            .get_max(FAILURES_NAME, MAX_FAILURES_BYTES as u64)
            .await?;
        for line in f.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            failures.push(serde_json::from_slice(line).map_err(|e| {
                Error::malformed(format!("{}: {e}", part.display_of(FAILURES_NAME)))
            })?);
        }
    }
    let mut merged = merged.expect("at least one part");
    let mut info = serde_json::Map::new();
    info.insert("fingerprint".into(), fingerprint.unwrap_or_default().into());
    if let Some(inputs) = inputs {
        info.insert("inputs".into(), inputs);
    }
    info.insert("merged_parts".into(), parts.into());
    merged.extra.insert("convert".into(), info.into());
    merged.validate()?;
    root.put(FAILURES_NAME, Bytes::from(to_jsonl(&mut failures)))
        .await?;
    root.put(MANIFEST_NAME, Bytes::from(merged.to_json()?))
        .await?;
    Ok(MergeReport {
        records: merged.records,
        shards: merged.shards.len(),
        failures: failures.len(),
    })
}
