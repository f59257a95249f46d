//! The state every request shares: the open dataset, the thumbnail cache, the sampled
//! statistics of the last few seeds asked for, and the host names the app answers to.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use editshard::read::Dataset;

use crate::hosts::AllowedHosts;
use crate::images::image_bytes;
use crate::stats::{Sampled, sample};
use crate::thumbs::{ThumbCache, make_thumb};

/// Thumbnails kept in memory (bytes).
pub const THUMB_CACHE_BYTES: usize = 64 << 20;
/// Statistics samples kept (one per sample size and seed asked for; the least recently used
/// go). Each is about a kilobyte; the bound is on their number, since any URL makes one.
pub const SAMPLE_CACHE_ENTRIES: usize = 64;

/// How the app is set up beyond its dataset.
#[derive(Debug, Clone, Default)]
pub struct ViewOptions {
    /// Host names the app answers to besides the loopback names and the address it is bound
    /// to ([`crate::hosts`]).
    pub allow_hosts: Vec<String>,
}

/// What every request shares.
pub struct App {
    pub ds: Dataset,
    /// The dataset as the user named it (shown in every page's header).
    pub name: String,
    pub thumbs: ThumbCache,
    /// The `Host` names requests may carry.
    pub hosts: AllowedHosts,
    samples: SampleCache,
}

impl App {
    /// The app with the default options, answering to the loopback names.
    pub fn new(ds: Dataset, name: impl Into<String>) -> Arc<App> {
        App::with_options(
            ds,
            name,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            &ViewOptions::default(),
        )
    }

    /// The app of a server bound to `bound`.
    pub fn with_options(
        ds: Dataset,
        name: impl Into<String>,
        bound: IpAddr,
        options: &ViewOptions,
    ) -> Arc<App> {
        let mut hosts = AllowedHosts::for_address(bound);
        for h in &options.allow_hosts {
            hosts.allow(h);
        }
        Arc::new(App {
            ds,
            name: name.into(),
            thumbs: ThumbCache::new(THUMB_CACHE_BYTES),
            hosts,
            samples: SampleCache::default(),
        })
    }

    /// The statistics sample of `n` records, computed once per (n, seed) while it stays
    /// among the [`SAMPLE_CACHE_ENTRIES`] most recently asked for.
    pub async fn sampled(&self, n: u64, seed: u64) -> Arc<Sampled> {
        let key = (n, seed);
        if let Some(s) = self.samples.get(key) {
            return s;
        }
        let s = Arc::new(sample(&self.ds, n, seed).await);
        self.samples.insert(key, s.clone());
        s
    }

    /// Statistics samples held now.
    pub fn samples_cached(&self) -> usize {
        self.samples.len()
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

/// A sample's size and seed.
type SampleKey = (u64, u64);

/// The most recently used statistics samples, at most [`SAMPLE_CACHE_ENTRIES`].
#[derive(Default)]
struct SampleCache {
    /// Most recently used last; a few dozen entries, so a scan is cheap.
    entries: Mutex<VecDeque<(SampleKey, Arc<Sampled>)>>,
}

impl SampleCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(SampleKey, Arc<Sampled>)>> {
        // Every step under the lock leaves the list whole: a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, key: SampleKey) -> Option<Arc<Sampled>> {
        let mut e = self.lock();
        let at = e.iter().position(|(k, _)| *k == key)?;
        let entry = e.remove(at)?;
        let s = entry.1.clone();
        e.push_back(entry);
        Some(s)
    }

    fn insert(&self, key: SampleKey, s: Arc<Sampled>) {
        let mut e = self.lock();
        e.retain(|(k, _)| *k != key);
        e.push_back((key, s));
        while e.len() > SAMPLE_CACHE_ENTRIES {
            e.pop_front();
        }
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_cache_keeps_the_most_recently_used() {
        let cache = SampleCache::default();
        for seed in 0..(SAMPLE_CACHE_ENTRIES as u64 + 10) {
            cache.insert((1, seed), Arc::new(Sampled::default()));
            // Seed 0 is used again each time: it stays.
            assert!(cache.get((1, 0)).is_some(), "seed {seed}");
        }
        assert_eq!(cache.len(), SAMPLE_CACHE_ENTRIES);
        assert!(cache.get((1, 1)).is_none(), "the least recently used went");
        assert!(cache.get((1, SAMPLE_CACHE_ENTRIES as u64 + 9)).is_some());
    }
}
