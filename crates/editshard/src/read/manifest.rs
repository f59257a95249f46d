//! Loading `manifest.json` from a [`Location`]: the one place every reader, `mirror`,
//! `convert` and `merge` get a dataset's manifest from. The size is bounded before anything
//! is read into memory, and errors name the manifest's full location.

use bytes::Bytes;

use crate::error::Result;
use crate::manifest::{MANIFEST_NAME, MAX_MANIFEST_LEN, Manifest};
use crate::storage::Location;

/// Reads and validates the manifest at `loc`; returns it with its exact bytes (a mirror
/// copies them unchanged).
pub async fn load_manifest(loc: &Location) -> Result<(Manifest, Bytes)> {
    let shown = loc.display_of(MANIFEST_NAME);
    let bytes = loc
        .get_max(MANIFEST_NAME, MAX_MANIFEST_LEN)
        .await
        .map_err(|e| e.in_shard(shown.clone()))?;
    let manifest = Manifest::parse(&bytes).map_err(|e| e.in_shard(shown))?;
    Ok((manifest, bytes))
}

/// The manifest at `loc`, or `None` when there is none (an unfinished or empty location).
pub async fn find_manifest(loc: &Location) -> Result<Option<Manifest>> {
    match load_manifest(loc).await {
        Ok((manifest, _)) => Ok(Some(manifest)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}
