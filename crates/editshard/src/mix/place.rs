//! Placing one source shard in the mixture: kept when DEST already holds it intact (a
//! resumed run), else hard-linked (local to local, one file system) and hashed, else copied
//! through the mirror's checking stream, which publishes only bytes that match the source
//! manifest.

use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::manifest::ShardEntry;
use crate::mirror::shard::{
    AtDest, Expected, checked, hash_object, inspect, remove_stale_partials,
};
use crate::mirror::{Progress, Quiet};
use crate::storage::Location;

use super::MixOptions;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    Copied,
    Linked,
    Kept,
}

pub async fn place(
    src: &Location,
    src_rel: &str,
    dest: &Location,
    rel: &str,
    entry: &ShardEntry,
    opts: &MixOptions,
) -> Result<Placed> {
    let want = Expected::from(entry);
    let progress = Arc::new(Progress::new(Arc::new(Quiet)));
    match inspect(dest, rel, &want, &progress).await? {
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
        && let (Some(from), Some(to)) = (src.is_local(), dest.is_local())
        && link(
            &from.join(src_rel),
            &to.join(rel),
            dest,
            rel,
            &want,
            &progress,
        )
        .await?
    {
        return Ok(Placed::Linked);
    }
    remove_stale_partials(dest, rel);
    let stream = src.get_stream(src_rel).await?;
    let stream = checked(stream, want, src.display_of(src_rel), progress);
    dest.put_stream(rel, stream).await?;
    Ok(Placed::Copied)
}

/// Hard-links `from` at `to` (through a temporary name, renamed once its hash is checked).
/// `Ok(false)` when no link can be made (another file system, a file system without links):
/// the caller copies instead.
async fn link(
    from: &Path,
    to: &Path,
    dest: &Location,
    rel: &str,
    want: &Expected,
    progress: &Arc<Progress>,
) -> Result<bool> {
    // Only a regular file is linked: a link to a symbolic link would put that link in DEST.
    if !std::fs::symlink_metadata(from).is_ok_and(|m| m.file_type().is_file()) {
        return Ok(false);
    }
    let partial = crate::atomic::partial_path(to);
    let parent = to.parent().unwrap_or(to);
    let shown = to.display().to_string();
    std::fs::create_dir_all(parent).map_err(|e| Error::from(e).in_shard(shown.clone()))?;
    let _ = std::fs::remove_file(&partial);
    if std::fs::hard_link(from, &partial).is_err() {
        return Ok(false);
    }
    let partial_rel = format!("{rel}{}", crate::atomic::PARTIAL_SUFFIX);
    let (bytes, sha) = match hash_object(dest, &partial_rel, progress).await {
        Ok(h) => h,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    if bytes != want.bytes || sha != want.sha256 {
        let _ = std::fs::remove_file(&partial);
        return Err(Error::malformed(format!(
            "{}: {bytes} bytes with SHA-256 {sha}, where its manifest says {} bytes with \
             SHA-256 {}: the source is damaged (editshard verify names the damage); nothing \
             was placed",
            from.display(),
            want.bytes,
            want.sha256
        )));
    }
    std::fs::rename(&partial, to).map_err(|e| Error::from(e).in_shard(shown))?;
    Ok(true)
}
