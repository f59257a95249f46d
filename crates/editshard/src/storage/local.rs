//! The local-directory backend.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::ByteStream;
use super::error::local as err;
use crate::error::{Error, Result};

/// Read size of a streamed local file: large enough that per-read overhead vanishes.
const STREAM_CHUNK: usize = 1 << 20;

fn name(path: &Path) -> String {
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

/// A temporary name next to `path`, unique within this process and among processes.
fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(
        ".{}-{n}{}",
        std::process::id(),
        crate::atomic::PARTIAL_SUFFIX
    ));
    PathBuf::from(s)
}

async fn create_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| err("create directory", &name(parent), e))?;
        }
    }
    Ok(())
}

/// Syncs `tmp`, renames it to `path` and syncs the directory; removes `tmp` on failure.
async fn commit(tmp: &Path, path: &Path) -> Result<()> {
    let result = async {
        let f = tokio::fs::OpenOptions::new().write(true).open(tmp).await?;
        f.sync_all().await?;
        drop(f);
        tokio::fs::rename(tmp, path).await?;
        if let Some(parent) = path.parent() {
            if let Ok(d) = tokio::fs::File::open(parent).await {
                // Best effort: not every file system can sync a directory.
                let _ = d.sync_all().await;
            }
        }
        Ok::<_, std::io::Error>(())
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(tmp).await;
        return Err(err("write", &name(path), e));
    }
    Ok(())
}

pub(super) async fn put(path: &Path, bytes: Bytes) -> Result<()> {
    create_parent(path).await?;
    let tmp = temp_path(path);
    let written = async {
        let mut f = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .await?;
        f.write_all(&bytes).await?;
        f.flush().await
    }
    .await;
    if let Err(e) = written {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(err("write", &name(path), e));
    }
    commit(&tmp, path).await
}

pub(super) async fn put_file(path: &Path, file: &Path) -> Result<()> {
    create_parent(path).await?;
    let tmp = temp_path(path);
    if let Err(e) = tokio::fs::copy(file, &tmp).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(err(
            &format!("copy from {}", file.display()),
            &name(path),
            e,
        ));
    }
    commit(&tmp, path).await
}

pub(super) async fn put_stream(path: &Path, mut stream: ByteStream) -> Result<u64> {
    create_parent(path).await?;
    let tmp = temp_path(path);
    let written = async {
        let mut f = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .await
            .map_err(|e| err("write", &name(path), e))?;
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            f.write_all(&chunk)
                .await
                .map_err(|e| err("write", &name(path), e))?;
            n += chunk.len() as u64;
        }
        f.flush().await.map_err(|e| err("write", &name(path), e))?;
        Ok::<_, Error>(n)
    }
    .await;
    match written {
        Ok(n) => commit(&tmp, path).await.map(|()| n),
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            Err(e)
        }
    }
}

pub(super) async fn create_new(path: &Path, bytes: Bytes) -> Result<bool> {
    create_parent(path).await?;
    let mut f = match tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .await
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(err("create", &name(path), e)),
    };
    let written = async {
        f.write_all(&bytes).await?;
        f.sync_all().await
    }
    .await;
    if let Err(e) = written {
        let _ = tokio::fs::remove_file(path).await;
        return Err(err("write", &name(path), e));
    }
    Ok(true)
}

pub(super) async fn delete(path: &Path) -> Result<()> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(err("delete", &name(path), e)),
    }
}
