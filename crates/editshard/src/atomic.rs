//! Files that appear whole or not at all: written under a temporary name next to their final
//! one, synced, then renamed. Every file editshard writes locally goes through here.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Suffix of a file being written; it is renamed when complete.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// The temporary name `path` is written under: `path` + [`PARTIAL_SUFFIX`].
pub fn partial_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(PARTIAL_SUFFIX);
    PathBuf::from(s)
}

/// Writes `bytes` to `path` via a temporary file, sync and rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial = partial_path(path);
    let context = |e: std::io::Error| Error::from(e).in_shard(path.display().to_string());
    let mut f = File::create(&partial).map_err(context)?;
    f.write_all(bytes).map_err(context)?;
    f.sync_all().map_err(context)?;
    drop(f);
    fs::rename(&partial, path).map_err(context)?;
    if let Some(parent) = path.parent() {
        sync_dir(parent);
    }
    Ok(())
}

/// Makes a rename durable. Best effort: some file systems do not support syncing a directory.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
