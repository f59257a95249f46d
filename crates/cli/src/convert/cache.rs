//! The download cache: every image fetched over HTTP is kept on disk under the work
//! directory until the shard holding it is published, so a conversion killed at any moment
//! never downloads an image twice. Entries are written to a temporary name and renamed, so a
//! kill mid-write leaves no half entry under a real name (only a `.tmp` file, overwritten
//! later).
//!
//! Layout (tests rely on it): `cache/<h[0..2]>/<h>` where `h` is the lower-case hex SHA-256
//! of the URL as requested.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

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
        let h = crate::record::hex(&Sha256::digest(url.as_bytes()));
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
        fs::write(&tmp, data)?;
        fs::rename(&tmp, &path)
    }

    pub fn remove(&self, url: &str) {
        let _ = fs::remove_file(self.path(url));
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Test-only crash points: `EDITSHARD_TEST_KILL_AT=<event>:<n>` makes the process send
/// itself SIGKILL (a real `kill -9`, no clean-up of any kind) the n-th time `event` happens.
/// Events: `fetched` (an image entered the cache), `appended` (a record was written),
/// `published` (a shard is in DEST but the resume state does not know yet), `saved` (the
/// resume state was updated), `finishing` (everything but the manifest is written).
pub fn kill_point(event: &str) {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SPEC: Mutex<Option<Option<(String, u64)>>> = Mutex::new(None);
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let spec = {
        let mut guard = SPEC.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .get_or_insert_with(|| {
                let v = std::env::var("EDITSHARD_TEST_KILL_AT").ok()?;
                let (e, n) = v.split_once(':')?;
                Some((e.to_string(), n.parse().ok()?))
            })
            .clone()
    };
    let Some((want, n)) = spec else {
        return;
    };
    if want != event || COUNT.fetch_add(1, Ordering::SeqCst) + 1 != n {
        return;
    }
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}
