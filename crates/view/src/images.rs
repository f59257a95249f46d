//! One image of one record, fetched alone: the shard index (cached footer) gives its byte
//! range, so this is one ranged read, CRC-checked, with no metadata read.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use editshard::read::{Dataset, LoadedShard};
use editshard::{Error, Result};

/// Image `k` of a record, located through its shard's index (nothing fetched yet).
pub struct Located {
    shard: Arc<LoadedShard>,
    local: usize,
    k: usize,
    range: Range<u64>,
}

impl Located {
    /// The image's stored length, from the index (what fetching it holds in memory).
    pub fn len(&self) -> u64 {
        self.range.end - self.range.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One ranged read of the image, CRC-checked.
    pub async fn fetch(&self, ds: &Dataset) -> Result<Bytes> {
        let (shard, local) = (&self.shard, self.local);
        let start = self.range.start;
        let bytes = ds
            .location()
            .get_range(shard.path(), self.range.clone())
            .await
            .map_err(|e| e.at_record(local as u64))?;
        shard
            .view()
            .check_image(local, self.k, &bytes)
            .map_err(|e| {
                e.in_shard(shard.name())
                    .at_record(local as u64)
                    .at_offset(start)
            })?;
        Ok(bytes)
    }
}

/// Image `k` (canonical order, 0 is the source) of global record `index`, located.
pub async fn locate(ds: &Dataset, index: u64, k: usize) -> Result<Located> {
    let (s, local) = ds.locate(index).ok_or_else(|| {
        Error::invalid(format!(
            "record #{index} does not exist: the dataset has {} records",
            ds.len()
        ))
    })?;
    let shard = ds.shard(s).await?;
    let range = shard.view().image_range(local, k)?;
    Ok(Located {
        shard,
        local,
        k,
        range,
    })
}

/// Image `k` of global record `index`: one ranged read, CRC-checked.
pub async fn image_bytes(ds: &Dataset, index: u64, k: usize) -> Result<Bytes> {
    locate(ds, index, k).await?.fetch(ds).await
}

/// The media type to serve image bytes with: sniffed from the bytes (never the dataset's own
/// claim, which is untrusted), and only image types a browser renders safely.
pub fn served_media_type(bytes: &[u8]) -> &'static str {
    match editshard::image_info::probe(bytes) {
        Ok(info) => match info.media_type {
            "image/jpeg" => "image/jpeg",
            "image/png" => "image/png",
            "image/webp" => "image/webp",
            _ => "application/octet-stream",
        },
        Err(_) => "application/octet-stream",
    }
}

/// A file name for a download: the record's index and image position, with the extension of
/// the served type (nothing from the dataset reaches the header).
pub fn download_name(index: u64, k: usize, media_type: &str) -> String {
    let ext = match media_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        _ => "bin",
    };
    format!("record-{index}-image-{k}.{ext}")
}
