//! `CopyObject` on one S3 endpoint, signed here: object_store's `copy` names the source in its
//! own bucket only, and asks for no checksum. The store copies the bytes itself; nothing
//! passes through this process. Each copy asks the store to compute the copy's CRC-64/NVME
//! (`x-amz-checksum-algorithm`), which [`head_checksum`](Bucket::head_checksum) then reports
//! for comparison with the manifest.

use std::time::Duration;

use object_store::aws::{AwsAuthorizer, AwsCredential};
use object_store::client::HttpRequestBody;

use crate::error::{Error, Result};

/// One S3 bucket as reached by a location: where, and with which credentials.
pub(super) struct Bucket {
    /// `http(s)://host[:port]` given by the user (path-style requests), or `None` for AWS
    /// (virtual-hosted requests to `BUCKET.s3.REGION.amazonaws.com`).
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    /// `None`: anonymous (unsigned requests; reads of a public bucket only).
    pub credential: Option<AwsCredential>,
    /// Uploads carry SHA-256 rather than CRC-64/NVME (`EDITSHARD_S3_CHECKSUM=sha256`).
    pub sha256_checksums: bool,
    pub client: reqwest::Client,
    pub retries: usize,
}

impl Bucket {
    /// The same endpoint, region and access key: a `CopyObject` from `other` into this
    /// bucket is signed by one key.
    pub fn same_endpoint(&self, other: &Bucket) -> bool {
        let key = |b: &Bucket| b.credential.as_ref().map(|c| c.key_id.clone());
        self.endpoint == other.endpoint
            && self.region == other.region
            && key(self).is_some()
            && key(self) == key(other)
    }

    /// Signs `request` with this bucket's credentials (anonymous: leaves it unsigned).
    pub(super) fn sign(
        &self,
        request: &mut http::Request<HttpRequestBody>,
    ) -> std::result::Result<(), String> {
        match &self.credential {
            Some(credential) => AwsAuthorizer::new(credential, "s3", &self.region)
                .try_authorize(request, None)
                .map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// Signs `request` and sends it (a body-less request: HEAD, or a PUT with its
    /// parameters in headers); the error says whether another attempt may succeed.
    pub(super) async fn send_signed(
        &self,
        request: &mut http::Request<HttpRequestBody>,
    ) -> std::result::Result<reqwest::Response, (bool, String)> {
        self.sign(request).map_err(|e| (false, e))?;
        let mut builder = self
            .client
            .request(request.method().clone(), request.uri().to_string());
        for (name, value) in request.headers() {
            builder = builder.header(name, value);
        }
        builder
            .send()
            .await
            .map_err(|e| (true, format!("no answer: {e}")))
    }

    pub(super) fn url(&self, key: &str) -> String {
        match &self.endpoint {
            Some(e) => format!(
                "{}/{}/{}",
                e.trim_end_matches('/'),
                self.bucket,
                encode(key)
            ),
            None => format!(
                "https://{}.s3.{}.amazonaws.com/{}",
                self.bucket,
                self.region,
                encode(key)
            ),
        }
    }

    /// Copies `src_key` of `src` to `key` here. `shown` names the destination in errors.
    pub async fn copy_from(
        &self,
        src: &Bucket,
        src_key: &str,
        key: &str,
        shown: &str,
    ) -> Result<()> {
        let source = format!("{}/{}", src.bucket, encode(src_key));
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                let wait = Duration::from_millis(100u64 << attempt.min(6));
                tokio::time::sleep(wait.min(Duration::from_secs(5))).await;
            }
            match self.copy_once(&source, key).await {
                Ok(()) => return Ok(()),
                Err((retry, why)) => {
                    last = why;
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(Error::from(std::io::Error::other(format!(
            "CopyObject from {source} failed: {last} (check that the credentials may read the \
             source bucket and write this one)"
        )))
        .in_shard(shown.to_string()))
    }

    /// One attempt; the error says whether another may succeed.
    async fn copy_once(&self, source: &str, key: &str) -> std::result::Result<(), (bool, String)> {
        let fatal = |e: String| (false, e);
        let mut request = http::Request::builder()
            .method(http::Method::PUT)
            .uri(self.url(key))
            .header("x-amz-copy-source", source)
            // The copy keeps a whole-object CRC-64/NVME (S3 computes it, or carries the
            // source's over), which is then compared with the manifest's.
            .header("x-amz-checksum-algorithm", "CRC64NVME")
            .header(http::header::CONTENT_LENGTH, "0")
            .body(HttpRequestBody::empty())
            .map_err(|e| fatal(e.to_string()))?;
        let response = self.send_signed(&mut request).await?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| (true, format!("answer cut short: {e}")))?;
        // S3 may answer 200 and report the failure in the body.
        if status.is_success() && !body.contains("<Error>") {
            return Ok(());
        }
        let retry = status.is_server_error() || status.as_u16() == 429 || status.is_success();
        let code = body
            .split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map_or("", |(code, _)| code);
        Err((retry, format!("HTTP {} {code}", status.as_u16())))
    }
}

/// A key as S3 wants it in a URL path and in `x-amz-copy-source`: every byte but the
/// unreserved ones and `/` percent-encoded.
fn encode(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A client for the copies: no bound on the whole request (a copy of gigabytes takes a
/// while), the read timeout bounds a stalled answer.
pub(super) fn client(connect: Duration, read: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(connect)
        .read_timeout(read.max(Duration::from_secs(300)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::invalid(format!("cannot build the HTTP client for S3 copies: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_keys_as_s3_wants() {
        assert_eq!(encode("a/b-c_d.e~f"), "a/b-c_d.e~f");
        assert_eq!(encode("a b+c"), "a%20b%2Bc");
        assert_eq!(encode("é"), "%C3%A9");
    }
}
