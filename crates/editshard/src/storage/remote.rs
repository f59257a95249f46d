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
    RetryConfig, WriteMultipart,
};
use tokio::io::AsyncReadExt;

use super::error::{local as local_err, remote as err, remote_advised, remote_finish};
use super::{ByteStream, MAX_RETRIES, StorageOptions};
use crate::error::{Error, Result};
#[cfg(feature = "s3")]
use crate::path::check_relative_path;

/// Parts of a multipart upload in flight at once.
const UPLOAD_CONCURRENCY: usize = 4;
/// Read size when streaming a local file into an upload.
const UPLOAD_READ: usize = 1 << 20;

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
    /// S3 with credentials: what a `CopyObject` from another bucket of the endpoint needs.
    #[cfg(feature = "s3")]
    bucket: Option<Arc<super::s3_copy::Bucket>>,
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
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(&region)
            .with_client_options(client_options(opts, allow_http))
            .with_http_connector(connector(opts, allow_http))
            .with_retry(retry_config(opts))
            // Every PUT and every part carries its SHA-256 (`x-amz-checksum-sha256`, the same
            // digest SigV4 signs, computed once), so the store refuses bytes damaged on the
            // way and keeps a one-PUT object's SHA-256, which is the manifest's.
            .with_checksum_algorithm(object_store::aws::Checksum::SHA256);
        if let Some(endpoint) = &endpoint {
            builder = builder
                .with_endpoint(endpoint.trim_end_matches('/'))
                .with_virtual_hosted_style_request(false);
        }
        let mut copies = None;
        match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(key), Some(secret)) => {
                builder = builder
                    .with_access_key_id(&key)
                    .with_secret_access_key(&secret);
                if let Some(token) = env("AWS_SESSION_TOKEN") {
                    builder = builder.with_token(token);
                }
                copies = Some(Arc::new(super::s3_copy::Bucket {
                    endpoint: endpoint
                        .as_deref()
                        .map(|e| e.trim_end_matches('/').to_string()),
                    region: region.clone(),
                    bucket: bucket.to_string(),
                    credential: object_store::aws::AwsCredential {
                        key_id: key,
                        secret_key: secret,
                        token: env("AWS_SESSION_TOKEN"),
                    },
                    client: super::s3_copy::client(opts.connect_timeout, opts.timeout)?,
                    retries: opts.retries.min(MAX_RETRIES),
                }));
            }
            // Anonymous: also keeps object_store from asking an instance-metadata endpoint
            // the user never named.
            _ => builder = builder.with_skip_signature(true),
        }
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
            bucket: copies,
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

    pub(super) async fn put_file(&self, rel: &str, file: &Path, part_size: usize) -> Result<()> {
        let local = file.display().to_string();
        let size = tokio::fs::metadata(file)
            .await
            .map_err(|e| local_err("stat", &local, e))?
            .len();
        if size <= part_size as u64 || !self.multipart {
            let data = tokio::fs::read(file)
                .await
                .map_err(|e| local_err("read", &local, e))?;
            return self.put(rel, data.into()).await;
        }
        let shown = self.display_of(rel);
        let upload = self
            .store
            .put_multipart(&self.path(rel))
            .await
            .map_err(|e| err("start multipart upload", &shown, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, part_size);
        let streamed = async {
            let mut f = tokio::fs::File::open(file)
                .await
                .map_err(|e| local_err("open", &local, e))?;
            let mut buf = vec![0u8; UPLOAD_READ];
            loop {
                let n = f
                    .read(&mut buf)
                    .await
                    .map_err(|e| local_err("read", &local, e))?;
                if n == 0 {
                    return Ok::<_, Error>(());
                }
                writer
                    .wait_for_capacity(UPLOAD_CONCURRENCY)
                    .await
                    .map_err(|e| err("upload part", &shown, e))?;
                writer.write(&buf[..n]);
            }
        }
        .await;
        match streamed {
            Ok(()) => writer
                .finish()
                .await
                .map(|_| ())
                .map_err(|e| remote_finish(&shown, e)),
            Err(e) => {
                // Nothing becomes visible; abort so the parts do not linger (and bill).
                let _ = writer.abort().await;
                Err(e)
            }
        }
    }

    pub(super) async fn put_stream(
        &self,
        rel: &str,
        mut stream: ByteStream,
        part_size: usize,
    ) -> Result<u64> {
        let shown = self.display_of(rel);
        if !self.multipart {
            return Err(read_only(shown));
        }
        // Up to one part is buffered: a small object goes up in one PUT, like put_file.
        let mut first = bytes::BytesMut::new();
        let mut ended = true;
        while let Some(chunk) = stream.next().await {
            first.extend_from_slice(&chunk?);
            if first.len() >= part_size {
                ended = false;
                break;
            }
        }
        if ended {
            let n = first.len() as u64;
            return self.put(rel, first.freeze()).await.map(|()| n);
        }
        let upload = self
            .store
            .put_multipart(&self.path(rel))
            .await
            .map_err(|e| err("start multipart upload", &shown, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, part_size);
        let mut n = first.len() as u64;
        writer.write(&first);
        drop(first);
        let streamed = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                writer
                    .wait_for_capacity(UPLOAD_CONCURRENCY)
                    .await
                    .map_err(|e| err("upload part", &shown, e))?;
                writer.write(&chunk);
                n += chunk.len() as u64;
            }
            Ok::<_, Error>(())
        }
        .await;
        match streamed {
            Ok(()) => writer
                .finish()
                .await
                .map(|_| n)
                .map_err(|e| remote_finish(&shown, e)),
            Err(e) => {
                // Nothing becomes visible; abort so the parts do not linger (and bill).
                let _ = writer.abort().await;
                Err(e)
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
