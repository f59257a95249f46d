//! One shard: is it already at DST and intact, and copying it so that a damaged copy is never
//! published.
//!
//! The copy streams SRC through [`checked`] into [`Location::put_stream`]: the wrapper counts
//! and hashes every chunk on its way through and, if the bytes differ from the manifest entry,
//! ends the stream with an error instead of a clean end. `put_stream` publishes only on a
//! clean end (local: rename of a temporary file; S3: completion of the multipart upload), so
//! the check happens before anything is visible under the shard's name, without reading the
//! shard twice and without holding it in memory.
//!
//! Whether a shard at DST is intact is asked of the store first ([`inspect`]): an S3 store
//! reports the object's CRC-64/NVME by HEAD, compared with the manifest's `crc64nvme`, and the
//! object is not read. Where either is missing (a store that keeps no checksum, a manifest
//! written before the field), the object is read and hashed, and [`Progress`] counts it so
//! the caller can say so once.

use std::path::Path;
use std::sync::Arc;

use futures_util::{FutureExt, StreamExt};
use sha2::{Digest, Sha256};

use super::progress::{Progress, ReadBack};
use super::ranged::{Downloaded, RangedDownload};
use crate::crc64::{Crc64Nvme, encode as crc_text};
use crate::error::{Error, Result};
use crate::manifest::ShardEntry;
use crate::storage::{ByteStream, Known, Location};

/// What a shard should be: its manifest entry's length, SHA-256 and (when the manifest
/// records it) CRC-64/NVME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub bytes: u64,
    pub sha256: String,
    pub crc64nvme: Option<u64>,
}

impl From<&ShardEntry> for Expected {
    fn from(e: &ShardEntry) -> Expected {
        Expected {
            bytes: e.bytes,
            sha256: e.sha256.to_ascii_lowercase(),
            crc64nvme: e.crc64nvme_value(),
        }
    }
}

impl Expected {
    /// Compares a whole shard's digests with the manifest's: `Err` says how they differ.
    pub(crate) fn check_digests(&self, sha256: &str, crc: u64) -> std::result::Result<(), String> {
        if sha256 != self.sha256 {
            return Err(format!(
                "SHA-256 {sha256} where the manifest says {}",
                self.sha256
            ));
        }
        match self.crc64nvme {
            Some(want) if crc != want => Err(format!(
                "CRC-64/NVME {} where the manifest says {}",
                crc_text(crc),
                crc_text(want)
            )),
            _ => Ok(()),
        }
    }
}

/// What is at DST under a shard's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtDest {
    Missing,
    /// Present with the expected length and SHA-256.
    Intact,
    /// Present but different: its length, and when the length matched, its SHA-256 (read
    /// here) or the CRC-64/NVME its store reports.
    Differs {
        bytes: u64,
        sha256: Option<String>,
        crc64nvme: Option<u64>,
    },
}

impl AtDest {
    /// A sentence for reports.
    pub fn describe(&self, want: &Expected) -> String {
        match self {
            AtDest::Missing => "missing".into(),
            AtDest::Intact => "present and verified".into(),
            AtDest::Differs {
                sha256: Some(sha), ..
            } => format!("SHA-256 {sha} where the manifest says {}", want.sha256),
            AtDest::Differs {
                crc64nvme: Some(crc),
                ..
            } => format!(
                "CRC-64/NVME {} (as its store reports it) where the manifest says {}: the \
                 stored object is not the shard",
                crc_text(*crc),
                want.crc64nvme.map_or_else(|| "none".into(), crc_text)
            ),
            AtDest::Differs { bytes, .. } => {
                format!("{bytes} bytes where the manifest says {}", want.bytes)
            }
        }
    }
}

/// An object's bytes as read: length, SHA-256 and CRC-64/NVME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hashed {
    pub bytes: u64,
    pub sha256: String,
    pub crc64nvme: u64,
}

impl Hashed {
    /// Whether these are the bytes `want` describes (its CRC too, when it has one).
    pub fn matches(&self, want: &Expected) -> bool {
        self.bytes == want.bytes
            && self.sha256 == want.sha256
            && want.crc64nvme.is_none_or(|c| c == self.crc64nvme)
    }
}

/// Length, SHA-256 and CRC-64/NVME of an object, read as a stream (progress counts the
/// bytes).
pub(crate) async fn hash_object(loc: &Location, rel: &str, progress: &Progress) -> Result<Hashed> {
    let mut stream = loc.get_stream(rel).await?;
    let mut hasher = Sha256::new();
    let mut crc = Crc64Nvme::new();
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        crc.update(&chunk);
        n += chunk.len() as u64;
        progress.bytes(chunk.len() as u64);
    }
    Ok(Hashed {
        bytes: n,
        sha256: crate::hex::hex(&hasher.finalize()),
        crc64nvme: crc.finalize(),
    })
}

/// Checks what DST holds under `rel` against `want`, asking the store first: one HEAD gives
/// the length and, from an S3 store that keeps it, the object's CRC-64/NVME, which settles it
/// when the manifest records one. Otherwise the object is read and hashed (only when the
/// length matches), and `progress` counts why.
pub(crate) async fn inspect(
    dst: &Location,
    rel: &str,
    want: &Expected,
    progress: &Progress,
) -> Result<AtDest> {
    let Some(stored) = dst.head_stored(rel).await? else {
        return Ok(AtDest::Missing);
    };
    if stored.bytes != want.bytes {
        return Ok(AtDest::Differs {
            bytes: stored.bytes,
            sha256: None,
            crc64nvme: None,
        });
    }
    match (stored.crc64nvme, want.crc64nvme) {
        (Some(have), Some(crc)) if have == crc => return Ok(AtDest::Intact),
        (Some(have), Some(_)) => {
            return Ok(AtDest::Differs {
                bytes: stored.bytes,
                sha256: None,
                crc64nvme: Some(have),
            });
        }
        (None, _) if dst.is_local().is_some() => {}
        (None, _) => progress.read_back(ReadBack::StoreHasNoCrc),
        (Some(_), None) => progress.read_back(ReadBack::ManifestHasNoCrc),
    }
    inspect_read(dst, rel, want, progress).await
}

/// [`inspect`] by reading the object and hashing it, whatever the store reports.
pub(crate) async fn inspect_read(
    dst: &Location,
    rel: &str,
    want: &Expected,
    progress: &Progress,
) -> Result<AtDest> {
    match dst.head(rel).await? {
        None => Ok(AtDest::Missing),
        Some(bytes) if bytes != want.bytes => Ok(AtDest::Differs {
            bytes,
            sha256: None,
            crc64nvme: None,
        }),
        Some(_) => {
            let hashed = hash_object(dst, rel, progress).await?;
            if hashed.matches(want) {
                progress.learn(rel, hashed.crc64nvme);
                Ok(AtDest::Intact)
            } else {
                Ok(AtDest::Differs {
                    bytes: hashed.bytes,
                    sha256: Some(hashed.sha256),
                    crc64nvme: None,
                })
            }
        }
    }
}

/// The error for a source whose bytes are not its manifest's (`detail` says how).
pub(crate) fn damaged(what: &str, detail: String) -> Error {
    Error::malformed(format!(
        "{detail}: the source does not match its manifest, so nothing was written; \
         repair or re-create the source dataset (`editshard verify` shows the damage)"
    ))
    .in_shard(what.to_string())
}

struct Check {
    inner: ByteStream,
    /// The shard's path at DST, under which its CRC is learned.
    rel: String,
    hasher: Sha256,
    crc: Crc64Nvme,
    seen: u64,
    want: Expected,
    /// Names the source in errors.
    what: String,
    progress: Arc<Progress>,
    done: bool,
}

impl Check {
    /// Compares the digests of every byte seen with the manifest's; when they match, the
    /// CRC is learned for the shard's manifest entry at DST.
    fn finish(&mut self) -> std::result::Result<(), String> {
        let sha = crate::hex::hex(&std::mem::take(&mut self.hasher).finalize());
        let crc = self.crc.finalize();
        self.want.check_digests(&sha, crc)?;
        self.progress.learn(&self.rel, crc);
        Ok(())
    }
}

/// `stream` as it is, except that it fails rather than ends when its bytes are not `want`.
/// `rel` is where the bytes go (their CRC is learned under it when they match).
pub(crate) fn checked(
    stream: ByteStream,
    want: Expected,
    what: String,
    rel: &str,
    progress: Arc<Progress>,
) -> ByteStream {
    let state = Check {
        inner: stream,
        rel: rel.to_string(),
        hasher: Sha256::new(),
        crc: Crc64Nvme::new(),
        seen: 0,
        want,
        what,
        progress,
        done: false,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        match st.inner.next().await {
            Some(Ok(chunk)) => {
                st.seen += chunk.len() as u64;
                if st.seen > st.want.bytes {
                    st.done = true;
                    let e = damaged(
                        &st.what,
                        format!("longer than the {} bytes in the manifest", st.want.bytes),
                    );
                    return Some((Err(e), st));
                }
                st.hasher.update(&chunk);
                st.crc.update(&chunk);
                // The last chunk is passed on only once the digests matched: a destination
                // that publishes on the declared length (one streamed PUT) then never sees
                // a complete body of the wrong bytes.
                if st.seen == st.want.bytes
                    && let Err(detail) = st.finish()
                {
                    st.done = true;
                    return Some((Err(damaged(&st.what, detail)), st));
                }
                st.progress.bytes(chunk.len() as u64);
                Some((Ok(chunk), st))
            }
            Some(Err(e)) => {
                st.done = true;
                Some((Err(e), st))
            }
            None => {
                st.done = true;
                // A complete stream's digest was checked with its last chunk.
                if st.seen != st.want.bytes {
                    let e = damaged(
                        &st.what,
                        format!(
                            "{} bytes where the manifest says {}",
                            st.seen, st.want.bytes
                        ),
                    );
                    return Some((Err(e), st));
                }
                if st.seen == 0
                    && let Err(detail) = st.finish()
                {
                    // No chunk came whose digests were checked.
                    return Some((Err(damaged(&st.what, detail)), st));
                }
                None
            }
        }
    })
    .boxed()
}

/// Removes temporary files a killed run left next to `rel` in a local DST
/// (`NAME.<pid>-<n>.partial`, as [`Location::put_stream`] names them) whose process is gone,
/// so an interrupted mirror that is resumed leaves nothing behind. Best effort: S3 has no
/// such files (an unfinished multipart upload is invisible; a bucket lifecycle rule
/// clears it).
pub fn remove_stale_partials(dst: &Location, rel: &str) {
    let Some(root) = dst.is_local() else {
        return;
    };
    let (dir, name) = crate::safe_dir::split(rel);
    // Entered without following a link: nothing outside DST is listed or removed.
    let Ok(Some(parent)) = crate::safe_dir::SafeDir::open_inside(root, Path::new(dir)) else {
        return;
    };
    let Ok(entries) = parent.names() else {
        return;
    };
    for entry in entries {
        let file = entry.to_string_lossy().into_owned();
        let Some((base, Some(pid))) = crate::atomic::temporary_of(&file) else {
            continue;
        };
        let gone = pid != std::process::id()
            && !Path::new("/proc").join(pid.to_string()).exists()
            && Path::new("/proc/self").exists();
        if base == name && gone {
            let _ = parent.remove_file(&entry);
        }
    }
}

/// Copies `rel` from `src` to `dst`: inside the store where it can (two S3 locations on one
/// endpoint: the store copies the object itself and no byte passes through here), else
/// streamed and published only if its bytes are `want`.
///
/// Returns whether the store made the copy: those bytes were not hashed here, and the caller
/// reads them back unless told to trust the store's copy.
///
/// A large shard from a remote SRC to a local DST is downloaded with ranged GETs in
/// parallel ([`ranged`](super::ranged), as `ranges` says).
pub(crate) async fn copy(
    src: &Location,
    dst: &Location,
    rel: &str,
    want: &Expected,
    ranges: &RangedDownload,
    progress: &Arc<Progress>,
) -> Result<bool> {
    if dst.copy_from(src, rel, want.bytes).await? {
        progress.bytes(want.bytes);
        return Ok(true);
    }
    remove_stale_partials(dst, rel);
    if want.bytes >= ranges.min_bytes
        && src.is_local().is_none()
        && dst.is_local().is_some()
        && super::ranged::download(src, dst, rel, want, ranges, progress).await? == Downloaded::Done
    {
        return Ok(false);
    }
    let open = || {
        async {
            let stream = src.get_stream(rel).await?;
            Ok(checked(
                stream,
                want.clone(),
                src.display_of(rel),
                rel,
                progress.clone(),
            ))
        }
        .boxed()
    };
    match crate::hex::unhex32(&want.sha256) {
        Some(sha256) => {
            let known = Known {
                bytes: want.bytes,
                sha256,
                crc64nvme: want.crc64nvme,
            };
            dst.put_known(rel, &known, &open).await?;
        }
        // Not a digest: the check refuses the bytes as they pass.
        None => {
            dst.put_stream(rel, open().await?).await?;
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn stream_of(parts: &[&'static [u8]]) -> ByteStream {
        let items: Vec<Result<Bytes>> = parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        futures_util::stream::iter(items).boxed()
    }

    fn expect(data: &[u8]) -> Expected {
        Expected {
            bytes: data.len() as u64,
            sha256: crate::hex::hex(&Sha256::digest(data)),
            crc64nvme: Some(crate::crc64::crc64nvme(data)),
        }
    }

    async fn drain(s: ByteStream) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut s = s;
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn passes_matching_bytes_and_fails_others() {
        let p = Arc::new(Progress::new(Arc::new(super::super::Quiet)));
        let good = checked(
            stream_of(&[b"ab", b"cd"]),
            expect(b"abcd"),
            "x".into(),
            "x",
            p.clone(),
        );
        assert_eq!(drain(good).await.unwrap(), b"abcd");
        let cases: [(Vec<&'static [u8]>, &str); 3] = [
            (vec![b"ab", b"cx"], "SHA-256"),
            (vec![b"ab", b"c"], "3 bytes"),
            (vec![b"ab", b"cde"], "longer"),
        ];
        for (parts, want) in cases {
            let s = checked(
                stream_of(&parts),
                expect(b"abcd"),
                "x".into(),
                "x",
                p.clone(),
            );
            let e = drain(s).await.unwrap_err().to_string();
            assert!(e.contains(want) && e.contains('x'), "{e}");
        }
        // The manifest's CRC is checked too (here the only thing that differs).
        let mut crc_differs = expect(b"abcd");
        crc_differs.crc64nvme = Some(1);
        let s = checked(
            stream_of(&[b"abcd"]),
            crc_differs,
            "x".into(),
            "x",
            p.clone(),
        );
        let e = drain(s).await.unwrap_err().to_string();
        assert!(
            e.contains("CRC-64/NVME") && e.contains("AAAAAAAAAAE="),
            "{e}"
        );
    }
}
