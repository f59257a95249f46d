//! One streamed `PutObject` of an object whose length and SHA-256 are known before its first
//! byte is read (a shard named by a manifest), signed here.
//!
//! object_store's `put` wants the whole body in memory and hashes it again to sign it and for
//! its checksum header. Here nothing is hashed for the request: the manifest's SHA-256 *is*
//! the object's checksum (`x-amz-checksum-sha256`, covered by the signature), so the store
//! itself refuses any byte that differs from the manifest, and keeps the manifest's digest
//! as the object's own. The payload is not signed besides (`UNSIGNED-PAYLOAD`): the
//! checksum already binds the body, and a signed payload would have the store hash every
//! byte a second time (measured: a fifth of s3s-fs's CPU for an upload, on the cores the
//! client shares with it). A store that ignores checksum headers then checks nothing of the
//! body; over `https://` TLS still does, and the mirror's HEAD checks the length. The body streams from the
//! source in the source's chunks (no copy, no part buffer): memory per upload is the chunks
//! in flight, about 1 MiB. A single request also spares the store the concatenation a
//! multipart upload costs it on completion.
//!
//! Published whole or not at all: the body is declared by `Content-Length`, so a body cut
//! short (the source failed its check: [`crate::mirror::shard`] withholds the last chunk
//! until the digest matched) never becomes an object. Retried like object_store's requests
//! (5xx, 429, a refused digest, a lost connection), each attempt reading the source again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use object_store::aws::AwsAuthorizer;
use object_store::client::HttpRequestBody;

use super::error::RemoteError;
use super::s3_copy::Bucket;
use super::{ByteStream, Known, Opener};
use crate::error::{Error, Result};

/// Why one attempt failed: whether another may succeed, the status, the text.
struct Failed {
    retry: bool,
    status: Option<u16>,
    why: String,
}

/// The HTTP client of streamed PUTs, and how long one may make no progress.
pub(super) struct PutClient {
    client: reqwest::Client,
    stall: Duration,
}

impl PutClient {
    /// No timeout on the request as a whole, nor reqwest's read timeout (which runs from the
    /// start of the request, so that it would bound the upload of the body): a PUT fails
    /// when its body makes no progress for `stall`, or its answer takes longer than that
    /// once the body is sent ([`PutClient::put_once`]).
    pub fn new(connect: Duration, stall: Duration) -> Result<PutClient> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                Error::invalid(format!("cannot build the HTTP client for S3 uploads: {e}"))
            })?;
        Ok(PutClient { client, stall })
    }

    /// Uploads the object `key` of `bucket` (`shown` in errors) in one streamed PUT.
    pub async fn put(
        &self,
        bucket: &Bucket,
        key: &str,
        known: &Known,
        open: &Opener<'_>,
        shown: &str,
    ) -> Result<()> {
        let mut last = Failed {
            retry: false,
            status: None,
            why: String::new(),
        };
        for attempt in 0..=bucket.retries {
            if attempt > 0 {
                let wait = Duration::from_millis(100u64 << attempt.min(6));
                tokio::time::sleep(wait.min(Duration::from_secs(5))).await;
            }
            // The source's own failure (unreadable, or not the manifest's bytes) is its
            // error, not the store's, and not retried here.
            let source_error = Arc::new(Mutex::new(None));
            let body = open().await?;
            match self.put_once(bucket, key, known, body, &source_error).await {
                Ok(()) => return Ok(()),
                Err(failed) => {
                    if let Some(e) = source_error.lock().ok().and_then(|mut e| e.take()) {
                        return Err(e);
                    }
                    let retry = failed.retry;
                    last = failed;
                    if !retry {
                        break;
                    }
                }
            }
        }
        let class = match last.status {
            Some(401 | 403) => std::io::ErrorKind::PermissionDenied,
            _ => std::io::ErrorKind::Other,
        };
        Err(Error::from(RemoteError {
            op: "PUT".into(),
            status: last.status,
            class,
            advice: None,
            source: Box::new(std::io::Error::other(last.why)),
        })
        .in_shard(shown.to_string()))
    }

    async fn put_once(
        &self,
        bucket: &Bucket,
        key: &str,
        known: &Known,
        body: ByteStream,
        source_error: &Arc<Mutex<Option<Error>>>,
    ) -> std::result::Result<(), Failed> {
        let fatal = |why: String| Failed {
            retry: false,
            status: None,
            why,
        };
        let Some(credential) = &bucket.credential else {
            return Err(fatal("a streamed PUT needs credentials to sign it".into()));
        };
        // The manifest's CRC-64/NVME where it records one (and the store takes that
        // algorithm): the store keeps it as the object's checksum, which a later mirror or
        // `verify --remote` compares by HEAD; otherwise its SHA-256.
        let (name, value) = match known.crc64nvme {
            Some(crc) if !bucket.sha256_checksums => {
                ("x-amz-checksum-crc64nvme", base64(&crc.to_be_bytes()))
            }
            _ => ("x-amz-checksum-sha256", base64(&known.sha256)),
        };
        let mut request = http::Request::builder()
            .method(http::Method::PUT)
            .uri(bucket.url(key))
            .header(name, value)
            .body(HttpRequestBody::empty())
            .map_err(|e| fatal(e.to_string()))?;
        AwsAuthorizer::new(credential, "s3", &bucket.region)
            .with_sign_payload(false)
            .try_authorize(&mut request, None)
            .map_err(|e| fatal(e.to_string()))?;
        let slot = source_error.clone();
        // Milliseconds from `start` to the last progress: a chunk taken by the connection,
        // or the end of the body (from which the answer is awaited).
        let start = Instant::now();
        let progress = Arc::new(AtomicU64::new(0));
        let moved = progress.clone();
        let mark = move || {
            let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
            moved.store(ms, Ordering::Relaxed);
        };
        let end_mark = mark.clone();
        let body = body
            .map(move |chunk| {
                mark();
                chunk.map_err(|e| {
                    let shown = e.to_string();
                    if let Ok(mut slot) = slot.lock() {
                        *slot = Some(e);
                    }
                    std::io::Error::other(shown)
                })
            })
            .chain(futures_util::stream::poll_fn(move |_| {
                end_mark();
                std::task::Poll::Ready(None)
            }));
        let mut builder = self
            .client
            .put(request.uri().to_string())
            .header(http::header::CONTENT_LENGTH, known.bytes)
            .body(reqwest::Body::wrap_stream(body));
        for (name, value) in request.headers() {
            builder = builder.header(name, value);
        }
        let send = builder.send();
        tokio::pin!(send);
        let tick = (self.stall / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let response = loop {
            tokio::select! {
                answer = &mut send => break answer,
                () = tokio::time::sleep(tick) => {
                    let last = Duration::from_millis(progress.load(Ordering::Relaxed));
                    if start.elapsed().saturating_sub(last) > self.stall {
                        return Err(Failed {
                            retry: true,
                            status: None,
                            why: format!(
                                "no progress for {} s (--timeout)",
                                self.stall.as_secs_f32()
                            ),
                        });
                    }
                }
            }
        };
        let response = response.map_err(|e| Failed {
            retry: true,
            status: None,
            why: format!("no answer: {}", root_cause(&e)),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let code = text
            .split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map_or("", |(code, _)| code);
        // A digest the store refused: the bytes were damaged on the way; send them again.
        let damaged = matches!(
            code,
            "BadDigest" | "XAmzContentSHA256Mismatch" | "InvalidDigest"
        );
        Err(Failed {
            retry: damaged || status.is_server_error() || status.as_u16() == 429,
            status: Some(status.as_u16()),
            why: format!("HTTP {} {code}", status.as_u16()),
        })
    }
}

/// The error with its causes (reqwest's own text says only "error sending request").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(next) = source {
        text.push_str(": ");
        text.push_str(&next.to_string());
        source = next.source();
    }
    text
}

/// Standard base64 with padding, as S3's checksum headers carry digests.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_as_s3_checksums_want() {
        // SHA-256 of the empty string, as S3 documents it.
        let empty =
            crate::hex::unhex32("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
                .unwrap();
        assert_eq!(
            base64(&empty),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }
}
