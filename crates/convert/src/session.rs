//! What every conversion shares around its driver: where it writes (DEST, or a part
//! directory), its work directory, publishing finished shards from staging to DEST, and the
//! digests the manifest keeps of its inputs.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::part_dir;
use editshard::error::Result;
use editshard::manifest::Manifest;
use editshard::storage::{Location, StorageOptions};

/// Where a conversion writes: DEST (`out`), or its part directory with `--part I/N`.
pub fn dest_root(
    out: &str,
    storage: &StorageOptions,
    part: Option<(u32, u32)>,
) -> Result<Location> {
    let dest = Location::parse(out, storage)?;
    match part {
        Some((i, n)) => dest.child(&part_dir(i, n)),
        None => Ok(dest),
    }
}

/// The work directory of a conversion into `root`: `--work-dir`, else `root/.editshard-work`
/// for a local `root`, else a directory under the system temp dir named after `root`.
pub fn work_dir(work_dir: Option<&Path>, root: &Location) -> PathBuf {
    match (work_dir, root.is_local()) {
        (Some(w), _) => w.to_path_buf(),
        (None, Some(dir)) => dir.join(".editshard-work"),
        (None, None) => {
            let h = editshard::hex::hex(&Sha256::digest(root.display().as_bytes()));
            std::env::temp_dir().join(format!("editshard-work-{}", &h[..16]))
        }
    }
}

/// What the manifest keeps of each input: a digest, so that it names what changed without
/// publishing local paths.
pub fn input_digest(value: &str) -> String {
    editshard::hex::hex(&Sha256::digest(value.as_bytes()))[..16].to_string()
}

/// Moves finished shards from the staging directory to the destination.
pub struct Publisher {
    pub root: Location,
    pub staging: PathBuf,
    /// The runtime the conversion runs on; the publisher runs on one of its blocking threads.
    pub rt: tokio::runtime::Handle,
}

impl Publisher {
    pub fn publish_new(&mut self, manifest: &Manifest, from: usize) -> Result<()> {
        for shard in &manifest.shards[from..] {
            let local = self.staging.join(&shard.path);
            match self.root.is_local() {
                Some(dir) => {
                    let target = dir.join(&shard.path);
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    // Same file system (the work directory is inside DEST): a rename.
                    if std::fs::rename(&local, &target).is_err() {
                        self.rt.block_on(self.root.put_file(&shard.path, &local))?;
                        std::fs::remove_file(&local)?;
                    }
                }
                None => {
                    self.rt.block_on(self.root.put_file(&shard.path, &local))?;
                    std::fs::remove_file(&local)?;
                }
            }
        }
        Ok(())
    }
}
