//! The state every request shares: the open dataset, the thumbnail cache and the sampled
//! statistics, each computed once and kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use editshard::read::Dataset;

use crate::images::image_bytes;
use crate::stats::{Sampled, sample};
use crate::thumbs::{ThumbCache, make_thumb};

/// Thumbnails kept in memory (bytes).
pub const THUMB_CACHE_BYTES: usize = 64 << 20;

/// What every request shares.
pub struct App {
    pub ds: Dataset,
    /// The dataset as the user named it (shown in every page's header).
    pub name: String,
    pub thumbs: ThumbCache,
    samples: Mutex<HashMap<(u64, u64), Arc<Sampled>>>,
}

impl App {
    pub fn new(ds: Dataset, name: impl Into<String>) -> Arc<App> {
        Arc::new(App {
            ds,
            name: name.into(),
            thumbs: ThumbCache::new(THUMB_CACHE_BYTES),
            samples: Mutex::new(HashMap::new()),
        })
    }

    /// The statistics sample of `n` records, computed once per (n, seed).
    pub async fn sampled(&self, n: u64, seed: u64) -> Arc<Sampled> {
        let key = (n, seed);
        if let Some(s) = self
            .samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return s.clone();
        }
        let s = Arc::new(sample(&self.ds, n, seed).await);
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, s.clone());
        s
    }

    /// The thumbnail of image `k` of record `index`: from the cache, or one ranged read and a
    /// decode (off the async workers).
    pub async fn thumb(&self, index: u64, k: usize) -> Result<bytes::Bytes, String> {
        if let Some(t) = self.thumbs.get((index, k)) {
            return Ok(t);
        }
        let bytes = image_bytes(&self.ds, index, k)
            .await
            .map_err(|e| format!("{e} (hint: {})", e.hint()))?;
        let thumb = tokio::task::spawn_blocking(move || make_thumb(&bytes))
            .await
            .map_err(|e| format!("making the thumbnail failed: {e}"))??;
        self.thumbs.insert((index, k), thumb.clone());
        Ok(thumb)
    }
}
