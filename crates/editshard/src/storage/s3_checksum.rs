//! What an S3 store says it holds: one `HEAD` with `x-amz-checksum-mode: ENABLED`, which
//! reports the object's length and, where the store keeps one, its whole-object
//! CRC-64/NVME. Compared with the manifest's `crc64nvme`, this checks a stored shard without
//! reading it (object_store's `head` does not ask for checksums, so the request is made here).

use std::time::Duration;

use object_store::client::HttpRequestBody;

use super::StoredObject;
use super::s3_copy::Bucket;
use crate::error::{Error, Result};

impl Bucket {
    /// `HEAD key` asking for checksums; `Ok(None)` when there is no such object. `shown`
    /// names the object in errors.
    pub async fn head_checksum(&self, key: &str, shown: &str) -> Result<Option<StoredObject>> {
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                let wait = Duration::from_millis(100u64 << attempt.min(6));
                tokio::time::sleep(wait.min(Duration::from_secs(5))).await;
            }
            match self.head_once(key).await {
                Ok(found) => return Ok(found),
                Err((retry, why)) => {
                    last = why;
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(Error::from(std::io::Error::other(format!(
            "HEAD (with x-amz-checksum-mode) failed: {last} (check the credentials and that \
             they may read this bucket)"
        )))
        .in_shard(shown.to_string()))
    }

    /// One attempt; the error says whether another may succeed.
    async fn head_once(
        &self,
        key: &str,
    ) -> std::result::Result<Option<StoredObject>, (bool, String)> {
        let fatal = |e: String| (false, e);
        let mut request = http::Request::builder()
            .method(http::Method::HEAD)
            .uri(self.url(key))
            .header("x-amz-checksum-mode", "ENABLED")
            .body(HttpRequestBody::empty())
            .map_err(|e| fatal(e.to_string()))?;
        let response = self.send_signed(&mut request).await?;
        let status = response.status();
        if status.as_u16() == 404 {
            return Ok(None);
        }
        if !status.is_success() {
            let retry = status.is_server_error() || status.as_u16() == 429;
            return Err((retry, format!("HTTP {}", status.as_u16())));
        }
        Ok(Some(stored_object(response.headers()).map_err(fatal)?))
    }
}

/// The length and CRC a HEAD answer reports. A CRC-64/NVME of another checksum type than
/// `FULL_OBJECT` would not be the object's own CRC, and is not taken (S3 has no other type for
/// this algorithm; the check keeps a store that invents one from passing for intact).
fn stored_object(headers: &http::HeaderMap) -> std::result::Result<StoredObject, String> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let bytes = text("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or("the answer has no Content-Length")?;
    let full_object = text("x-amz-checksum-type").is_none_or(|t| t == "FULL_OBJECT");
    let crc64nvme = match text("x-amz-checksum-crc64nvme") {
        Some(v) if full_object => Some(editshard_format::crc64::decode(v.trim()).ok_or_else(|| {
            format!("the store reports x-amz-checksum-crc64nvme {v:?}, which is not the base64 of 8 bytes")
        })?),
        _ => None,
    };
    Ok(StoredObject { bytes, crc64nvme })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_length_and_full_object_crc() {
        let mut h = http::HeaderMap::new();
        h.insert("content-length", "637".parse().unwrap());
        assert_eq!(
            stored_object(&h),
            Ok(StoredObject {
                bytes: 637,
                crc64nvme: None
            })
        );
        h.insert("x-amz-checksum-crc64nvme", "rosUhgp5mIg=".parse().unwrap());
        assert_eq!(
            stored_object(&h).unwrap().crc64nvme,
            Some(0xAE8B_1486_0A79_9888)
        );
        h.insert("x-amz-checksum-type", "COMPOSITE".parse().unwrap());
        assert_eq!(stored_object(&h).unwrap().crc64nvme, None);
        h.insert("x-amz-checksum-type", "FULL_OBJECT".parse().unwrap());
        h.insert("x-amz-checksum-crc64nvme", "nonsense".parse().unwrap());
        assert!(stored_object(&h).unwrap_err().contains("nonsense"));
        h.remove("content-length");
        assert!(stored_object(&h).is_err());
    }
}
