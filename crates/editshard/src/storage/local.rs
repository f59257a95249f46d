//! The local-directory backend.

use std::ffi::{OsStr, OsString};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::ByteStream;
use super::error::local as err;
use crate::error::{Error, Result};
use crate::safe_dir::{self, SafeDir};

/// Read size of a streamed local file: large enough that per-read overhead vanishes.
const STREAM_CHUNK: usize = 1 << 20;
/// Writes of a streamed object are gathered up to this size: a network body arrives in
/// chunks of a few KiB, and each write of a `tokio::fs::File` is a trip to the blocking pool.
const WRITE_BUFFER: usize = 4 << 20;

pub(super) fn name(path: &Path) -> String {
    path.display().to_string()
}

pub(super) async fn get(path: &Path) -> Result<Bytes> {
    tokio::fs::read(path)
        .await
        .map(Bytes::from)
        .map_err(|e| err("read", &name(path), e))
}

pub(super) async fn get_range(path: &Path, range: Range<u64>) -> Result<Bytes> {
    let len = usize::try_from(range.end - range.start)
        .map_err(|_| Error::limit("byte range larger than memory").in_shard(name(path)))?;
    let owned = path.to_path_buf();
    let start = range.start;
    // Positioned reads on a blocking thread: tokio's File would seek and read in two hops.
    tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let file = std::fs::File::open(&owned)?;
        let size = file.metadata()?.len();
        // Never allocate more than the file can provide.
        let n = len.min(size.saturating_sub(start) as usize);
        let mut buf = vec![0u8; n];
        file.read_exact_at(&mut buf, start)?;
        Ok(buf)
    })
    .await
    .map_err(|e| Error::from(std::io::Error::other(e)).in_shard(name(path)))?
    .map(Bytes::from)
    .map_err(|e| err("read", &name(path), e).at_offset(start))
}

/// An immutable shard file mapped into memory, as the owner of a [`Bytes`].
struct Mapped(memmap2::Mmap);

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Maps the file at `path` read-only: its bytes as a [`Bytes`] whose slices are zero-copy
/// views of the page cache (no `read` copy, no buffer to allocate or zero-fill). An empty file
/// is an empty `Bytes` (an empty mapping is not allowed).
///
/// Why this is sound: Rust needs the mapped bytes not to change while they are borrowed, and
/// the process dies of SIGBUS if the file shrinks under the map. Neither happens to a
/// dataset's files: shards and manifests are published whole by renaming a finished, synced
/// temporary file over the name ([`crate::atomic`], `put`/`put_stream` here), never written in
/// place or truncated, so a map keeps showing the inode that was opened, whole, even if the
/// name is replaced meanwhile. A program that truncates or rewrites a shard in place while a
/// reader has it open breaks that contract; readers that must survive it set
/// [`crate::read::DatasetOptions::map_local`] to false (ranged `pread`s instead).
pub fn map_file(path: &Path) -> std::io::Result<Bytes> {
    let file = std::fs::File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: a read-only map of a file that is never modified in place nor truncated while
    // open (see above); the `Mmap` is owned by the `Bytes` and unmapped when the last slice
    // of it is dropped.
    let map = unsafe { memmap2::MmapOptions::new().map(&file)? };
    Ok(Bytes::from_owner(Mapped(map)))
}

/// Asks the kernel to bring `range` of a mapped file (from [`map_file`]) into memory and
/// into this process's page tables now, so that the thread reading it later neither blocks
/// on the disk nor faults: `MADV_WILLNEED` starts one read-ahead of the whole range (page
/// faults alone would read it a read-ahead window at a time), then `MADV_POPULATE_READ`
/// (Linux 5.14+) waits for it and maps it. Blocking: call it where blocking is allowed.
/// Best effort: an error only means the reader faults the pages in itself.
pub fn populate_map(map: &Bytes, range: Range<usize>) {
    let range = range.start.min(map.len())..range.end.min(map.len());
    if range.is_empty() {
        return;
    }
    // Page-align the start: madvise takes page-aligned addresses.
    let page = rustix::param::page_size();
    let addr = map.as_ptr() as usize + range.start;
    let aligned = addr & !(page - 1);
    let len = range.end - range.start + (addr - aligned);
    // SAFETY: advice only; the range lies within the live mapping that `map` keeps alive
    // (rounded down to its page, which is mapped too), and neither advice changes its
    // contents.
    unsafe {
        let ptr = aligned as *mut std::ffi::c_void;
        let _ = rustix::mm::madvise(ptr, len, rustix::mm::Advice::WillNeed);
        let _ = rustix::mm::madvise(ptr, len, rustix::mm::Advice::LinuxPopulateRead);
    }
}

/// True when every page of `range` of a mapped file (from [`map_file`]) is in the page cache
/// now (`mincore`): reading it then waits on no disk, only on minor faults, so a caller may
/// read it in place instead of populating it on a blocking thread first. False when any page
/// is not, or when the kernel cannot say.
pub fn is_resident(map: &Bytes, range: Range<usize>) -> bool {
    let range = range.start.min(map.len())..range.end.min(map.len());
    if range.is_empty() {
        return true;
    }
    let page = rustix::param::page_size();
    let addr = map.as_ptr() as usize + range.start;
    let aligned = addr & !(page - 1);
    let len = range.end - range.start + (addr - aligned);
    let mut pages = vec![0u8; len.div_ceil(page)];
    // SAFETY: `aligned` is page-aligned and `aligned..aligned + len` lies within the live
    // mapping that `map` keeps alive (rounded down to its first page, which is mapped too);
    // `pages` holds one byte for each page of that range, as mincore(2) writes.
    let rc = unsafe {
        libc::mincore(
            aligned as *mut libc::c_void,
            len,
            pages.as_mut_ptr().cast::<libc::c_uchar>(),
        )
    };
    rc == 0 && pages.iter().all(|p| p & 1 == 1)
}

pub(super) async fn head(path: &Path) -> Result<Option<u64>> {
    match tokio::fs::metadata(path).await {
        Ok(m) if m.is_file() => Ok(Some(m.len())),
        Ok(_) => Err(Error::invalid("not a regular file").in_shard(name(path))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(err("stat", &name(path), e)),
    }
}

pub(super) async fn get_stream(path: &Path) -> Result<ByteStream> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| err("open", &name(path), e))?;
    let shown = name(path);
    let stream = tokio_util::io::ReaderStream::with_capacity(file, STREAM_CHUNK)
        .map(move |r| r.map_err(|e| err("read", &shown, e)));
    Ok(stream.boxed())
}

/// A temporary name next to `file`, unique within this process and among processes.
fn temp_name(file: &OsStr) -> OsString {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut s = file.to_os_string();
    s.push(format!(
        ".{}-{n}{}",
        std::process::id(),
        crate::atomic::PARTIAL_SUFFIX
    ));
    s
}

/// Runs a blocking step on the blocking pool, its error located at `shown`.
pub(super) async fn blocking<T: Send + 'static>(
    shown: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::from(std::io::Error::other(e)).in_shard(shown.to_string()))?
}

/// Where the object `rel` of the directory `root` is written: its directory, made and entered
/// without following a symbolic link ([`SafeDir`]), and its file name.
pub(super) async fn parent_of(root: &Path, rel: &str) -> Result<(Arc<SafeDir>, OsString)> {
    let (dir, file) = safe_dir::split(rel);
    let (root_owned, dir) = (root.to_path_buf(), PathBuf::from(dir));
    let shown = name(&root.join(rel));
    let parent = blocking(&shown, move || SafeDir::create_inside(&root_owned, &dir)).await?;
    Ok((Arc::new(parent), OsString::from(file)))
}

/// A new temporary file in `dir` for the object named `file`, exclusively created.
pub(super) async fn create_temp(
    dir: &Arc<SafeDir>,
    file: &OsStr,
    shown: &str,
) -> Result<(tokio::fs::File, OsString)> {
    let tmp = temp_name(file);
    let (d, t) = (dir.clone(), tmp.clone());
    let f = blocking(shown, move || d.create_new(&t).map_err(Error::from))
        .await
        .map_err(|e| e.in_shard(shown.to_string()))?;
    Ok((tokio::fs::File::from_std(f), tmp))
}

/// Syncs the temporary file `f` (`tmp` in `dir`), renames it to `file` and syncs the
/// directory; removes it on failure.
pub(super) async fn commit(
    mut f: tokio::fs::File,
    dir: &Arc<SafeDir>,
    tmp: OsString,
    file: OsString,
    shown: &str,
) -> Result<()> {
    let synced = async {
        f.flush().await?;
        f.sync_all().await
    }
    .await;
    drop(f);
    let d = dir.clone();
    let result = match synced {
        Ok(()) => {
            blocking(shown, move || {
                let renamed = d.rename(&tmp, &file);
                if renamed.is_err() {
                    let _ = d.remove_file(&tmp);
                } else {
                    d.sync();
                }
                renamed.map_err(Error::from)
            })
            .await
        }
        Err(e) => {
            let _ = blocking(shown, move || d.remove_file(&tmp).map_err(Error::from)).await;
            Err(Error::from(e))
        }
    };
    result.map_err(|e| e.in_shard(shown.to_string()))
}

async fn discard(dir: &Arc<SafeDir>, tmp: OsString, shown: &str) {
    let d = dir.clone();
    let _ = blocking(shown, move || d.remove_file(&tmp).map_err(Error::from)).await;
}

pub(super) async fn put(root: &Path, rel: &str, bytes: Bytes) -> Result<()> {
    let shown = name(&root.join(rel));
    let (dir, file) = parent_of(root, rel).await?;
    let (mut f, tmp) = create_temp(&dir, &file, &shown).await?;
    if let Err(e) = f.write_all(&bytes).await {
        drop(f);
        discard(&dir, tmp, &shown).await;
        return Err(err("write", &shown, e));
    }
    commit(f, &dir, tmp, file, &shown).await
}

pub(super) async fn put_file(root: &Path, rel: &str, from: &Path) -> Result<()> {
    let shown = name(&root.join(rel));
    let (dir, file) = parent_of(root, rel).await?;
    let (mut f, tmp) = create_temp(&dir, &file, &shown).await?;
    let copied = async {
        let mut src = tokio::fs::File::open(from).await?;
        tokio::io::copy(&mut src, &mut f).await
    }
    .await;
    if let Err(e) = copied {
        drop(f);
        discard(&dir, tmp, &shown).await;
        return Err(err(&format!("copy from {}", from.display()), &shown, e));
    }
    commit(f, &dir, tmp, file, &shown).await
}

pub(super) async fn put_stream(root: &Path, rel: &str, mut stream: ByteStream) -> Result<u64> {
    let shown = name(&root.join(rel));
    let (dir, file) = parent_of(root, rel).await?;
    let (f, tmp) = create_temp(&dir, &file, &shown).await?;
    let mut f = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, f);
    let written = async {
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            f.write_all(&chunk)
                .await
                .map_err(|e| err("write", &shown, e))?;
            n += chunk.len() as u64;
        }
        f.flush().await.map_err(|e| err("write", &shown, e))?;
        Ok::<_, Error>(n)
    }
    .await;
    let f = f.into_inner();
    match written {
        Ok(n) => commit(f, &dir, tmp, file, &shown).await.map(|()| n),
        Err(e) => {
            drop(f);
            discard(&dir, tmp, &shown).await;
            Err(e)
        }
    }
}

pub(super) async fn create_new(root: &Path, rel: &str, bytes: Bytes) -> Result<bool> {
    let shown = name(&root.join(rel));
    let (dir, file) = parent_of(root, rel).await?;
    let (d, n) = (dir.clone(), file.clone());
    let created = blocking(&shown, move || match d.create_new(&n) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(Error::from(e)),
    })
    .await
    .map_err(|e| e.in_shard(shown.clone()))?;
    let Some(f) = created else {
        return Ok(false);
    };
    let mut f = tokio::fs::File::from_std(f);
    let written = async {
        f.write_all(&bytes).await?;
        f.sync_all().await
    }
    .await;
    if let Err(e) = written {
        drop(f);
        discard(&dir, file, &shown).await;
        return Err(err("write", &shown, e));
    }
    Ok(true)
}

/// Deletes the object `rel` of the directory `root` (nothing is followed through a link in
/// its directories either).
pub(super) async fn delete(root: &Path, rel: &str) -> Result<()> {
    let shown = name(&root.join(rel));
    let (dir, file) = safe_dir::split(rel);
    let (root, dir, file) = (root.to_path_buf(), PathBuf::from(dir), OsString::from(file));
    blocking(&shown.clone(), move || {
        match SafeDir::open_inside(&root, &dir)? {
            Some(d) => d.remove_file(&file).map_err(|e| err("delete", &shown, e)),
            None => Ok(()),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file whose first `written` bytes hold data and whose rest, up to `len`, is a hole
    /// (never written, so never in the page cache).
    fn file_with_hole(dir: &Path, written: usize, len: u64) -> PathBuf {
        let path = dir.join("shard");
        let mut file = std::fs::File::create(&path).unwrap();
        std::io::Write::write_all(&mut file, &vec![7u8; written]).unwrap();
        file.set_len(len).unwrap();
        path
    }

    #[test]
    fn written_pages_are_resident_and_a_hole_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let page = rustix::param::page_size();
        let path = file_with_hole(dir.path(), 16 * page, 256 * page as u64);
        let map = map_file(&path).unwrap();
        // Just written: in the page cache, so read in place; an offset inside a page and a
        // range past the end (clamped to the map) included.
        assert!(is_resident(&map, 0..16 * page));
        assert!(is_resident(&map, 3..5 * page + 17));
        assert!(is_resident(&map, 5..5));
        assert!(is_resident(&map, 300 * page..400 * page));
        // A range reaching into the hole has pages no one has read: not resident, so a
        // reader populates it off the runtime instead of faulting it in.
        assert!(!is_resident(&map, 0..256 * page));
        assert!(!is_resident(&map, 200 * page..201 * page));
    }
}
