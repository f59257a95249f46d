//! [`Dataset`]: a manifest, its shards' cached footers, and random access to records.

use std::sync::Arc;

use tokio::sync::OnceCell;

use super::fetch::{SkipFn, fetch_records};
use super::select::{Filter, Images};
use crate::error::{Error, Result};
use crate::format::index::ShardIndex;
use crate::manifest::{MANIFEST_NAME, MAX_MANIFEST_LEN, Manifest};
use crate::record::Record;
use crate::shard::ReadOptions;
use crate::shard::{RandomAccessShard, ReadAt};
use crate::storage::Location;

/// How a [`Dataset`] reads.
#[derive(Debug, Clone)]
pub struct DatasetOptions {
    /// CRC checks (on by default) and resource limits.
    pub read: ReadOptions,
    /// Ranges this close are fetched in one request. The default, 4 KiB, bridges the frame
    /// header and group table between consecutive groups (so adjacent records cost one
    /// request) but never an image; on high-latency storage a gap of a few hundred KiB
    /// trades bytes for fewer requests.
    pub coalesce_gap: u64,
    /// Largest merged request.
    pub max_request: u64,
    /// A record is fetched as its whole span (metadata to last image: one request) when that
    /// span holds at most this many bytes that belong to other records; otherwise its
    /// metadata and images are fetched as separate ranges.
    pub span_slack: u64,
    /// Requests in flight at once for one batch.
    pub concurrency: usize,
}

impl Default for DatasetOptions {
    fn default() -> Self {
        DatasetOptions {
            read: ReadOptions::default(),
            coalesce_gap: 4 << 10,
            max_request: 64 << 20,
            // A record is one ranged read (the format's promise) unless the other records'
            // images between its pieces exceed this: rare, groups average a few MB.
            span_slack: 16 << 20,
            concurrency: 8,
        }
    }
}

/// Stand-in source for a [`RandomAccessShard`] used only to decode bytes fetched
/// asynchronously (its `decode`); it never reads.
pub(crate) struct Fetched;

impl ReadAt for Fetched {
    fn size(&self) -> std::io::Result<u64> {
        Err(std::io::Error::other(
            "asynchronous shard: no synchronous reads",
        ))
    }
    fn read_at(&self, _: u64, _: usize) -> std::io::Result<bytes::Bytes> {
        Err(std::io::Error::other(
            "asynchronous shard: no synchronous reads",
        ))
    }
}

/// One shard whose footer is loaded.
pub struct LoadedShard {
    reader: RandomAccessShard<Fetched>,
    path: String,
}

impl LoadedShard {
    pub fn index(&self) -> &ShardIndex {
        self.reader.index()
    }
    /// Path relative to the dataset root.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// The shard's full name (URL or path) as used in messages.
    pub fn name(&self) -> &str {
        self.reader.name()
    }
    pub(crate) fn reader(&self) -> &RandomAccessShard<Fetched> {
        &self.reader
    }
}

pub(crate) struct Inner {
    pub location: Location,
    pub manifest: Manifest,
    pub options: DatasetOptions,
    shards: Vec<OnceCell<Arc<LoadedShard>>>,
    /// Global index of each shard's first record.
    firsts: Vec<u64>,
}

impl Inner {
    /// The shard with its footer loaded: one ranged read the first time, none after.
    pub async fn shard(self: &Arc<Self>, s: usize) -> Result<Arc<LoadedShard>> {
        let cell = self.shards.get(s).ok_or_else(|| {
            Error::invalid(format!(
                "shard #{s} does not exist: the dataset has {}",
                self.shards.len()
            ))
        })?;
        if let Some(loaded) = cell.get() {
            return Ok(loaded.clone());
        }
        // The footer is loaded by a task of its own, never inline: whoever starts the load
        // may stop being polled (a prefetching reader whose consumer is busy elsewhere waits
        // in a full channel), and every other caller waiting on this cell would wait with it.
        // A spawned task always runs to completion and fills the cell for all of them.
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            inner.shards[s]
                .get_or_try_init(|| inner.load_shard(s))
                .await
                .cloned()
        })
        .await
        .map_err(|e| Error::invalid(format!("loading the footer of shard #{s} failed: {e}")))?
    }

    async fn load_shard(&self, s: usize) -> Result<Arc<LoadedShard>> {
        let entry = &self.manifest.shards[s];
        let name = self.location.display_of(&entry.path);
        let limits = &self.options.read.limits;
        if entry.footer_length > u64::from(limits.max_index_len) + 64 {
            return Err(Error::limit(format!(
                "the manifest gives a footer of {} bytes; the limit is {}",
                entry.footer_length, limits.max_index_len
            ))
            .in_shard(name));
        }
        let footer = self
            .location
            .get_range(
                &entry.path,
                entry.footer_offset..entry.footer_offset + entry.footer_length,
            )
            .await?;
        let reader = RandomAccessShard::from_footer(
            Fetched,
            name.clone(),
            self.options.read.clone(),
            &footer,
            entry.footer_offset,
        )?;
        if reader.len() as u64 != entry.records {
            return Err(Error::malformed(format!(
                "the shard's index lists {} records but the manifest says {}",
                reader.len(),
                entry.records
            ))
            .in_shard(name));
        }
        Ok(Arc::new(LoadedShard {
            reader,
            path: entry.path.clone(),
        }))
    }

    pub fn locate(&self, global: u64) -> Option<(usize, usize)> {
        if global >= self.manifest.records {
            return None;
        }
        let s = self
            .firsts
            .partition_point(|&f| f <= global)
            .checked_sub(1)?;
        Some((s, (global - self.firsts[s]) as usize))
    }
}

/// A dataset opened for reading. Cheap to clone; clones share the footer cache.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> editshard::Result<()> {
/// # use editshard::record::{Image, Kind, Record, Turn};
/// # let dir = tempfile::tempdir().unwrap();
/// # let img = Image::with_info(vec![1u8, 2, 3].into(), "image/png".into(), 1, 1);
/// # let mut w = editshard::dataset::DatasetWriter::create(dir.path())?;
/// # w.append(&Record::new("a/1", Kind::Sft, img.clone(), vec![Turn::new(img)]))?;
/// # w.finish()?;
/// use editshard::read::{Dataset, Images};
/// use editshard::storage::Location;
/// let ds = Dataset::open(Location::local(dir.path())).await?;   // reads manifest.json only
/// let record = ds.get_by_id("a/1").await?.unwrap();             // footer + one ranged read
/// assert!(record.source.data.is_some());
/// let meta = ds.get_with(0, Images::None).await?;               // metadata block only
/// assert!(meta.source.data.is_none());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Dataset {
    pub(crate) inner: Arc<Inner>,
}

impl Dataset {
    /// Opens the dataset at `location`: reads `manifest.json`, nothing else.
    pub async fn open(location: Location) -> Result<Dataset> {
        Self::open_with(location, DatasetOptions::default()).await
    }

    pub async fn open_with(location: Location, options: DatasetOptions) -> Result<Dataset> {
        let bytes = location
            .get_max(MANIFEST_NAME, MAX_MANIFEST_LEN)
            .await
            .map_err(|e| e.in_shard(location.display_of(MANIFEST_NAME)))?;
        let manifest =
            Manifest::parse(&bytes).map_err(|e| e.in_shard(location.display_of(MANIFEST_NAME)))?;
        Ok(Self::from_manifest(location, manifest, options))
    }

    /// A dataset whose manifest was obtained some other way.
    pub fn from_manifest(location: Location, manifest: Manifest, options: DatasetOptions) -> Self {
        let mut firsts = Vec::with_capacity(manifest.shards.len());
        let mut at = 0u64;
        for s in &manifest.shards {
            firsts.push(at);
            at += s.records;
        }
        Dataset {
            inner: Arc::new(Inner {
                shards: (0..manifest.shards.len())
                    .map(|_| OnceCell::new())
                    .collect(),
                location,
                manifest,
                options,
                firsts,
            }),
        }
    }

    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }
    pub fn location(&self) -> &Location {
        &self.inner.location
    }
    pub fn options(&self) -> &DatasetOptions {
        &self.inner.options
    }
    /// Records in the dataset.
    pub fn len(&self) -> u64 {
        self.inner.manifest.records
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shard holding global record `index`, and the record's index within it.
    pub fn locate(&self, index: u64) -> Option<(usize, usize)> {
        self.inner.locate(index)
    }

    /// Shard `s` with its footer (index) loaded; cached after the first call.
    pub async fn shard(&self, s: usize) -> Result<Arc<LoadedShard>> {
        self.inner.shard(s).await
    }

    fn locate_or_err(&self, index: u64) -> Result<(usize, usize)> {
        self.inner.locate(index).ok_or_else(|| {
            Error::invalid(format!(
                "record #{index} does not exist: the dataset has {} records",
                self.len()
            ))
            .in_shard(self.inner.location.display())
        })
    }

    /// Global record `index` with all its images: one ranged read once its shard's footer is
    /// loaded.
    pub async fn get(&self, index: u64) -> Result<Record> {
        self.get_with(index, Images::All).await
    }

    /// Global record `index` with the chosen images only.
    pub async fn get_with(&self, index: u64, images: Images) -> Result<Record> {
        let at = self.locate_or_err(index)?;
        let mut out = fetch_records(&self.inner, &[at], images, &Filter::default(), None).await?;
        out.pop()
            .flatten()
            .ok_or_else(|| Error::bug("record was not read"))
    }

    /// The record with this id, or `None`. The manifest's id filters pick the shard, so this
    /// costs one footer read (cached) and one ranged read.
    pub async fn get_by_id(&self, id: &str) -> Result<Option<Record>> {
        self.get_by_id_with(id, Images::All).await
    }

    pub async fn get_by_id_with(&self, id: &str, images: Images) -> Result<Option<Record>> {
        match self.find(id).await? {
            Some(index) => self.get_with(index, images).await.map(Some),
            None => Ok(None),
        }
    }

    /// The global index of the record with this id.
    pub async fn find(&self, id: &str) -> Result<Option<u64>> {
        for s in self.inner.manifest.candidate_shards(id) {
            let shard = self.inner.shard(s).await?;
            if let Some(local) = shard.index().position(id) {
                return Ok(Some(self.inner.firsts[s] + local as u64));
            }
        }
        Ok(None)
    }

    /// Several records by global index, in the order asked; adjacent byte ranges within a
    /// shard are fetched together.
    pub async fn get_many(&self, indices: &[u64], images: Images) -> Result<Vec<Record>> {
        let wants = indices
            .iter()
            .map(|&i| self.locate_or_err(i))
            .collect::<Result<Vec<_>>>()?;
        let out = fetch_records(&self.inner, &wants, images, &Filter::default(), None).await?;
        out.into_iter()
            .map(|r| r.ok_or_else(|| Error::bug("record was not read")))
            .collect()
    }

    /// Like [`get_many`](Self::get_many), with a filter (`None` for records it rejects) and
    /// optionally skipping damaged records (`None` too, after calling `skip`).
    pub async fn select(
        &self,
        indices: &[u64],
        images: Images,
        filter: &Filter,
        skip: Option<&SkipFn>,
    ) -> Result<Vec<Option<Record>>> {
        let wants = indices
            .iter()
            .map(|&i| self.locate_or_err(i))
            .collect::<Result<Vec<_>>>()?;
        fetch_records(&self.inner, &wants, images, filter, skip).await
    }

    /// Reads records of one shard by their index within it.
    pub(crate) async fn select_in_shard(
        &self,
        shard: usize,
        locals: impl Iterator<Item = usize>,
        images: Images,
        filter: &Filter,
        skip: Option<&SkipFn>,
    ) -> Result<Vec<Option<Record>>> {
        let wants: Vec<(usize, usize)> = locals.map(|l| (shard, l)).collect();
        fetch_records(&self.inner, &wants, images, filter, skip).await
    }
}
