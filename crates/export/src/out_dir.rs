//! The output directory of an export: every path checked to stay inside it, every file
//! written under a temporary name and published (renamed to its final name) only once the
//! whole export is complete.
//!
//! A failed export therefore publishes nothing: a part of an export never sits under final
//! names, where it would look complete (a WebDataset reader would take the tars written before
//! the failure for the dataset), and an earlier export written over with `--force` stays as it
//! was. Publishing is a rename per file: only a failure of the renames themselves (or a kill
//! during them) leaves a mix.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use editshard::error::{Error, Result};
use editshard::path::check_relative_path;

/// Whether a file name is one an export of a format writes (its files or their temporary
/// names), in the directory it writes them in.
pub type OwnName = fn(&str) -> bool;

/// The output directory. Every path is relative and checked; every directory created is
/// checked to resolve inside the root, so neither a hostile id or path (`..`, absolute,
/// backslashes) nor a symbolic link met on the way can send a write elsewhere.
pub struct OutDir {
    root: PathBuf,
    checked: HashSet<PathBuf>,
    /// Temporary files not yet renamed or removed: a failed export removes them.
    partials: HashSet<PathBuf>,
    /// Complete temporary files and their final names, in the order [`Self::publish`] renames
    /// them.
    finished: Vec<(PathBuf, PathBuf)>,
    /// Where an earlier export's files may be, and which names are its ([`Self::replaces`]).
    replaced: Option<(PathBuf, OwnName)>,
    /// The files of an earlier export that [`Self::publish`] removed, relative to the root.
    pub removed: Vec<String>,
    pub files: u64,
    pub bytes: u64,
}

impl OutDir {
    pub fn create(root: &Path, force: bool) -> Result<OutDir> {
        let shown = root.display().to_string();
        fs::create_dir_all(root).map_err(|e| Error::from(e).in_shard(shown.clone()))?;
        let root = root
            .canonicalize()
            .map_err(|e| Error::from(e).in_shard(shown.clone()))?;
        let non_empty = fs::read_dir(&root)
            .map_err(|e| Error::from(e).in_shard(shown.clone()))?
            .next()
            .is_some();
        if non_empty && !force {
            return Err(Error::invalid(format!(
                "{shown} is not empty: export into an empty or new directory, or pass --force \
                 to write into it (files of the same names are replaced, and an earlier \
                 export's files of this format that this one does not write again are removed)"
            )));
        }
        Ok(OutDir {
            root,
            checked: HashSet::new(),
            partials: HashSet::new(),
            finished: Vec::new(),
            replaced: None,
            removed: Vec::new(),
            files: 0,
            bytes: 0,
        })
    }

    /// The absolute path of `rel`, its parent directory created and checked.
    pub fn prepare(&mut self, rel: &str) -> Result<PathBuf> {
        check_relative_path(rel).map_err(|e| e.in_shard(self.root.display().to_string()))?;
        self.dir(rel.rsplit_once('/').map_or("", |(dir, _)| dir))?;
        Ok(self.root.join(rel))
    }

    /// The absolute path of the directory `rel` (checked relative; `""` is the root), created
    /// and checked.
    fn dir(&mut self, rel: &str) -> Result<PathBuf> {
        let path = if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        };
        if self.checked.contains(&path) || rel.is_empty() {
            return Ok(path);
        }
        let shown = path.display().to_string();
        // Directory by directory, refusing a symbolic link before anything is created
        // through it (create_dir_all would make directories wherever a link points).
        let mut dir = self.root.clone();
        for part in rel.split('/') {
            dir.push(part);
            match fs::symlink_metadata(&dir) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(Error::invalid(format!(
                        "{} is a symbolic link inside the output directory: refused \
                         (nothing is written through a link)",
                        dir.display()
                    )));
                }
                Ok(_) => {}
                Err(_) => {
                    fs::create_dir(&dir).map_err(|e| Error::from(e).in_shard(shown.clone()))?
                }
            }
        }
        let real = path
            .canonicalize()
            .map_err(|e| Error::from(e).in_shard(shown.clone()))?;
        if !real.starts_with(&self.root) {
            return Err(Error::invalid(format!(
                "{shown} resolves to {} (a symbolic link?), outside the output directory: \
                 refused",
                real.display()
            )));
        }
        self.checked.insert(path.clone());
        Ok(path)
    }

    /// Declares the files in the directory `dir` (`""`: the root) that `own` recognises,
    /// this format's file names and their temporary names, as an earlier export's: when this
    /// export is published, those it does not write again are removed, so that a reader of the
    /// layout does not take their records for this export's. Nothing else is removed.
    pub fn replaces(&mut self, dir: &str, own: OwnName) -> Result<()> {
        if !dir.is_empty() {
            check_relative_path(dir).map_err(|e| e.in_shard(self.root.display().to_string()))?;
        }
        let dir = self.dir(dir)?;
        self.replaced = Some((dir, own));
        Ok(())
    }

    /// Writes `rel` under its temporary name, published by [`Self::publish_written`] or
    /// removed by [`Self::discard_written`]. Not remembered here: the caller keeps the names
    /// (the release layout keeps one per file anyway; a second copy would double that memory).
    pub fn write_unpublished(&mut self, rel: &str, bytes: &[u8]) -> Result<()> {
        let path = self.prepare(rel)?;
        let partial = editshard::atomic::partial_path(&path);
        let result = (|| {
            let mut f = editshard::atomic::create_new(&partial)?;
            f.write_all(bytes)?;
            f.flush()
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&partial);
            return Err(Error::from(e).in_shard(partial.display().to_string()));
        }
        self.files += 1;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Renames the files [`Self::write_unpublished`] wrote as `rels` to their final names.
    pub fn publish_written<'a>(&mut self, rels: impl Iterator<Item = &'a str>) -> Result<()> {
        for rel in rels {
            let path = self.root.join(rel);
            fs::rename(editshard::atomic::partial_path(&path), &path)
                .map_err(|e| Error::from(e).in_shard(path.display().to_string()))?;
        }
        Ok(())
    }

    /// Removes the temporary files of `rels` still there (the export failed).
    pub fn discard_written<'a>(&self, rels: impl Iterator<Item = &'a str>) {
        for rel in rels {
            let _ = fs::remove_file(editshard::atomic::partial_path(&self.root.join(rel)));
        }
    }

    /// The temporary name `path` (from [`Self::prepare`]) is written under, remembered until
    /// published so that a failed export leaves none behind.
    pub fn partial_of(&mut self, path: &Path) -> PathBuf {
        let partial = editshard::atomic::partial_path(path);
        self.partials.insert(partial.clone());
        partial
    }

    /// Remembers a temporary file of the exporter's own (removed on failure, or by
    /// [`Self::forget`] once the exporter removed it).
    pub fn track(&mut self, temporary: &Path) {
        self.partials.insert(temporary.to_path_buf());
    }

    pub fn forget(&mut self, temporary: &Path) {
        self.partials.remove(temporary);
    }

    /// Removes every temporary file still there (the export failed).
    pub fn discard_partials(&mut self) {
        for p in self.partials.drain() {
            let _ = fs::remove_file(p);
        }
        self.finished.clear();
    }

    /// Marks a complete `partial` (from [`Self::partial_of`]) to be renamed to `path` by
    /// [`Self::publish`].
    pub fn finish(&mut self, partial: PathBuf, path: PathBuf) {
        self.files += 1;
        self.bytes += fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        self.finished.push((partial, path));
    }

    /// Renames every finished file to its final name, in the order they were finished: the
    /// export is complete.
    pub fn publish(&mut self) -> Result<()> {
        // The earlier export's files go first: a failure or a kill from here on leaves fewer
        // files, never stale records beside new ones.
        if let Some((dir, own)) = self.replaced.take() {
            self.remove_earlier(&dir, own)?;
        }
        for (partial, path) in std::mem::take(&mut self.finished) {
            fs::rename(&partial, &path)
                .map_err(|e| Error::from(e).in_shard(path.display().to_string()))?;
            self.partials.remove(&partial);
        }
        Ok(())
    }

    /// Removes the files in `dir` that `own` recognises and that this export does not publish
    /// ([`Self::replaces`]). All are found and checked before the first is removed, so that a
    /// refusal leaves the earlier export whole.
    fn remove_earlier(&mut self, dir: &Path, own: OwnName) -> Result<()> {
        let publishing: HashSet<&Path> = self.finished.iter().map(|(_, p)| p.as_path()).collect();
        let shown = dir.display().to_string();
        let entries = fs::read_dir(dir).map_err(|e| Error::from(e).in_shard(shown.clone()))?;
        let mut earlier = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::from(e).in_shard(shown.clone()))?;
            let path = entry.path();
            // A name that is not UTF-8 is no name an export writes.
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !own(name) || publishing.contains(path.as_path()) || self.partials.contains(&path) {
                continue;
            }
            // A link is removed, not what it points to; a directory is no export's file.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                return Err(Error::invalid(format!(
                    "{} is a directory named as this export names its files: --force removes \
                     such files as an earlier export's, but not a directory; remove or rename \
                     it, or export into a new directory",
                    path.display()
                )));
            }
            earlier.push(path);
        }
        earlier.sort();
        for path in earlier {
            fs::remove_file(&path)
                .map_err(|e| Error::from(e).in_shard(path.display().to_string()))?;
            let rel = path.strip_prefix(&self.root).unwrap_or(&path);
            self.removed.push(rel.display().to_string());
        }
        Ok(())
    }
}

/// Whether `s` is a file number as exports write them: at least five ASCII digits
/// (`shard-00012.tar`, `train-00000-of-00003.parquet`).
pub fn is_file_number(s: &str) -> bool {
    s.len() >= 5 && s.bytes().all(|b| b.is_ascii_digit())
}
