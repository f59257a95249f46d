//! Loading `manifest.json` from a [`Location`]: the one place every reader, `mirror`,
//! `convert` and `merge` get a dataset's manifest from. The size is bounded before anything
//! is read into memory, and errors name the manifest's full location.

use bytes::Bytes;

use crate::error::Result;
use crate::manifest::{IdFilters, MANIFEST_NAME, MAX_MANIFEST_LEN, Manifest};
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

/// A reader's manifest: [`load_manifest`] without keeping the id filters
/// ([`Manifest::parse_deferring_filters`]); [`load_id_filters`] reads them when a lookup by
/// id needs them.
pub async fn load_manifest_deferring_filters(loc: &Location) -> Result<Manifest> {
    let shown = loc.display_of(MANIFEST_NAME);
    let bytes = loc
        .get_max(MANIFEST_NAME, MAX_MANIFEST_LEN)
        .await
        .map_err(|e| e.in_shard(shown.clone()))?;
    Manifest::parse_deferring_filters(&bytes).map_err(|e| e.in_shard(shown))
}

/// The id filters of `manifest`, read again from `loc`: refused when the manifest there is
/// no longer the one `manifest` was parsed from.
pub async fn load_id_filters(loc: &Location, manifest: &Manifest) -> Result<IdFilters> {
    let shown = loc.display_of(MANIFEST_NAME);
    let Some(digest) = &manifest.filters_in else {
        return Ok(IdFilters::new(
            manifest
                .shards
                .iter()
                .map(|s| s.id_filter.clone())
                .collect(),
        ));
    };
    let bytes = loc
        .get_max(MANIFEST_NAME, MAX_MANIFEST_LEN)
        .await
        .map_err(|e| e.in_shard(shown.clone()))?;
    IdFilters::from_manifest_bytes(digest, &bytes).map_err(|e| e.in_shard(shown))
}

/// The manifest at `loc`, or `None` when there is none (an unfinished or empty location).
pub async fn find_manifest(loc: &Location) -> Result<Option<Manifest>> {
    match load_manifest(loc).await {
        Ok((manifest, _)) => Ok(Some(manifest)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}
