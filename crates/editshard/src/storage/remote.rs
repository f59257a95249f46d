//! The `object_store` backends: S3-compatible stores and plain HTTP(S) servers.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
#[cfg(feature = "s3")]
use object_store::aws::AmazonS3Builder;
#[cfg(feature = "http")]
use object_store::http::HttpBuilder;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    PutPayloadMut, RetryConfig,
};

use super::error::{local as local_err, remote as err, remote_advised, remote_finish};
use super::upload_plan::{self, Plan};
use super::{ByteStream, Known, MAX_RETRIES, Opener, StorageOptions};
use crate::error::{Error, Result};
#[cfg(feature = "s3")]
use crate::path::check_relative_path;

#[derive(Clone)]
pub(super) struct Remote {
    store: Arc<dyn ObjectStore>,
    /// Key segments every relative path is put under.
    prefix: Vec<String>,
    /// The location as written by the user, without a trailing slash or credentials.
    base: String,
    /// Whether the store supports multipart uploads (S3 does, plain HTTP does not).
    multipart: bool,
    /// What to do about a 401 or 403, when the store knows better than the generic advice.
    auth_advice: Option<&'static str>,
    /// S3: the endpoint, region, bucket and access key. Two locations with the same one are
    /// prefixes of one bucket reached alike, between which the store copies by itself.
    same_bucket: Option<String>,
    /// S3: the bucket as reached here, for requests signed here: `CopyObject` (with
    /// credentials), the HEAD that reads the store's checksums, and a streamed PUT
    /// ([`s3_put`](super::s3_put)).
    #[cfg(feature = "s3")]
    bucket: Option<Arc<super::s3_copy::Bucket>>,
    /// [`upload_plan::PART_MEMORY`], shared by every multipart upload here.
    part_budget: Arc<tokio::sync::Semaphore>,
    /// S3 with credentials: the client of streamed PUTs.
    #[cfg(feature = "s3")]
    put_client: Option<Arc<super::s3_put::PutClient>>,
}

/// What object_store says of a server that answered a ranged GET with the whole object:
/// the HTTP store's `RangeNotSupported`, S3's `GetResultError::NotPartial` (private types:
/// matched by their messages).
pub(crate) const RANGES_UNSUPPORTED: [&str; 2] = [
    "Range request not supported",
    "non-partial response when range requested",
];

/// The largest object one `CopyObject` copies (S3's limit).
const MAX_COPY_OBJECT: u64 = 5 << 30;

/// A 401 or 403 from the Hub.
#[cfg(feature = "http")]
const HUB_AUTH_ADVICE: &str = "the Hub refused: for a private or gated dataset, set HF_TOKEN (or \
    --hf-token) to a token with read access to it (and accept its terms on its page if it is \
    gated); check the name, revision and HF_ENDPOINT";

fn client_options(opts: &StorageOptions, allow_http: bool) -> ClientOptions {
    // No bound on a whole request: a large shard may stream for minutes. The read timeout
    // bounds how long a stalled connection can hold a reader.
    ClientOptions::new()
        .with_allow_http(allow_http)
        .with_timeout_disabled()
        .with_read_timeout(opts.timeout)
        .with_connect_timeout(opts.connect_timeout)
}

fn connector(opts: &StorageOptions, allow_http: bool) -> crate::net::Connector {
    crate::net::Connector {
        connect_timeout: opts.connect_timeout,
        read_timeout: opts.timeout,
        allow_http,
        bearer: None,
    }
}

fn retry_config(opts: &StorageOptions) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: opts.retries.min(MAX_RETRIES),
        retry_timeout: Duration::from_secs(120),
    }
}

/// Removes `user:password@` from a URL's authority, for display.
#[cfg(feature = "http")]
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

impl Remote {
    /// A plain HTTP(S) location at `url` (read-only). `token` is sent as a bearer token to
    /// `url`'s origin only; `shown` names the location in messages (default: `url` without
    /// credentials).
    #[cfg(feature = "http")]
    pub(super) fn http(
        url: &str,
        opts: &StorageOptions,
        token: Option<&str>,
        shown: Option<String>,
    ) -> Result<Remote> {
        crate::net::ensure_tls_provider();
        let base = url.trim_end_matches('/').to_string();
        let shown = shown.unwrap_or_else(|| redact(&base));
        let invalid = |why: String| {
            Error::invalid(format!("cannot use {shown:?} as an HTTP location: {why}"))
        };
        let bearer = match token {
            Some(token) => {
                let parsed = reqwest::Url::parse(&base).map_err(|e| invalid(e.to_string()))?;
                let bearer = crate::net::Bearer::new(&parsed, token).ok_or_else(|| {
                    invalid("the token holds characters an HTTP header cannot".to_string())
                })?;
                Some(bearer)
            }
            None => None,
        };
        let hub = bearer.is_some() || shown.starts_with("hf://");
        let allow_http = base.starts_with("http://");
        let mut connector = connector(opts, allow_http);
        connector.bearer = bearer;
        let store = HttpBuilder::new()
            .with_url(base.as_str())
            .with_client_options(client_options(opts, allow_http))
            .with_http_connector(connector)
            .with_retry(retry_config(opts))
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Remote {
            store: Arc::new(store),
            prefix: Vec::new(),
            base: shown,
            multipart: false,
            auth_advice: hub.then_some(HUB_AUTH_ADVICE),
            same_bucket: None,
            #[cfg(feature = "s3")]
            bucket: None,
            part_budget: Arc::new(upload_plan::budget()),
            #[cfg(feature = "s3")]
            put_client: None,
        })
    }

    /// `rest` is what follows `s3://`: `bucket[/prefix]`.
    #[cfg(feature = "s3")]
    pub(super) fn s3(
        rest: &str,
        opts: &StorageOptions,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Remote> {
        crate::net::ensure_tls_provider();
        let env = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = !bucket.is_empty()
            && bucket.len() <= 63
            && bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
        if !valid_bucket {
            return Err(Error::invalid(format!(
                "s3://{rest}: {bucket:?} is not a bucket name"
            )));
        }
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() {
            check_relative_path(prefix).map_err(|e| e.in_shard(format!("s3://{rest}")))?;
        }
        let endpoint = opts
            .s3_endpoint
            .clone()
            .filter(|e| !e.trim().is_empty())
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"));
        let region = env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_string());
        let allow_http = endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        let same_bucket = format!(
            "{}\n{region}\n{bucket}\n{}",
            endpoint.as_deref().unwrap_or("aws").trim_end_matches('/'),
            env("AWS_ACCESS_KEY_ID").unwrap_or_default()
        );
        // EDITSHARD_S3_CHECKSUM=sha256: uploads carry SHA-256 instead of CRC-64/NVME.
        let sha256_checksums =
            env("EDITSHARD_S3_CHECKSUM").is_some_and(|v| v.eq_ignore_ascii_case("sha256"));
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(&region)
            .with_client_options(client_options(opts, allow_http))
            .with_http_connector(connector(opts, allow_http))
            .with_retry(retry_config(opts))
            // Every PUT and every part carries its CRC-64/NVME (`x-amz-checksum-crc64nvme`;
            // a multipart upload is created with that algorithm, which S3 keeps as one
            // FULL_OBJECT checksum), so the store refuses bytes damaged on the way and keeps
            // the whole object's CRC, which the manifest records: a later mirror or
            // `verify --remote` compares it by HEAD instead of reading the object back. S3
            // takes one checksum algorithm per request, and SHA-256 cannot serve here: a
            // multipart object's SHA-256 is a checksum of its parts' checksums, never the
            // manifest's digest. SHA-256 still guards each request where it is signed
            // (SigV4's x-amz-content-sha256, which the store checks against the body).
            // object_store cannot send the whole object's value at CompleteMultipartUpload;
            // the mirror compares the stored CRC with the manifest's right after instead.
            // A store that refuses CRC64NVME (some S3-compatible ones answer 501) is
            // written with EDITSHARD_S3_CHECKSUM=sha256: what it verifies is as before, and
            // later checks read the objects back.
            .with_checksum_algorithm(if sha256_checksums {
                object_store::aws::Checksum::SHA256
            } else {
                object_store::aws::Checksum::CRC64NVME
            });
        if let Some(endpoint) = &endpoint {
            builder = builder
                .with_endpoint(endpoint.trim_end_matches('/'))
                .with_virtual_hosted_style_request(false);
        }
        let credential = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(key), Some(secret)) => {
                builder = builder
                    .with_access_key_id(&key)
                    .with_secret_access_key(&secret);
                if let Some(token) = env("AWS_SESSION_TOKEN") {
                    builder = builder.with_token(token);
                }
                Some(object_store::aws::AwsCredential {
                    key_id: key,
                    secret_key: secret,
                    token: env("AWS_SESSION_TOKEN"),
                })
            }
            // Anonymous: also keeps object_store from asking an instance-metadata endpoint
            // the user never named. (Unsigned HEADs still read the store's checksums.)
            _ => {
                builder = builder.with_skip_signature(true);
                None
            }
        };
        let copies = Some(Arc::new(super::s3_copy::Bucket {
            endpoint: endpoint
                .as_deref()
                .map(|e| e.trim_end_matches('/').to_string()),
            region: region.clone(),
            bucket: bucket.to_string(),
            credential,
            sha256_checksums,
            client: super::s3_copy::client(opts.connect_timeout, opts.timeout)?,
            retries: opts.retries.min(MAX_RETRIES),
        }));
        let shown = if prefix.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{prefix}")
        };
        let store = builder.build().map_err(|e| {
            Error::invalid(format!(
                "cannot use {shown}: {e} (check --s3-endpoint / AWS_ENDPOINT_URL and AWS_REGION)"
            ))
        })?;
        Ok(Remote {
            store: Arc::new(store),
            prefix: prefix
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            base: shown,
            multipart: true,
            auth_advice: None,
            same_bucket: Some(same_bucket),
            // A streamed PUT is signed here: only with credentials.
            put_client: match copies.as_ref().and_then(|b| b.credential.as_ref()) {
                Some(_) => Some(Arc::new(super::s3_put::PutClient::new(
                    opts.connect_timeout,
                    opts.timeout,
                )?)),
                None => None,
            },
            bucket: copies,
            part_budget: Arc::new(upload_plan::budget()),
        })
    }

    pub(super) fn child(&self, rel: &str) -> Remote {
        let mut child = self.clone();
        child.prefix.extend(rel.split('/').map(str::to_string));
        child.base = format!("{}/{rel}", self.base);
        child
    }

    pub(super) fn display(&self) -> String {
        self.base.clone()
    }

    pub(super) fn display_of(&self, rel: &str) -> String {
        format!("{}/{rel}", self.base)
    }

    /// A failed read of this store, with its advice on access errors.
    fn read_err(&self, op: impl Into<String>, what: &str, e: object_store::Error) -> Error {
        remote_advised(op, what, e, self.auth_advice)
    }

    fn path(&self, rel: &str) -> ObjectPath {
        ObjectPath::from_iter(self.prefix.iter().map(String::as_str).chain(rel.split('/')))
    }

    /// Starts a GET of the whole object; `shown` names it in errors.
    async fn open(&self, rel: &str, shown: &str) -> Result<object_store::GetResult> {
        self.store
            .get(&self.path(rel))
            .await
            .map_err(|e| self.read_err("GET", shown, e))
    }

    pub(super) async fn get(&self, rel: &str) -> Result<Bytes> {
        let shown = self.display_of(rel);
        let result = self.open(rel, &shown).await?;
        result
            .bytes()
            .await
            .map_err(|e| self.read_err("GET", &shown, e))
    }

    pub(super) async fn get_range(&self, rel: &str, range: Range<u64>) -> Result<Bytes> {
        let start = range.start;
        let end = range.end;
        self.store
            .get_range(&self.path(rel), range)
            .await
            .map_err(|e| {
                self.read_err(
                    format!("GET bytes {start}..{end}"),
                    &self.display_of(rel),
                    e,
                )
            })
    }

    pub(super) async fn head(&self, rel: &str) -> Result<Option<u64>> {
        match self.store.head(&self.path(rel)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.read_err("HEAD", &self.display_of(rel), e)),
        }
    }

    /// [`Location::head_stored`](super::Location::head_stored): S3 asks for the store's
    /// checksum; plain HTTP reports the length only.
    pub(super) async fn head_stored(&self, rel: &str) -> Result<Option<super::StoredObject>> {
        #[cfg(feature = "s3")]
        if let Some(bucket) = &self.bucket {
            return bucket
                .head_checksum(self.path(rel).as_ref(), &self.display_of(rel))
                .await;
        }
        Ok(self.head(rel).await?.map(|bytes| super::StoredObject {
            bytes,
            crc64nvme: None,
        }))
    }

    pub(super) async fn get_stream(&self, rel: &str) -> Result<ByteStream> {
        let shown = self.display_of(rel);
        let result = self.open(rel, &shown).await?;
        Ok(result
            .into_stream()
            .map(move |r| r.map_err(|e| err("GET", &shown, e)))
            .boxed())
    }

    /// One ranged GET of `range`, streamed. A server that answers with the whole object
    /// instead (it ignores `Range`) fails with one of [`RANGES_UNSUPPORTED`] in the message.
    /// Also returns the whole object's size, as the response's `Content-Range` gives it.
    pub(super) async fn get_range_stream(
        &self,
        rel: &str,
        range: Range<u64>,
    ) -> Result<(u64, ByteStream)> {
        let shown = self.display_of(rel);
        let op = format!("GET bytes {}..{}", range.start, range.end);
        let options = object_store::GetOptions {
            range: Some(range.into()),
            ..object_store::GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&self.path(rel), options)
            .await
            .map_err(|e| self.read_err(op.clone(), &shown, e))?;
        let size = result.meta.size;
        let stream = result
            .into_stream()
            .map(move |r| r.map_err(|e| err(op.clone(), &shown, e)))
            .boxed();
        Ok((size, stream))
    }

    pub(super) async fn put(&self, rel: &str, bytes: Bytes) -> Result<()> {
        self.store
            .put(&self.path(rel), PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(|e| err("PUT", &self.display_of(rel), e))
    }

    pub(super) async fn put_file(
        &self,
        rel: &str,
        file: &Path,
        part_size: Option<usize>,
    ) -> Result<()> {
        let local = file.display().to_string();
        let size = tokio::fs::metadata(file)
            .await
            .map_err(|e| local_err("stat", &local, e))?
            .len();
        // Read whole when it is one part: at most the part size in memory.
        let part_size = part_size.unwrap_or_else(|| upload_plan::part_for(size));
        match upload_plan::plan(Some(size), Some(part_size)) {
            Plan::Parts(part) if self.multipart => {
                let stream = super::local::get_stream(file).await?;
                self.put_parts(rel, stream, PutPayloadMut::new(), part)
                    .await
                    .map(|_| ())
            }
            _ => {
                let data = tokio::fs::read(file)
                    .await
                    .map_err(|e| local_err("read", &local, e))?;
                self.put(rel, data.into()).await
            }
        }
    }

    /// [`Location::put_known`](super::Location::put_known).
    pub(super) async fn put_known(
        &self,
        rel: &str,
        known: &Known,
        open: &Opener<'_>,
        part_size: Option<usize>,
    ) -> Result<u64> {
        if !self.multipart {
            return Err(read_only(self.display_of(rel)));
        }
        #[cfg(feature = "s3")]
        if let (Some(bucket), Some(client), Plan::One) = (
            &self.bucket,
            &self.put_client,
            upload_plan::plan(Some(known.bytes), part_size),
        ) {
            let path = self.path(rel);
            client
                .put(bucket, path.as_ref(), known, open, &self.display_of(rel))
                .await?;
            return Ok(known.bytes);
        }
        match upload_plan::plan(Some(known.bytes), part_size) {
            Plan::Parts(part) => {
                self.put_parts(rel, open().await?, PutPayloadMut::new(), part)
                    .await
            }
            // Anonymous (nothing to sign a streamed PUT with): object_store's PUT, the
            // object whole in memory.
            Plan::One => {
                let whole = usize::try_from(known.bytes).unwrap_or(usize::MAX).max(1);
                self.put_stream(rel, open().await?, Some(whole)).await
            }
        }
    }

    pub(super) async fn put_stream(
        &self,
        rel: &str,
        mut stream: ByteStream,
        part_size: Option<usize>,
    ) -> Result<u64> {
        let shown = self.display_of(rel);
        if !self.multipart {
            return Err(read_only(shown));
        }
        let part = match upload_plan::plan(None, part_size) {
            Plan::Parts(part) => part,
            Plan::One => super::DEFAULT_PART_SIZE,
        };
        // Up to one part is gathered (its chunks, not copied): a small object goes up in one
        // PUT, like put_file.
        let mut first = PutPayloadMut::new();
        let mut rest = None;
        while let Some(chunk) = stream.next().await {
            let mut chunk = chunk?;
            let room = part - first.content_length();
            if chunk.len() > room {
                rest = Some(chunk.split_off(room));
            }
            first.push(chunk);
            if first.content_length() >= part {
                break;
            }
        }
        if first.content_length() < part {
            let n = first.content_length() as u64;
            return self
                .store
                .put(&self.path(rel), first.freeze())
                .await
                .map(|_| n)
                .map_err(|e| err("PUT", &shown, e));
        }
        let stream = match rest {
            Some(chunk) => futures_util::stream::once(async { Ok(chunk) })
                .chain(stream)
                .boxed(),
            None => stream,
        };
        self.put_parts(rel, stream, first, part).await
    }

    /// A multipart upload of `first` (a whole part, or nothing) then `stream`, in parts of
    /// `part` bytes, each part made of the stream's own chunks (sliced, never copied). A
    /// part is filled only once [`PART_MEMORY`](upload_plan::PART_MEMORY) has room for it,
    /// and holds its share until its PUT is answered; at most
    /// [`PARTS_IN_FLIGHT`](upload_plan::PARTS_IN_FLIGHT) of this upload at once. Completed
    /// only after every part was answered, aborted on any failure: nothing is visible
    /// before.
    async fn put_parts(
        &self,
        rel: &str,
        stream: ByteStream,
        first: PutPayloadMut,
        part: usize,
    ) -> Result<u64> {
        let shown = self.display_of(rel);
        // Asked for more after its end (the last part may end with the stream).
        let mut stream = stream.fuse();
        let mut upload = self
            .store
            .put_multipart(&self.path(rel))
            .await
            .map_err(|e| err("start multipart upload", &shown, e))?;
        let mut tasks: tokio::task::JoinSet<object_store::Result<()>> = tokio::task::JoinSet::new();
        let mut n = first.content_length() as u64;
        let units = upload_plan::budget_units(part);
        let mut pending = Some(first).filter(|f| f.content_length() > 0);
        let mut carry: Option<Bytes> = None;
        let streamed = async {
            loop {
                let permit = self
                    .part_budget
                    .clone()
                    .acquire_many_owned(units)
                    .await
                    .map_err(|e| Error::from(std::io::Error::other(e)).in_shard(shown.clone()))?;
                let payload = match pending.take() {
                    Some(first) => first,
                    None => {
                        let mut payload = PutPayloadMut::new();
                        while payload.content_length() < part {
                            let mut chunk = match carry.take() {
                                Some(chunk) => chunk,
                                None => match stream.next().await {
                                    Some(chunk) => chunk?,
                                    None => break,
                                },
                            };
                            let room = part - payload.content_length();
                            if chunk.len() > room {
                                carry = Some(chunk.split_off(room));
                            }
                            n += chunk.len() as u64;
                            payload.push(chunk);
                        }
                        payload
                    }
                };
                if payload.content_length() == 0 {
                    return Ok::<_, Error>(());
                }
                while tasks.len() >= upload_plan::PARTS_IN_FLIGHT {
                    join_one(&mut tasks, &shown).await?;
                }
                let put = upload.put_part(payload.freeze());
                tasks.spawn(async move {
                    let answered = put.await;
                    drop(permit);
                    answered
                });
                // Failed parts end the upload early.
                while let Some(done) = tasks.try_join_next() {
                    part_answer(done, &shown)?;
                }
            }
        }
        .await;
        let streamed = match streamed {
            Ok(()) => {
                async {
                    while !tasks.is_empty() {
                        join_one(&mut tasks, &shown).await?;
                    }
                    Ok(())
                }
                .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = streamed {
            tasks.shutdown().await;
            // Nothing becomes visible; abort so the parts do not linger (and bill).
            let _ = upload.abort().await;
            return Err(e);
        }
        match upload.complete().await {
            Ok(_) => Ok(n),
            Err(e) => {
                // As object_store's WriteMultipart: abort, and when that fails too, its
                // error is the one that says what is known (the completion may have landed).
                let e = match upload.abort().await {
                    Ok(()) => e,
                    Err(abort) => abort,
                };
                Err(remote_finish(&shown, e))
            }
        }
    }

    /// Copies `rel` of `src` to `rel` here inside the store (`CopyObject`: no byte passes
    /// through this process), when both are on one endpoint reached with the same
    /// credentials and the object is small enough for one copy: object_store's `copy`
    /// within a bucket, [`s3_copy`](super::s3_copy) between buckets. `Ok(false)`: not
    /// possible here, the caller streams instead.
    pub(super) async fn copy_from(&self, src: &Remote, rel: &str, bytes: u64) -> Result<bool> {
        if bytes > MAX_COPY_OBJECT {
            return Ok(false);
        }
        let (from, to) = (src.path(rel), self.path(rel));
        if self.same_bucket.is_none() || self.same_bucket != src.same_bucket {
            // Another bucket of the same endpoint: a CopyObject signed here.
            #[cfg(feature = "s3")]
            if let (Some(here), Some(there)) = (&self.bucket, &src.bucket)
                && here.same_endpoint(there)
            {
                let shown = self.display_of(rel);
                here.copy_from(there, from.as_ref(), to.as_ref(), &shown)
                    .await?;
                return Ok(true);
            }
            return Ok(false);
        }
        if from == to {
            return Ok(false);
        }
        // Within the bucket too, the copy is signed here where it can be: it asks for the
        // copy's CRC-64/NVME, which object_store's `copy` does not.
        #[cfg(feature = "s3")]
        if let Some(here) = &self.bucket
            && here.same_endpoint(here)
        {
            let shown = self.display_of(rel);
            here.copy_from(here, from.as_ref(), to.as_ref(), &shown)
                .await?;
            return Ok(true);
        }
        self.store
            .copy(&from, &to)
            .await
            .map(|()| true)
            .map_err(|e| {
                err(
                    format!("copy from {}", src.display_of(rel)),
                    &self.display_of(rel),
                    e,
                )
            })
    }

    pub(super) async fn create_new(&self, rel: &str, bytes: Bytes) -> Result<bool> {
        let shown = self.display_of(rel);
        if !self.multipart {
            return Err(read_only(shown));
        }
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&self.path(rel), PutPayload::from_bytes(bytes), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(err("PUT (If-None-Match: *)", &shown, e)),
        }
    }

    pub(super) async fn delete(&self, rel: &str) -> Result<()> {
        match self.store.delete(&self.path(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(err("DELETE", &self.display_of(rel), e)),
        }
    }
}

/// Waits for one part's answer.
async fn join_one(
    tasks: &mut tokio::task::JoinSet<object_store::Result<()>>,
    shown: &str,
) -> Result<()> {
    match tasks.join_next().await {
        Some(done) => part_answer(done, shown),
        None => Ok(()),
    }
}

/// A part's answer as this crate's error.
fn part_answer(
    done: std::result::Result<object_store::Result<()>, tokio::task::JoinError>,
    shown: &str,
) -> Result<()> {
    match done {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(err("upload part", shown, e)),
        Err(e) => Err(Error::from(std::io::Error::other(e)).in_shard(shown.to_string())),
    }
}

/// Writing to a plain HTTP(S) location, which has no write API.
fn read_only(shown: String) -> Error {
    Error::invalid(
        "cannot write here: an http(s) location is read-only (write to a local directory or \
         s3://bucket/prefix)",
    )
    .in_shard(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials() {
        assert_eq!(redact("https://u:p@host/x"), "https://host/x");
        assert_eq!(redact("https://host/x@y"), "https://host/x@y");
    }
}
