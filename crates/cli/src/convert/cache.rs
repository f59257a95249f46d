//! The download cache: every image fetched over HTTP is kept on disk under the work
//! directory until the shard holding it is published, so a conversion killed at any moment
//! never downloads an image twice. Entries are written to a temporary name and renamed, so a
//! kill mid-write leaves no half entry under a real name (only a `.tmp` file, overwritten
//! later).
//!
//! Layout (tests rely on it): `cache/<h[0..2]>/<h>` where `h` is the lower-case hex SHA-256
//! of the URL as requested.

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

use bytes::Bytes;
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
        let h = crate::hex::hex(&Sha256::digest(url.as_bytes()));
        self.dir.join(&h[..2]).join(h)
    }

    /// The cached bytes, if present and no larger than `max`.
    pub fn get(&self, url: &str, max: u64) -> Option<Bytes> {
        let path = self.path(url);
        let len = fs::metadata(&path).ok()?.len();
        if len == 0 || len > max {
            return None;
        }
        fs::read(path).ok().map(Bytes::from)
    }

    pub fn put(&self, url: &str, data: &[u8]) -> io::Result<()> {
        let path = self.path(url);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension("tmp");
        let mut f = crate::atomic::create_new(&tmp)?;
        f.write_all(data)?;
        drop(f);
        fs::rename(&tmp, &path)
    }

    pub fn remove(&self, url: &str) {
        let _ = fs::remove_file(self.path(url));
    }
}
