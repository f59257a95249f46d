//! [`PartialFile`]: a local object written in place, at any offset and from several tasks at
//! once (positioned writes of ranged GETs), published under its name only by
//! [`PartialFile::commit`].
//!
//! It is the same temporary file [`Location::put_stream`](super::Location::put_stream) writes
//! (`NAME.<pid>-<n>.partial`, created exclusively inside DST without following a link), so a
//! run killed mid-download leaves what the mirror already cleans up when it resumes. Dropped
//! without a commit (an error, a damaged range, a cancelled task), the file is removed.

use std::ffi::OsString;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use super::local;
use crate::error::{Error, Result};
use crate::safe_dir::SafeDir;

pub struct PartialFile {
    /// Shared with the writers; unique again once they are done, which `commit` needs.
    file: Option<Arc<File>>,
    dir: Arc<SafeDir>,
    /// The temporary name; `None` once committed (nothing left to remove).
    tmp: Option<OsString>,
    name: OsString,
    shown: String,
}

impl PartialFile {
    /// A new temporary file for the object `rel` of the directory `root`.
    pub(super) async fn create(root: &Path, rel: &str) -> Result<PartialFile> {
        let shown = local::name(&root.join(rel));
        let (dir, name) = local::parent_of(root, rel).await?;
        let (file, tmp) = local::create_temp(&dir, &name, &shown).await?;
        Ok(PartialFile {
            file: Some(Arc::new(file.into_std().await)),
            dir,
            tmp: Some(tmp),
            name,
            shown,
        })
    }

    /// The open file, for `write_at` / `read_at` (on blocking threads). Every clone must be
    /// dropped before [`commit`](Self::commit).
    pub fn file(&self) -> Arc<File> {
        self.file.clone().expect("open until committed")
    }

    /// The object's name in messages (DST's path, not the temporary one).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Syncs the file, renames it to the object's name and syncs the directory.
    pub async fn commit(mut self) -> Result<()> {
        let file = self.file.take().expect("open until committed");
        let file = Arc::try_unwrap(file).map_err(|_| {
            Error::invalid("a writer still holds the file being committed")
                .in_shard(self.shown.clone())
        })?;
        let tmp = self.tmp.take().expect("named until committed");
        let name = self.name.clone();
        local::commit(
            tokio::fs::File::from_std(file),
            &self.dir,
            tmp,
            name,
            &self.shown,
        )
        .await
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        // Not committed: an unlink in the directory already open (no path walk, no wait on
        // the disk's contents), so it is done here rather than on the blocking pool.
        if let Some(tmp) = self.tmp.take() {
            self.file.take();
            let _ = self.dir.remove_file(&tmp);
        }
    }
}
