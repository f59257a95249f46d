//! Where a dataset's bytes live: a local directory, an `http(s)://` prefix read with ranged
//! GETs, a dataset repository on the Hugging Face Hub (`hf://datasets/ORG/NAME[@REVISION][/PATH]`,
//! read over HTTP), or an `s3://bucket/prefix` on any S3-compatible store.
//!
//! A [`Location`] names a directory-like prefix; every operation takes a path relative to it
//! (checked with [`crate::path::check_relative_path`], so nothing outside the prefix is
//! ever touched), and nothing ever lists a directory or bucket.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> editshard::Result<()> {
//! use editshard::storage::{Location, StorageOptions};
//! let dir = tempfile::tempdir().unwrap();
//! let loc = Location::parse(dir.path().to_str().unwrap(), &StorageOptions::default())?;
//! loc.put("a/b.txt", bytes::Bytes::from_static(b"hello")).await?;
//! assert_eq!(loc.get_range("a/b.txt", 1..3).await?.as_ref(), b"el");
//! assert_eq!(loc.head("a/b.txt").await?, Some(5));
//! assert_eq!(loc.head("missing").await?, None);
//! # Ok(()) }
//! ```
//!
//! S3: the endpoint comes from `StorageOptions::s3_endpoint`, else `AWS_ENDPOINT_URL_S3` or
//! `AWS_ENDPOINT_URL` (path-style requests are used when an endpoint is given, and an
//! `http://` endpoint is allowed); the region from `AWS_REGION` / `AWS_DEFAULT_REGION`
//! (default `us-east-1`); credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
//! `AWS_SESSION_TOKEN`. Without credentials requests are unsigned (public buckets): no
//! instance-metadata or other credential endpoint is ever contacted.
//!
//! The Hub: `hf://datasets/ORG/NAME@REV/PATH` is read from
//! `{HF_ENDPOINT or https://huggingface.co}/datasets/ORG/NAME/resolve/{REV or main}/PATH`,
//! with `StorageOptions::hf_token`, else `HF_TOKEN`, else the token file `hf auth login`
//! writes, sent as a bearer token to that origin only.
//!
//! Reads follow redirects, to other origins too (at most 5, never from https to plain http),
//! and credentials go only to the origin the location names: see [`crate::net`].

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;

use crate::error::{Error, Result};
use crate::path::check_relative_path;

mod error;
#[cfg(feature = "http")]
mod hub;
mod local;
mod partial;
#[cfg(feature = "remote")]
mod remote;
#[cfg(feature = "s3")]
mod s3_checksum;
#[cfg(feature = "s3")]
mod s3_copy;
#[cfg(feature = "s3")]
mod s3_put;
mod upload_plan;

pub use error::{RemoteError, http_status, is_not_found};
pub use local::{map_file, populate_map};
pub use partial::PartialFile;

/// An object as its store reports it ([`Location::head_stored`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredObject {
    pub bytes: u64,
    /// The store's whole-object CRC-64/NVME, when it keeps one: S3 does for objects uploaded
    /// with that checksum (one PUT, or multipart of type `FULL_OBJECT`) and, since 2025, by
    /// default; a local file, a plain HTTP server, or s3s-fs for a multipart upload, reports
    /// none.
    pub crc64nvme: Option<u64>,
}

/// A stream of an object's bytes, in order.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// True when `e` is a server's answer to a ranged GET with the whole object instead (it
/// ignores `Range`): read the object with one plain GET.
pub fn ranges_unsupported(e: &Error) -> bool {
    #[cfg(feature = "remote")]
    {
        let text = e.to_string();
        remote::RANGES_UNSUPPORTED.iter().any(|m| text.contains(m))
    }
    #[cfg(not(feature = "remote"))]
    {
        let _ = e;
        false
    }
}

/// Network settings. Local locations ignore them.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// S3 endpoint URL (MinIO, R2, ...); overrides `AWS_ENDPOINT_URL(_S3)`.
    pub s3_endpoint: Option<String>,
    /// Longest wait for the next bytes of a response (and, in a streamed upload, for the
    /// next bytes of the body to leave, or the answer once all have). Not a bound on a whole
    /// transfer, so streaming a large shard over a slow link does not time out while it
    /// makes progress.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Retries of a failed request (5xx, 429, connection errors, timeouts), with exponential
    /// back-off from 100 ms up to 5 s. Capped at [`MAX_RETRIES`].
    pub retries: usize,
    /// The Hugging Face token for `hf://` locations; overrides `HF_TOKEN` and the token file.
    /// Sent as a bearer token to the Hub's origin only, never to where it redirects.
    pub hf_token: Option<String>,
}

/// Upper bound on [`StorageOptions::retries`].
pub const MAX_RETRIES: usize = 20;
/// Default part size of multipart uploads (S3 allows 5 MiB to 5 GiB); larger objects get
/// larger parts ([`upload_plan`]).
pub const DEFAULT_PART_SIZE: usize = 16 << 20;

pub use upload_plan::{PART_MEMORY, SINGLE_PUT_MAX};

/// What an object to upload must be, known before its first byte is read (a manifest's
/// shard entry): its length and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub bytes: u64,
    pub sha256: [u8; 32],
    /// The manifest's CRC-64/NVME, when it records one: what an S3 PUT carries as its
    /// checksum, so the store keeps the value a later HEAD compares.
    pub crc64nvme: Option<u64>,
}

/// Opens the bytes of an upload, again for each attempt ([`Location::put_known`]).
pub type Opener<'a> =
    dyn Fn() -> futures_util::future::BoxFuture<'a, Result<ByteStream>> + Send + Sync + 'a;

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            s3_endpoint: None,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retries: 5,
            hf_token: None,
        }
    }
}

/// A directory-like prefix in some storage. Cheap to clone (clients are shared).
#[derive(Clone)]
pub struct Location {
    backend: Backend,
    /// Set by [`with_part_size`](Location::with_part_size); else chosen by each object's
    /// length ([`upload_plan`]).
    part_size: Option<usize>,
}

#[derive(Clone)]
enum Backend {
    Local(PathBuf),
    #[cfg(feature = "remote")]
    Remote(remote::Remote),
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Location({})", self.display())
    }
}

impl Location {
    /// Parses `"path/to/dir"`, `"file:///abs"`, `"http(s)://host/prefix"`,
    /// `"hf://datasets/ORG/NAME[@REVISION][/PATH]"` or `"s3://bucket/prefix"`.
    pub fn parse(url: &str, opts: &StorageOptions) -> Result<Location> {
        Self::parse_with_env(url, opts, |name| std::env::var(name).ok())
    }

    /// [`parse`](Self::parse) with the `AWS_*` and `HF_*` variables looked up through `env`
    /// instead of the process environment (for programs that manage credentials themselves).
    pub fn parse_with_env(
        url: &str,
        opts: &StorageOptions,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Location> {
        // Without the remote backends, the storage options and environment go unused.
        let _ = (&opts, &env);
        let url = url.trim();
        let bad = |why: &str| {
            Error::invalid(format!(
                "location {url:?}: {why} (expected a path, file:///abs, http(s)://host/prefix, \
                 hf://datasets/ORG/NAME[@REVISION][/PATH] or s3://bucket/prefix)"
            ))
        };
        if url.is_empty() {
            return Err(bad("empty"));
        }
        let backend = if let Some(rest) = url.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(bad("a file URL needs an absolute path (file:///...)"));
            }
            Backend::Local(PathBuf::from(rest))
        } else if url.starts_with("http://") || url.starts_with("https://") {
            #[cfg(feature = "http")]
            {
                Backend::Remote(remote::Remote::http(url, opts, None, None)?)
            }
            #[cfg(not(feature = "http"))]
            return Err(bad(
                "this build has no HTTP support (the `http` feature is off)",
            ));
        } else if let Some(rest) = url.strip_prefix("hf://") {
            #[cfg(feature = "http")]
            {
                let repo = hub::HubPath::parse(rest)?;
                let endpoint = env("HF_ENDPOINT")
                    .filter(|e| !e.trim().is_empty())
                    .unwrap_or_else(|| hub::DEFAULT_ENDPOINT.to_string());
                let token = opts
                    .hf_token
                    .clone()
                    .filter(|t| !t.trim().is_empty())
                    .or_else(|| hub::token_from_env(&env));
                Backend::Remote(remote::Remote::http(
                    &repo.url(&endpoint),
                    opts,
                    token.as_deref(),
                    Some(repo.display()),
                )?)
            }
            #[cfg(not(feature = "http"))]
            return Err(bad(&format!(
                "cannot reach the Hub path {rest:?}: this build has no HTTP support (the `http` \
                 feature is off)"
            )));
        } else if let Some(rest) = url.strip_prefix("s3://") {
            #[cfg(feature = "s3")]
            {
                Backend::Remote(remote::Remote::s3(rest, opts, &env)?)
            }
            #[cfg(not(feature = "s3"))]
            return Err(bad(&format!(
                "cannot reach bucket path {rest:?}: this build has no S3 support (the `s3` \
                 feature is off)"
            )));
        } else if url.contains("://") {
            return Err(bad("unsupported scheme"));
        } else {
            Backend::Local(PathBuf::from(url))
        };
        Ok(Location {
            backend,
            part_size: None,
        })
    }

    /// A local directory.
    pub fn local(dir: impl Into<PathBuf>) -> Location {
        Location {
            backend: Backend::Local(dir.into()),
            part_size: None,
        }
    }

    /// Sets the part size of multipart uploads to S3: objects larger than one part are
    /// uploaded in parts of this size, others in one PUT. Clamped to at least 5 MiB, S3's
    /// minimum. Unset, each object's length decides ([`upload_plan`]): one streamed PUT up
    /// to [`SINGLE_PUT_MAX`], else parts of 16 MiB or more.
    pub fn with_part_size(mut self, bytes: usize) -> Location {
        self.part_size = Some(bytes.max(5 << 20));
        self
    }

    /// The location of `rel` under this one (a subdirectory or sub-prefix).
    pub fn child(&self, rel: &str) -> Result<Location> {
        check_relative_path(rel).map_err(|e| e.in_shard(self.display()))?;
        let backend = match &self.backend {
            Backend::Local(dir) => Backend::Local(dir.join(rel)),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => Backend::Remote(r.child(rel)),
        };
        Ok(Location {
            backend,
            part_size: self.part_size,
        })
    }

    /// The location as a user would write it, for messages (credentials are never part of it).
    pub fn display(&self) -> String {
        match &self.backend {
            Backend::Local(dir) => dir.display().to_string(),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.display(),
        }
    }

    /// How `rel` under this location is named in messages.
    pub fn display_of(&self, rel: &str) -> String {
        match &self.backend {
            Backend::Local(dir) => dir.join(rel).display().to_string(),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.display_of(rel),
        }
    }

    /// The directory, when the location is local.
    pub fn is_local(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Local(dir) => Some(dir),
            #[cfg(feature = "remote")]
            Backend::Remote(_) => None,
        }
    }

    fn checked(&self, rel: &str) -> Result<()> {
        check_relative_path(rel).map_err(|e| e.in_shard(self.display_of(rel)))
    }

    /// The whole object.
    pub async fn get(&self, rel: &str) -> Result<Bytes> {
        self.checked(rel)?;
        match &self.backend {
            Backend::Local(dir) => local::get(&dir.join(rel)).await,
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.get(rel).await,
        }
    }

    /// The whole object, refusing one larger than `max` bytes without reading past `max`.
    pub async fn get_max(&self, rel: &str, max: u64) -> Result<Bytes> {
        use futures_util::TryStreamExt;
        let mut stream = self.get_stream(rel).await?;
        let mut out = bytes::BytesMut::new();
        while let Some(chunk) = stream.try_next().await? {
            if (out.len() + chunk.len()) as u64 > max {
                return Err(Error::limit(format!(
                    "object is larger than {max} bytes, the most accepted here"
                ))
                .in_shard(self.display_of(rel)));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }

    /// Exactly the bytes of `range`; an error (truncated) if the object is shorter.
    pub async fn get_range(&self, rel: &str, range: Range<u64>) -> Result<Bytes> {
        self.checked(rel)?;
        if range.start > range.end {
            return Err(Error::invalid(format!(
                "byte range {}..{} is reversed",
                range.start, range.end
            ))
            .in_shard(self.display_of(rel)));
        }
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let want = range.end - range.start;
        let start = range.start;
        let bytes = match &self.backend {
            Backend::Local(dir) => local::get_range(&dir.join(rel), range).await?,
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.get_range(rel, range).await?,
        };
        if bytes.len() as u64 != want {
            return Err(Error::truncated(format!(
                "asked for {want} bytes, got {}: the object is shorter than expected",
                bytes.len()
            ))
            .in_shard(self.display_of(rel))
            .at_offset(start));
        }
        Ok(bytes)
    }

    /// The object memory-mapped, when this location is a local directory (`None` for HTTP
    /// and S3): zero-copy reads for local shards. Only for files that are never modified in
    /// place (see [`local::map_file`]: dataset files are published by rename).
    pub async fn map(&self, rel: &str) -> Result<Option<Bytes>> {
        self.checked(rel)?;
        // Without the remote features (a build of editshard-hub for fuzzing) every location
        // is local.
        #[allow(irrefutable_let_patterns)]
        let Backend::Local(dir) = &self.backend else {
            return Ok(None);
        };
        let path = dir.join(rel);
        let shown = self.display_of(rel);
        tokio::task::spawn_blocking(move || local::map_file(&path))
            .await
            .map_err(|e| Error::from(std::io::Error::other(e)).in_shard(shown.clone()))?
            .map(Some)
            .map_err(|e| error::local("map", &shown, e))
    }

    /// Brings `range` of a mapped object into memory (see [`Location::map`]) before it is
    /// read, on a blocking thread, so that an async reader of the map does not stall its
    /// runtime on the disk.
    ///
    /// A range already in the page cache (the common case of a warm dataset) is left as it
    /// is: its reader faults it in without waiting on the disk (a fault maps several pages
    /// of a file at once, and none are taken again by a process that mapped them before).
    /// Handing it to a blocking thread and waiting was half the time of a warm random read
    /// from Python, and populating it in place (`MADV_POPULATE_READ`, which walks every page
    /// even when mapped) half again (py-spy; bench/README.md, "Python read benchmark").
    pub(crate) async fn populate(map: &Bytes, range: Range<usize>) {
        if local::is_resident(map, range.clone()) {
            return;
        }
        let map = map.clone();
        let _ = tokio::task::spawn_blocking(move || local::populate_map(&map, range)).await;
    }

    /// The object's size, or `None` if it does not exist.
    pub async fn head(&self, rel: &str) -> Result<Option<u64>> {
        self.checked(rel)?;
        match &self.backend {
            Backend::Local(dir) => local::head(&dir.join(rel)).await,
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.head(rel).await,
        }
    }

    /// What the store reports about the object without reading it: its length and, where the
    /// store keeps one, its whole-object CRC-64/NVME (S3: one HEAD with
    /// `x-amz-checksum-mode: ENABLED`). A local file or an HTTP(S) object reports no CRC.
    /// `None` if the object does not exist.
    pub async fn head_stored(&self, rel: &str) -> Result<Option<StoredObject>> {
        self.checked(rel)?;
        let crc64nvme = None;
        match &self.backend {
            Backend::Local(dir) => Ok(local::head(&dir.join(rel))
                .await?
                .map(|bytes| StoredObject { bytes, crc64nvme })),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.head_stored(rel).await,
        }
    }

    /// The object's bytes as a stream (one request; retried transparently where the
    /// backend can resume).
    pub async fn get_stream(&self, rel: &str) -> Result<ByteStream> {
        self.checked(rel)?;
        match &self.backend {
            Backend::Local(dir) => local::get_stream(&dir.join(rel)).await,
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.get_stream(rel).await,
        }
    }

    /// The bytes of `range` as a stream (one ranged GET, from a remote store; a read of the
    /// range, locally), and the whole object's size. Unlike [`get_range`](Self::get_range)
    /// nothing is gathered in memory from a remote store; the caller checks the length it
    /// receives.
    pub async fn get_range_stream(
        &self,
        rel: &str,
        range: Range<u64>,
    ) -> Result<(u64, ByteStream)> {
        self.checked(rel)?;
        match &self.backend {
            Backend::Local(dir) => {
                let path = dir.join(rel);
                let size = local::head(&path).await?.unwrap_or(0);
                let bytes = local::get_range(&path, range).await?;
                let stream = futures_util::stream::once(async move { Ok(bytes) });
                Ok((size, Box::pin(stream)))
            }
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.get_range_stream(rel, range).await,
        }
    }

    /// A temporary file for the object `rel`, written in place at any offset and published
    /// by [`PartialFile::commit`] (removed if dropped before): `None` when this location is
    /// not a local directory.
    pub async fn create_partial(&self, rel: &str) -> Result<Option<PartialFile>> {
        self.checked(rel)?;
        match &self.backend {
            Backend::Local(dir) => PartialFile::create(dir, rel).await.map(Some),
            #[cfg(feature = "remote")]
            Backend::Remote(_) => Ok(None),
        }
    }

    /// Writes the object atomically: it is never visible partially written (local: a
    /// temporary file, synced, then renamed; remote: one PUT).
    pub async fn put(&self, rel: &str, bytes: Bytes) -> Result<()> {
        self.checked(rel)?;
        match &self.backend {
            Backend::Local(dir) => local::put(dir, rel, bytes).await,
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.put(rel, bytes).await,
        }
    }

    /// Uploads a local file, streaming it: one PUT up to the part size, a multipart upload
    /// (completed only when every part arrived, aborted on failure) above. Atomic like
    /// [`put`](Self::put).
    pub async fn put_file(&self, rel: &str, file: &Path) -> Result<()> {
        self.checked(rel)?;
        match &self.backend {
            Backend::Local(dir) => local::put_file(dir, rel, file).await,
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.put_file(rel, file, self.part_size).await,
        }
    }

    /// Writes the object from a stream of chunks, atomically: it becomes visible under `rel`
    /// only if the stream ends without an error (local: a temporary file, synced, then
    /// renamed; S3: one PUT up to the part size, else a multipart upload that is completed
    /// at the end and aborted on error). Memory stays bounded by a few parts, never the whole
    /// object, so a caller can check the bytes as they pass and fail the stream to refuse
    /// them. Returns the number of bytes written. Plain HTTP(S) locations are read-only.
    pub async fn put_stream(&self, rel: &str, stream: ByteStream) -> Result<u64> {
        self.checked(rel)?;
        match &self.backend {
            Backend::Local(dir) => local::put_stream(dir, rel, stream).await,
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.put_stream(rel, stream, self.part_size).await,
        }
    }

    /// Writes the object `rel` whose length and SHA-256 are `known` beforehand, from the
    /// stream `open` returns, atomically like [`put_stream`](Self::put_stream): the stream is
    /// expected to fail rather than end when its bytes are not `known` (the caller checks
    /// them as they pass). To S3 with credentials, an object up to [`SINGLE_PUT_MAX`] (or
    /// the part size, when set) goes up in one streamed PUT that carries `known`'s CRC-64/NVME
    /// (or SHA-256, without one: the store verifies it; nothing is hashed again for the request) and is sent again,
    /// from a new `open()`, when the store refuses or the connection fails; larger objects
    /// as [`put_stream`](Self::put_stream). Returns the number of bytes written.
    pub async fn put_known(&self, rel: &str, known: &Known, open: &Opener<'_>) -> Result<u64> {
        self.checked(rel)?;
        match &self.backend {
            Backend::Local(dir) => {
                let _ = known; // a local file needs no checksum header
                local::put_stream(dir, rel, open().await?).await
            }
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.put_known(rel, known, open, self.part_size).await,
        }
    }

    /// Copies `rel` from `src` to `rel` here without the bytes passing through this process,
    /// where the store can (two S3 locations on one endpoint with the same credentials, an
    /// object of at most 5 GiB: `CopyObject`, which publishes the copy whole or not at all). `bytes` is the object's expected length. `Ok(false)`: the store cannot, the
    /// caller streams instead ([`put_stream`](Self::put_stream)).
    pub async fn copy_from(&self, src: &Location, rel: &str, bytes: u64) -> Result<bool> {
        self.checked(rel)?;
        match (&self.backend, &src.backend) {
            #[cfg(feature = "remote")]
            (Backend::Remote(to), Backend::Remote(from)) => to.copy_from(from, rel, bytes).await,
            _ => {
                let _ = bytes;
                Ok(false)
            }
        }
    }

    /// Writes the object only if nothing is stored under `rel` yet: `Ok(false)` when something
    /// is (local: an exclusive create; S3: a conditional PUT, `If-None-Match: *`). Atomic
    /// against a concurrent `create_new` of the same name, which is what locks are made of.
    pub async fn create_new(&self, rel: &str, bytes: Bytes) -> Result<bool> {
        self.checked(rel)?;
        match &self.backend {
            Backend::Local(dir) => local::create_new(dir, rel, bytes).await,
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.create_new(rel, bytes).await,
        }
    }

    /// Deletes the object; deleting an object that does not exist is not an error.
    pub async fn delete(&self, rel: &str) -> Result<()> {
        self.checked(rel)?;
        match &self.backend {
            Backend::Local(dir) => local::delete(dir, rel).await,
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.delete(rel).await,
        }
    }
}
