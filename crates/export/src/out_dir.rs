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
                 to write into it (files of the same names are replaced)"
            )));
        }
        Ok(OutDir {
            root,
            checked: HashSet::new(),
            partials: HashSet::new(),
            finished: Vec::new(),
            files: 0,
            bytes: 0,
        })
    }

    /// The absolute path of `rel`, its parent directory created and checked.
    pub fn prepare(&mut self, rel: &str) -> Result<PathBuf> {
        check_relative_path(rel).map_err(|e| e.in_shard(self.root.display().to_string()))?;
        let path = self.root.join(rel);
        let parent = path.parent().unwrap_or(&self.root).to_path_buf();
        if !self.checked.contains(&parent) {
            let shown = parent.display().to_string();
            // Directory by directory, refusing a symbolic link before anything is created
            // through it (create_dir_all would make directories wherever a link points).
            let mut dir = self.root.clone();
            for part in rel.split('/').take(rel.split('/').count() - 1) {
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
            let real = parent
                .canonicalize()
                .map_err(|e| Error::from(e).in_shard(shown.clone()))?;
            if !real.starts_with(&self.root) {
                return Err(Error::invalid(format!(
                    "{shown} resolves to {} (a symbolic link?), outside the output directory: \
                     refused",
                    real.display()
                )));
            }
            self.checked.insert(parent);
        }
        Ok(path)
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
        for (partial, path) in std::mem::take(&mut self.finished) {
            fs::rename(&partial, &path)
                .map_err(|e| Error::from(e).in_shard(path.display().to_string()))?;
            self.partials.remove(&partial);
        }
        Ok(())
    }
}
