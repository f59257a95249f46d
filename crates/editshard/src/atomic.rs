//! Files that appear whole or not at all: written under a temporary name next to their final
//! one, synced, then renamed. Every file editshard writes locally goes through here.
//!
//! The temporary file is always created exclusively ([`create_partial`]): whatever already
//! sits at the temporary name (a leftover of a killed run, or a symbolic link planted to
//! make editshard overwrite a file elsewhere) is removed, never opened. The final rename
//! replaces a symbolic link at the final name rather than writing through it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
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

/// What a temporary file name stands for: the name it gets when complete, and the process
/// that writes it when the name says. `NAME.partial` ([`partial_path`]) gives `(NAME, None)`,
/// `NAME.<pid>-<n>.partial` (local storage's names, unique per process) `(NAME, Some(pid))`;
/// any other name, `None`. The one parser of these names: cleaning up after a killed run and
/// judging whose files a directory holds both use it.
pub fn temporary_of(file: &str) -> Option<(&str, Option<u32>)> {
    let stem = file.strip_suffix(PARTIAL_SUFFIX)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((base, tag)) = stem.rsplit_once('.')
        && let Some((pid, n)) = tag.split_once('-')
        && digits(pid)
        && digits(n)
    {
        return Some((base, pid.parse().ok()));
    }
    Some((stem, None))
}
/// Creates `partial` as a new file (`O_CREAT | O_EXCL`, which never follows a symbolic link).
/// An entry already there is unlinked first (unlinking a symbolic link removes the link, not
/// its target); if something reappears between the two steps, the error is returned rather
/// than opening it.
pub fn create_new(partial: &Path) -> io::Result<File> {
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(partial)
    };
    match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(partial)?;
            open()
        }
        other => other,
    }
}

/// Creates the temporary file `path` is written under ([`partial_path`]), exclusively
/// ([`create_new`]).
pub fn create_partial(path: &Path) -> io::Result<(File, PathBuf)> {
    let partial = partial_path(path);
    let file = create_new(&partial)?;
    Ok((file, partial))
}

/// Writes `bytes` to `path` via a temporary file, sync and rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let context = |e: std::io::Error| Error::from(e).in_shard(path.display().to_string());
    let (mut f, partial) = create_partial(path).map_err(context)?;
    f.write_all(bytes).map_err(context)?;
    f.sync_all().map_err(|e| {
        let _ = fs::remove_file(&partial);
        context(e)
    })?;
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

#[cfg(test)]
mod tests {
    use super::temporary_of;

    #[test]
    fn temporary_names_and_what_they_stand_for() {
        assert_eq!(temporary_of("a.esd.partial"), Some(("a.esd", None)));
        assert_eq!(
            temporary_of("manifest.json.9767-1.partial"),
            Some(("manifest.json", Some(9767)))
        );
        assert_eq!(
            temporary_of("manifest.json.x-1.partial"),
            Some(("manifest.json.x-1", None))
        );
        assert_eq!(temporary_of("manifest.json"), None);
    }
}
