//! Where a dataset's Parquet files are: a local directory as downloaded from the Hub, or an
//! `http(s)://` (or `s3://`) base with the same layout, read through the editshard storage
//! layer with ranged reads (footers, then page by page), never a whole file at once.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, Length};
use tokio::runtime::Handle;

use crate::mapping::{Mapping, natural_key};
use editshard::storage::Location;
use editshard::{Error, Result};

/// How much a small remote read fetches at once (page headers, small pages, the footer);
/// a larger read (an image page) is one exact ranged read.
const WINDOW: u64 = 256 << 10;

/// The dataset's files under `root` that `mapping` wants, in natural order (`_2` before
/// `_10`), with their sizes. A local root is walked; a remote one cannot be listed, so its
/// files come from `listed` (paths relative to it, e.g. from `--files-from`).
pub async fn list_files(
    root: &Location,
    mapping: &Mapping,
    listed: Option<Vec<String>>,
) -> Result<Vec<(String, u64)>> {
    let mut names = match (listed, root.is_local()) {
        (Some(list), _) => list
            .into_iter()
            .map(|l| l.trim().trim_start_matches("./").to_string())
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect(),
        (None, Some(dir)) => {
            let mut out = Vec::new();
            walk(dir, "", &mut out)?;
            out.retain(|rel| mapping.wants_file(rel));
            out
        }
        (None, None) => {
            return Err(Error::invalid(format!(
                "{} is remote and cannot be listed: name its Parquet files (paths relative \
                 to it, one a line) with --files-from FILE",
                root.display()
            )));
        }
    };
    names.sort_by_key(|n| natural_key(n));
    names.dedup();
    if names.is_empty() {
        return Err(Error::invalid(format!(
            "no Parquet files of {} under {} (looked for {:?})",
            mapping.name,
            root.display(),
            mapping.files
        )));
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let Some(len) = root.head(&name).await? else {
            return Err(Error::invalid(format!(
                "{} does not exist",
                root.display_of(&name)
            )));
        };
        out.push((name, len));
    }
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::from(e).in_shard(dir.display().to_string()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Hidden entries: `.cache/huggingface` left by `huggingface-cli download`, work dirs.
        if name.starts_with('.') {
            continue;
        }
        let rel = format!("{prefix}{name}");
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), &format!("{rel}/"), out)?;
        } else if kind.is_file() || kind.is_symlink() {
            out.push(rel);
        }
    }
    Ok(())
}

/// One Parquet file as the `parquet` crate's [`ChunkReader`]: a local file, or ranged reads
/// of a remote object. Use it on a blocking thread: remote reads wait on `handle`.
#[derive(Clone)]
pub struct Object {
    len: u64,
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Local(Arc<File>),
    Remote(Arc<Remote>),
    /// A file already in memory (tests, fuzzing).
    Memory(Bytes),
}

/// A remote object and the last windows read from it (one per column being read, as the
/// reader moves through a row group's columns side by side): page headers and the small
/// pages of text columns are served from them instead of a request each.
struct Remote {
    root: Location,
    rel: String,
    handle: Handle,
    windows: Mutex<VecDeque<(u64, Bytes)>>,
}

/// Windows kept per remote object (at most `WINDOWS * WINDOW` bytes).
const WINDOWS: usize = 16;

impl Remote {
    /// Bytes `start..start + len`, from the window when it holds them; a read smaller than
    /// a window fetches a whole window (clipped to the object) and keeps it.
    fn read(&self, start: u64, len: u64, object_len: u64) -> Result<Bytes> {
        {
            let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
            for w in windows.iter() {
                if start >= w.0 && start + len <= w.0 + w.1.len() as u64 {
                    let from = (start - w.0) as usize;
                    return Ok(w.1.slice(from..from + len as usize));
                }
            }
        }
        if len >= WINDOW {
            return self
                .handle
                .block_on(self.root.get_range(&self.rel, start..start + len));
        }
        // Near the end of the object the window reaches back from `start`: the `parquet`
        // crate reads a footer's last 8 bytes first, then the metadata just before them, and
        // one request serves both.
        let from = start.min(object_len.saturating_sub(WINDOW));
        let end = (from + WINDOW).min(object_len).max(start + len);
        let got = self
            .handle
            .block_on(self.root.get_range(&self.rel, from..end))?;
        let at = (start - from) as usize;
        let out = got.slice(at..at + len as usize);
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() == WINDOWS {
            windows.pop_front();
        }
        windows.push_back((from, got));
        Ok(out)
    }
}

impl Object {
    pub fn open(root: &Location, rel: &str, len: u64, handle: &Handle) -> Result<Object> {
        let inner = match root.is_local() {
            Some(dir) => {
                let path = dir.join(rel);
                Inner::Local(Arc::new(
                    File::open(&path)
                        .map_err(|e| Error::from(e).in_shard(path.display().to_string()))?,
                ))
            }
            None => Inner::Remote(Arc::new(Remote {
                root: root.clone(),
                rel: rel.to_string(),
                handle: handle.clone(),
                windows: Mutex::new(VecDeque::new()),
            })),
        };
        Ok(Object { len, inner })
    }

    fn fetch(&self, start: u64, len: u64) -> Result<Bytes> {
        match &self.inner {
            Inner::Local(file) => {
                let mut buf =
                    vec![0; usize::try_from(len).map_err(|_| Error::limit("range too large"))?];
                let n = read_at(file, start, &mut buf)?;
                buf.truncate(n);
                Ok(buf.into())
            }
            Inner::Remote(r) => r.read(start, len, self.len),
            Inner::Memory(b) => {
                let from = start.min(b.len() as u64) as usize;
                let to = start.saturating_add(len).min(b.len() as u64) as usize;
                Ok(b.slice(from..to))
            }
        }
    }

    /// A Parquet file held in memory.
    pub fn from_bytes(bytes: Bytes) -> Object {
        Object {
            len: bytes.len() as u64,
            inner: Inner::Memory(bytes),
        }
    }
}

fn read_at(file: &File, start: u64, buf: &mut [u8]) -> Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], start + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

fn external(e: Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl Length for Object {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for Object {
    type T = Box<dyn Read + Send>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        match &self.inner {
            Inner::Local(file) => {
                use std::io::{Seek, SeekFrom};
                let mut f = file.try_clone()?;
                f.seek(SeekFrom::Start(start))?;
                Ok(Box::new(BufReader::new(f)))
            }
            Inner::Remote(r) => Ok(Box::new(RemoteRead {
                remote: r.clone(),
                pos: start,
                end: self.len,
            })),
            Inner::Memory(b) => {
                let from = start.min(b.len() as u64) as usize;
                Ok(Box::new(std::io::Cursor::new(b.slice(from..))))
            }
        }
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let end = start.saturating_add(length as u64);
        if end > self.len {
            return Err(ParquetError::EOF(format!(
                "bytes {start}..{end} are past the end of the file ({} bytes)",
                self.len
            )));
        }
        let b = self.fetch(start, length as u64).map_err(external)?;
        if b.len() != length {
            return Err(ParquetError::EOF(format!("short read at byte {start}")));
        }
        Ok(b)
    }
}

/// Sequential reads of a remote object, window by window.
struct RemoteRead {
    remote: Arc<Remote>,
    pos: u64,
    end: u64,
}

impl Read for RemoteRead {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = (out.len() as u64).min(self.end.saturating_sub(self.pos));
        if n == 0 {
            return Ok(0);
        }
        // Within the window (or a new one from here): at most WINDOW bytes per call.
        let n = n.min(WINDOW);
        let b = self
            .remote
            .read(self.pos, n, self.end)
            .map_err(std::io::Error::other)?;
        out[..b.len()].copy_from_slice(&b);
        self.pos += b.len() as u64;
        Ok(b.len())
    }
}
