//! The state every request shares: the open dataset, the thumbnail cache, the sampled
//! statistics of the last few seeds asked for, the memory image requests may hold, and the
//! host names the app answers to.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use editshard::read::Dataset;

use crate::budget::{DecodeSlots, Held, ImageMemory, Refused, deadline};
use crate::hosts::AllowedHosts;
use crate::images::locate;
use crate::stats::{Sampled, sample};
use crate::thumbs::{ThumbCache, input_memory, make_thumb, probe};

/// Thumbnails kept in memory (bytes).
pub const THUMB_CACHE_BYTES: usize = 64 << 20;
/// Statistics samples kept (one per sample size and seed asked for; the least recently used
/// go). Each is about a kilobyte; the bound is on their number, since any URL makes one.
pub const SAMPLE_CACHE_ENTRIES: usize = 64;

/// How the app is set up beyond its dataset.
#[derive(Debug, Clone)]
pub struct ViewOptions {
    /// Memory image requests may hold at once ([`crate::budget`]).
    pub image_memory: u64,
    /// Host names the app answers to besides the loopback names and the address it is bound
    /// to ([`crate::hosts`]).
    pub allow_hosts: Vec<String>,
}

impl Default for ViewOptions {
    fn default() -> Self {
        ViewOptions {
            image_memory: crate::budget::DEFAULT_IMAGE_MEMORY,
            allow_hosts: Vec::new(),
        }
    }
}

/// What every request shares.
pub struct App {
    pub ds: Dataset,
    /// The dataset as the user named it (shown in every page's header).
    pub name: String,
    pub thumbs: ThumbCache,
    /// Image bytes and decodes in flight, shared by all requests.
    pub image_memory: Arc<ImageMemory>,
    decode_slots: DecodeSlots,
    /// The `Host` names requests may carry.
    pub hosts: AllowedHosts,
    samples: SampleCache,
}

/// Why a thumbnail could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThumbError {
    /// The server's image memory is in use: try again (503).
    Busy(String),
    /// This image cannot be shown as a thumbnail (422).
    Failed(String),
}

impl ThumbError {
    pub fn message(&self) -> &str {
        match self {
            ThumbError::Busy(m) | ThumbError::Failed(m) => m,
        }
    }
}

fn refused(r: Refused, what: &str) -> ThumbError {
    match r {
        Refused::Busy => ThumbError::Busy(r.message(what)),
        Refused::TooLarge { .. } => ThumbError::Failed(r.message(what)),
    }
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
            image_memory: ImageMemory::new(options.image_memory),
            decode_slots: DecodeSlots::per_core(),
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

    /// The stored bytes of image `k` of record `index`, with the image memory they take held
    /// until the returned [`Held`] is dropped (when the response is sent).
    pub async fn image(&self, index: u64, k: usize) -> Result<(Bytes, Held), ImageFailure> {
        let located = locate(&self.ds, index, k)
            .await
            .map_err(ImageFailure::Dataset)?;
        let held = self
            .image_memory
            .reserve(located.len(), deadline())
            .await
            .map_err(|r| ImageFailure::Refused(refused(r, &format!("image {k} of #{index}"))))?;
        let bytes = located
            .fetch(&self.ds)
            .await
            .map_err(ImageFailure::Dataset)?;
        Ok((bytes, held))
    }

    /// The thumbnail of image `k` of record `index`: from the cache, or one ranged read and a
    /// decode (off the async workers), in one of the decode slots. The image's bytes and its
    /// decode are held within the image memory: the bytes before they are fetched, the decode
    /// (estimated from the image's header) before it starts.
    pub async fn thumb(&self, index: u64, k: usize) -> Result<Bytes, ThumbError> {
        if let Some(t) = self.thumbs.get((index, k)) {
            return Ok(t);
        }
        let what = format!("the thumbnail of image {k} of #{index}");
        let hinted = |e: editshard::Error| ThumbError::Failed(format!("{e} (hint: {})", e.hint()));
        let located = locate(&self.ds, index, k).await.map_err(hinted)?;
        let until = deadline();
        let slot = self
            .decode_slots
            .acquire(until)
            .await
            .map_err(|r| refused(r, &what))?;
        let mut held = self
            .image_memory
            .reserve(input_memory(located.len()), until)
            .await
            .map_err(|r| refused(r, &what))?;
        // Requests for one thumbnail that waited in line behind its first decode find it made.
        if let Some(t) = self.thumbs.get((index, k)) {
            return Ok(t);
        }
        let bytes = located.fetch(&self.ds).await.map_err(hinted)?;
        // The header only (the input's copy a decoder makes is held above).
        let (bytes, decode_bytes) = tokio::task::spawn_blocking(move || {
            let estimate = probe(&bytes);
            (bytes, estimate)
        })
        .await
        .map_err(|e| ThumbError::Failed(format!("reading the image header failed: {e}")))?;
        let decode_bytes = decode_bytes.map_err(ThumbError::Failed)?;
        held.grow(decode_bytes, until)
            .await
            .map_err(|r| refused(r, &what))?;
        let thumb = tokio::task::spawn_blocking(move || {
            let thumb = make_thumb(&bytes);
            drop((bytes, held, slot));
            thumb
        })
        .await
        .map_err(|e| ThumbError::Failed(format!("making the thumbnail failed: {e}")))?
        .map_err(ThumbError::Failed)?;
        self.thumbs.insert((index, k), thumb.clone());
        Ok(thumb)
    }
}

/// Why an image could not be served.
#[derive(Debug)]
pub enum ImageFailure {
    Dataset(editshard::Error),
    Refused(ThumbError),
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
