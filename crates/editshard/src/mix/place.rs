//! Placing one source shard in the mixture: kept when DEST already holds it intact (a
//! resumed run), else hard-linked (local to local, one file system) and hashed, else copied
//! through the mirror's checking stream, which publishes only bytes that match the source
//! manifest.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::manifest::ShardEntry;
use crate::mirror::shard::{
    AtDest, Expected, checked, hash_object, inspect, remove_stale_partials,
};
use crate::mirror::{Progress, Quiet};
use crate::safe_dir::{self, SafeDir};
use crate::storage::Location;

use super::MixOptions;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    Copied,
    Linked,
    Kept,
}

async fn place_with(
    src: &Location,
    src_rel: &str,
    dest: &Location,
    rel: &str,
    entry: &ShardEntry,
    opts: &MixOptions,
    progress: &Arc<Progress>,
) -> Result<Placed> {
    let want = Expected::from(entry);
    // Locally, the shard's directory is made (or found) as a real directory inside DEST, and
    // a link at the shard's own name is refused: read through, a link to a copy of the shard
    // elsewhere would pass as placed.
    let local_dir = match dest.is_local() {
        Some(root) => Some(local_parent(root, rel).await?),
        None => None,
    };
    match inspect(dest, rel, &want, progress).await? {
        AtDest::Intact => return Ok(Placed::Kept),
        AtDest::Missing => {}
        differs => {
            return Err(Error::invalid(format!(
                "{} is already there but {}: it is not the shard {} names; move it away \
                 and run the same mix again",
                dest.display_of(rel),
                differs.describe(&want),
                src.display_of(src_rel)
            )));
        }
    }
    if !opts.copy_only
        && let (Some(from), Some(dir)) = (src.is_local(), local_dir)
        && link(&from.join(src_rel), dir, dest, rel, &want, progress).await?
    {
        return Ok(Placed::Linked);
    }
    remove_stale_partials(dest, rel);
    let stream = src.get_stream(src_rel).await?;
    let stream = checked(stream, want, src.display_of(src_rel), rel, progress.clone());
    dest.put_stream(rel, stream).await?;
    Ok(Placed::Copied)
}

/// Places the shard (kept, linked or copied: [`place_with`]), and returns its CRC-64/NVME
/// when its bytes were hashed on the way (kept after a read, linked, or copied): what an
/// entry without `crc64nvme` gains in the mixture.
pub async fn place_learning(
    src: &Location,
    src_rel: &str,
    dest: &Location,
    rel: &str,
    entry: &ShardEntry,
    opts: &MixOptions,
) -> Result<(Placed, Option<u64>)> {
    let progress = Arc::new(Progress::new(Arc::new(Quiet)));
    let placed = place_with(src, src_rel, dest, rel, entry, opts, &progress).await?;
    Ok((placed, progress.learned().get(rel).copied()))
}

/// The directory of `rel` inside the local DEST `root`, made or entered without following a
/// link; refused when `rel` itself is a link.
async fn local_parent(root: &Path, rel: &str) -> Result<Arc<SafeDir>> {
    let (dir, _) = safe_dir::split(rel);
    let (root_owned, dir) = (root.to_path_buf(), PathBuf::from(dir));
    let parent = tokio::task::spawn_blocking(move || SafeDir::create_inside(&root_owned, &dir))
        .await
        .map_err(|e| Error::bug(format!("making a directory failed: {e}")))??;
    let path = root.join(rel);
    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(Error::invalid(format!(
            "{} is a symbolic link: refused (a mixture's shards are files it places itself); \
             remove the link and run the same mix again",
            path.display()
        )));
    }
    Ok(Arc::new(parent))
}

/// Hard-links `from` in `dir` at the name of `rel` (through a temporary name, renamed once
/// its hash is checked). `Ok(false)` when no link can be made (another file system, a file
/// system without links): the caller copies instead.
async fn link(
    from: &Path,
    dir: Arc<SafeDir>,
    dest: &Location,
    rel: &str,
    want: &Expected,
    progress: &Arc<Progress>,
) -> Result<bool> {
    // Only a regular file is linked: a link to a symbolic link would put that link in DEST.
    if !std::fs::symlink_metadata(from).is_ok_and(|m| m.file_type().is_file()) {
        return Ok(false);
    }
    let name = OsString::from(safe_dir::split(rel).1);
    let mut partial = name.clone();
    partial.push(crate::atomic::PARTIAL_SUFFIX);
    let shown = dest.display_of(rel);
    let _ = dir.remove_file(&partial);
    if dir.hard_link(from, &partial).is_err() {
        return Ok(false);
    }
    let partial_rel = format!("{rel}{}", crate::atomic::PARTIAL_SUFFIX);
    let hashed = match hash_object(dest, &partial_rel, progress).await {
        Ok(h) => h,
        Err(e) => {
            let _ = dir.remove_file(&partial);
            return Err(e);
        }
    };
    if !hashed.matches(want) {
        let (bytes, sha) = (hashed.bytes, hashed.sha256);
        let _ = dir.remove_file(&partial);
        return Err(Error::malformed(format!(
            "{}: {bytes} bytes with SHA-256 {sha}, where its manifest says {} bytes with \
             SHA-256 {}: the source is damaged (editshard verify names the damage); nothing \
             was placed",
            from.display(),
            want.bytes,
            want.sha256
        )));
    }
    dir.rename(&partial, &name)
        .map_err(|e| Error::from(e).in_shard(shown))?;
    dir.sync();
    progress.learn(rel, hashed.crc64nvme);
    Ok(true)
}
