//! [`Dataset`]: a manifest, its shards' cached footers, and random access to records.

use std::sync::Arc;

use super::fetch::{SkipFn, fetch_records};
use super::manifest::{load_id_filters, load_manifest_deferring_filters};
use super::select::{Filter, Images};
use super::shards::{DatasetOptions, Inner, LoadedShard};
use crate::error::{Error, Result};
use crate::manifest::{IdFilters, Manifest};
use crate::record::Record;
use crate::storage::Location;

/// A dataset opened for reading. Cheap to clone; clones share the footer cache.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> editshard::Result<()> {
/// # use editshard::record::{Image, Kind, Record, Turn};
/// # let dir = tempfile::tempdir().unwrap();
/// # let img = Image::with_info(vec![1u8, 2, 3].into(), "image/png".into(), 1, 1);
/// # let mut w = editshard::write::DatasetWriter::create(dir.path())?;
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
    /// Opens the dataset at `location`: reads `manifest.json`, nothing else. The shards' id
    /// filters are checked but not kept: the first lookup by id reads them (see
    /// [`Self::id_filters`]).
    pub async fn open(location: Location) -> Result<Dataset> {
        Self::open_with(location, DatasetOptions::default()).await
    }

    pub async fn open_with(location: Location, options: DatasetOptions) -> Result<Dataset> {
        let manifest = load_manifest_deferring_filters(&location).await?;
        Ok(Self::from_manifest(location, manifest, options))
    }

    /// A dataset whose manifest was obtained some other way: whole ([`Manifest::parse`]), or
    /// without its filters ([`Manifest::parse_deferring_filters`] of the bytes at
    /// `location`).
    pub fn from_manifest(location: Location, manifest: Manifest, options: DatasetOptions) -> Self {
        Self::from_shared_manifest(location, Arc::new(manifest), options)
    }

    /// [`Self::from_manifest`] sharing a manifest already held (see [`Self::shared_manifest`]):
    /// a handle opened again after a fork holds no second copy. Its id filters, if deferred,
    /// are read again by the new handle's first lookup by id.
    pub fn from_shared_manifest(
        location: Location,
        manifest: Arc<Manifest>,
        options: DatasetOptions,
    ) -> Self {
        Dataset {
            inner: Arc::new(Inner::new(location, manifest, options)),
        }
    }

    /// The manifest, shared.
    pub fn shared_manifest(&self) -> Arc<Manifest> {
        Arc::clone(&self.inner.manifest)
    }

    /// The manifest as opened: with [`Self::open`], without its id filters
    /// ([`Manifest::filters_deferred`]); see [`Self::whole_manifest`].
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// The shards' id filters: read from the manifest's location by the first call (one
    /// read of `manifest.json`, shared by concurrent callers), refused if the manifest there
    /// is no longer the one opened. Kept while the dataset is.
    pub async fn id_filters(&self) -> Result<Arc<IdFilters>> {
        let inner = &self.inner;
        inner
            .id_filters
            .get_or_try_init(|| async {
                load_id_filters(&inner.location, &inner.manifest)
                    .await
                    .map(Arc::new)
            })
            .await
            .cloned()
    }

    /// The manifest with its id filters (what a tool that writes a manifest needs).
    pub async fn whole_manifest(&self) -> Result<Manifest> {
        let mut whole = Manifest::clone(&self.inner.manifest);
        if whole.filters_deferred() {
            let filters = self.id_filters().await?;
            for (s, shard) in whole.shards.iter_mut().enumerate() {
                if let Some(f) = filters.get(s) {
                    shard.id_filter = f.clone();
                }
            }
            whole.filters_in = None;
        }
        Ok(whole)
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

    /// Shard `s` with its footer (index) loaded; cached after the first call, within the
    /// cache's byte budget ([`DatasetOptions::footer_cache_bytes`]).
    pub async fn shard(&self, s: usize) -> Result<Arc<LoadedShard>> {
        self.inner.shard(s).await
    }

    /// How many shard footers the cache holds now.
    pub fn footers_loaded(&self) -> usize {
        self.inner.footers_loaded()
    }

    /// The bytes the footer cache holds now (`ShardIndex::heap_bytes` of each loaded footer,
    /// plus a little for its entry), at most [`DatasetOptions::footer_cache_bytes`] but for
    /// the footer loaded last.
    pub fn footer_bytes(&self) -> u64 {
        self.inner.footer_bytes()
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
        let candidates = if self.inner.manifest.filters_deferred() {
            let filters = self.id_filters().await.map_err(|e| e.with_id(id))?;
            filters.candidate_shards(id)
        } else {
            self.inner.manifest.candidate_shards(id)
        };
        for s in candidates {
            let shard = self.inner.shard(s).await?;
            if let Some(local) = shard.index().position(id) {
                return Ok(Some(self.inner.first_of(s) + local as u64));
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
