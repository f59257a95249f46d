//! The download cache: every image fetched over HTTP is kept on disk under the work
//! directory until the shard holding it is published, so a conversion killed at any moment
//! never downloads an image twice. Entries are streamed to a temporary name (`*.partial`,
//! created exclusively) and renamed when complete ([`super::fetch`]), so a kill mid-write
//! leaves no half entry under a real name (only a `.partial` file, replaced later).
//!
//! Layout (tests rely on it): `cache/<h[0..2]>/<h>` where `h` is the lower-case hex SHA-256
//! of the URL as requested.

use std::fs;
use std::io;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    pub fn path(&self, url: &str) -> PathBuf {
        let h = editshard::hex::hex(&Sha256::digest(url.as_bytes()));
        self.dir.join(&h[..2]).join(h)
    }

    /// Whether an entry is present, not empty and no larger than `max`.
    pub fn has(&self, url: &str, max: u64) -> bool {
        fs::metadata(self.path(url)).is_ok_and(|m| m.is_file() && m.len() > 0 && m.len() <= max)
    }

    /// Creates the directory `url`'s entry goes in.
    pub fn prepare(&self, url: &str) -> io::Result<()> {
        match self.path(url).parent() {
            Some(parent) => fs::create_dir_all(parent),
            None => Ok(()),
        }
    }

    pub fn remove(&self, url: &str) {
        let _ = fs::remove_file(self.path(url));
    }
}
