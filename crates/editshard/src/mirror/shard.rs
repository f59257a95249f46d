//! One shard: is it already at DST and intact, and copying it so that a damaged copy is never
//! published.
//!
//! The copy streams SRC through [`checked`] into [`Location::put_stream`]: the wrapper counts
//! and hashes every chunk on its way through and, if the bytes differ from the manifest entry,
//! ends the stream with an error instead of a clean end. `put_stream` publishes only on a
//! clean end (local: rename of a temporary file; S3: completion of the multipart upload), so
//! the check happens before anything is visible under the shard's name, without reading the
//! shard twice and without holding it in memory.

use std::path::Path;
use std::sync::Arc;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::progress::Progress;
use super::ranged::{Downloaded, RangedDownload};
use crate::error::{Error, Result};
use crate::manifest::ShardEntry;
use crate::storage::{ByteStream, Location};

/// What a shard should be: its manifest entry's length and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub bytes: u64,
    pub sha256: String,
}

impl From<&ShardEntry> for Expected {
    fn from(e: &ShardEntry) -> Expected {
        Expected {
            bytes: e.bytes,
            sha256: e.sha256.to_ascii_lowercase(),
        }
    }
}

/// What is at DST under a shard's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtDest {
    Missing,
    /// Present with the expected length and SHA-256.
    Intact,
    /// Present but different: its length, and its SHA-256 when the length matched.
    Differs {
        bytes: u64,
        sha256: Option<String>,
    },
}

impl AtDest {
    /// A sentence for reports.
    pub fn describe(&self, want: &Expected) -> String {
        match self {
            AtDest::Missing => "missing".into(),
            AtDest::Intact => "present and verified".into(),
            AtDest::Differs {
                bytes,
                sha256: None,
            } => {
                format!("{bytes} bytes where the manifest says {}", want.bytes)
            }
            AtDest::Differs {
                sha256: Some(sha), ..
            } => format!("SHA-256 {sha} where the manifest says {}", want.sha256),
        }
    }
}

/// Length and SHA-256 of an object, read as a stream (progress counts the bytes).
pub(crate) async fn hash_object(
    loc: &Location,
    rel: &str,
    progress: &Progress,
) -> Result<(u64, String)> {
    let mut stream = loc.get_stream(rel).await?;
    let mut hasher = Sha256::new();
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        n += chunk.len() as u64;
        progress.bytes(chunk.len() as u64);
    }
    Ok((n, crate::hex::hex(&hasher.finalize())))
}

/// Checks what DST holds under `rel` against `want`. The SHA-256 is only computed when the
/// length already matches (a HEAD settles the rest).
pub(crate) async fn inspect(
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
        }),
        Some(_) => {
            let (bytes, sha) = hash_object(dst, rel, progress).await?;
            if bytes == want.bytes && sha == want.sha256 {
                Ok(AtDest::Intact)
            } else {
                Ok(AtDest::Differs {
                    bytes,
                    sha256: Some(sha),
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
    hasher: Sha256,
    seen: u64,
    want: Expected,
    /// Names the source in errors.
    what: String,
    progress: Arc<Progress>,
    done: bool,
}

/// `stream` as it is, except that it fails rather than ends when its bytes are not `want`.
pub(crate) fn checked(
    stream: ByteStream,
    want: Expected,
    what: String,
    progress: Arc<Progress>,
) -> ByteStream {
    let state = Check {
        inner: stream,
        hasher: Sha256::new(),
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
                st.progress.bytes(chunk.len() as u64);
                Some((Ok(chunk), st))
            }
            Some(Err(e)) => {
                st.done = true;
                Some((Err(e), st))
            }
            None => {
                st.done = true;
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
                let sha = crate::hex::hex(&std::mem::take(&mut st.hasher).finalize());
                if sha != st.want.sha256 {
                    let e = damaged(
                        &st.what,
                        format!("SHA-256 {sha} where the manifest says {}", st.want.sha256),
                    );
                    return Some((Err(e), st));
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
    let stream = src.get_stream(rel).await?;
    let stream = checked(stream, want.clone(), src.display_of(rel), progress.clone());
    dst.put_stream(rel, stream).await?;
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
            p.clone(),
        );
        assert_eq!(drain(good).await.unwrap(), b"abcd");
        let cases: [(Vec<&'static [u8]>, &str); 3] = [
            (vec![b"ab", b"cx"], "SHA-256"),
            (vec![b"ab", b"c"], "3 bytes"),
            (vec![b"ab", b"cde"], "longer"),
        ];
        for (parts, want) in cases {
            let s = checked(stream_of(&parts), expect(b"abcd"), "x".into(), p.clone());
            let e = drain(s).await.unwrap_err().to_string();
            assert!(e.contains(want) && e.contains('x'), "{e}");
        }
    }
}
