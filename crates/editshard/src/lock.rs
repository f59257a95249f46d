//! One writer per destination: the lock `convert`, `mirror`, `mix` and `repair` hold on the
//! location they write, so that two runs can never interleave their shards and manifests there.
//!
//! The lock is an object named [`LOCK_NAME`] at the destination's root, holding who took it
//! ([`Holder`]: command, pid, host, start time, and a random token that tells a run its own
//! lock from another's).
//!
//! - **Local directory**: the file is opened and held with an exclusive advisory lock
//!   (`flock`), which the kernel releases when its holder ends in any way, `kill -9` included.
//!   A lock file nobody holds is stale and simply taken over (with a warning naming its last
//!   holder); a held one refuses the run, naming the holder. (`flock` is local to one
//!   machine: on a network file system two hosts may not see each other's locks.)
//! - **S3**: the object is created with a conditional PUT (`If-None-Match: *`), which fails
//!   when it exists. Nothing releases it if its holder dies, so a refusal names the holder
//!   and says how to break the lock once that run is known to be gone: `--break-lock`
//!   ([`DestLock::acquire`]'s `break_lock`), or deleting the object.
//!
//! The lock is released (the file or object deleted) when the run ends, with success or with
//! an error ([`DestLock::release_after`]).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::Location;

/// The lock's name at the destination's root.
pub const LOCK_NAME: &str = ".editshard-lock";

/// Largest lock object read back (it holds a few short fields).
const MAX_LOCK_BYTES: u64 = 64 << 10;

/// Who holds a lock: what the lock file or object contains.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    /// What the holder is doing, e.g. `mirror SRC -> DST`.
    pub command: String,
    pub pid: u32,
    pub host: String,
    /// Seconds since the Unix epoch.
    pub started: u64,
    /// Random per run: a run recognises its own lock (a retried conditional PUT whose first
    /// attempt did land) and never deletes another's.
    pub token: String,
}

impl Holder {
    fn new(command: &str) -> Holder {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Holder {
            command: command.to_string(),
            pid: std::process::id(),
            host: host_name(),
            started: now.as_secs(),
            token: token(now.as_nanos()),
        }
    }

    /// `mirror a -> b (pid 12, host h, started 2026-12-01T03:40:00Z)`.
    pub fn describe(&self) -> String {
        format!(
            "{} (pid {}, host {}, started {})",
            self.command,
            self.pid,
            self.host,
            utc(self.started)
        )
    }
}

/// A held destination lock. Release it with [`release_after`](Self::release_after); dropped
/// without that (a panic), a local lock is still released by the kernel and a remote one
/// stays until broken.
#[derive(Debug)]
pub struct DestLock {
    dest: Location,
    holder: Holder,
    /// The locked file, for a local destination: the `flock` lives as long as it is open.
    #[cfg(unix)]
    file: Option<std::fs::File>,
    /// The local directory did not exist before the lock created it: removed on release if
    /// the run left it empty (a refused or failed run leaves no empty directory behind).
    #[cfg(unix)]
    created_dir: bool,
}

impl DestLock {
    /// Takes the lock on `dest` for `command` (recorded for whoever is refused). A local
    /// directory is created if it does not exist. `break_lock` first deletes a lock left at
    /// a remote destination by a run that is gone (a live local holder is never overridden:
    /// the OS releases its lock when it ends).
    pub async fn acquire(dest: &Location, command: &str, break_lock: bool) -> Result<DestLock> {
        let holder = Holder::new(command);
        match dest.is_local() {
            #[cfg(unix)]
            Some(dir) => {
                let dir = dir.to_path_buf();
                let created_dir = !dir.exists();
                let file = tokio::task::spawn_blocking({
                    let (holder, dest) = (holder.clone(), dest.clone());
                    move || local::acquire(&dir, &dest, &holder)
                })
                .await
                .map_err(|e| Error::bug(format!("the locking task failed: {e}")))??;
                Ok(DestLock {
                    dest: dest.clone(),
                    holder,
                    file: Some(file),
                    created_dir,
                })
            }
            _ => {
                acquire_by_create(dest, &holder, break_lock).await?;
                Ok(DestLock {
                    dest: dest.clone(),
                    holder,
                    #[cfg(unix)]
                    file: None,
                    #[cfg(unix)]
                    created_dir: false,
                })
            }
        }
    }

    /// Takes the lock on the local directory `dir` (created if it does not exist), blocking
    /// the calling thread: for synchronous commands (`repair`). As [`acquire`](Self::acquire)
    /// for a local destination.
    #[cfg(unix)]
    pub fn acquire_local(dir: &std::path::Path, command: &str) -> Result<DestLock> {
        let holder = Holder::new(command);
        let dest = Location::local(dir);
        let created_dir = !dir.exists();
        let file = local::acquire(dir, &dest, &holder)?;
        Ok(DestLock {
            dest,
            holder,
            file: Some(file),
            created_dir,
        })
    }

    /// [`release_after`](Self::release_after) for a lock taken with
    /// [`acquire_local`](Self::acquire_local), without a runtime.
    #[cfg(unix)]
    pub fn release_local_after<T>(mut self, result: Result<T>) -> Result<T> {
        let released = self.release_local().unwrap_or(Ok(()));
        settle(result, released)
    }

    /// Who holds this lock (this run).
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// Releases the lock after the run that held it ended with `result`. A failure to
    /// release is an error after a successful run (the next run would be refused), and only
    /// logged after a failed one (whose own error matters more).
    pub async fn release_after<T>(self, result: Result<T>) -> Result<T> {
        let released = self.release().await;
        settle(result, released)
    }

    /// Releases a local lock (`None` for a remote one).
    #[cfg(unix)]
    fn release_local(&mut self) -> Option<Result<()>> {
        let file = self.file.take()?;
        // Deleted while still held, so that no other run takes over the old file in
        // between; `local::acquire` checks that the file it holds is still the named one.
        let path = self.dest.display_of(LOCK_NAME);
        let removed = std::fs::remove_file(&path);
        drop(file);
        if self.created_dir
            && let Some(dir) = self.dest.is_local()
        {
            // Fails, as it should, unless the run left the directory empty.
            let _ = std::fs::remove_dir(dir);
        }
        Some(match removed {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::from(e).in_shard(path)),
        })
    }

    async fn release(mut self) -> Result<()> {
        #[cfg(unix)]
        if let Some(released) = self.release_local() {
            return released;
        }
        // Remote: delete the object only if it is still ours (it may have been broken and
        // taken by another run since).
        match read_holder(&self.dest).await {
            Ok(Some(h)) if h.token != self.holder.token => {
                log::warn!(
                    "{} is now held by {}: the lock of this run was broken; left as it is",
                    self.dest.display_of(LOCK_NAME),
                    h.describe()
                );
                Ok(())
            }
            Ok(None) => Ok(()),
            _ => self.dest.delete(LOCK_NAME).await,
        }
    }
}

/// The outcome of a run that held a lock, once the lock is released: a failure to release is
/// an error after a successful run (the next run would be refused), and only logged after a
/// failed one (whose own error matters more).
fn settle<T>(result: Result<T>, released: Result<()>) -> Result<T> {
    match (result, released) {
        (Ok(v), Ok(())) => Ok(v),
        (Ok(_), Err(e)) => Err(e),
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(r)) => {
            log::warn!("{r}");
            Err(e)
        }
    }
}

/// The remote lock: a conditional create of the lock object.
async fn acquire_by_create(dest: &Location, holder: &Holder, break_lock: bool) -> Result<()> {
    let shown = dest.display_of(LOCK_NAME);
    if break_lock {
        if let Ok(Some(old)) = read_holder(dest).await {
            log::warn!("--break-lock: deleting {shown}, held by {}", old.describe());
        }
        dest.delete(LOCK_NAME).await?;
    }
    let body = Bytes::from(serde_json::to_vec(holder).expect("a holder serializes"));
    match dest.create_new(LOCK_NAME, body).await {
        Ok(true) => return Ok(()),
        Ok(false) => {}
        // The request may have landed with its answer lost (and not been retried: it is not
        // idempotent): if the lock now holds this run's token, it is ours.
        Err(e) => {
            return match read_holder(dest).await {
                Ok(Some(h)) if h.token == holder.token => Ok(()),
                _ => Err(e),
            };
        }
    }
    match read_holder(dest).await {
        // Our own conditional PUT, retried after its first attempt landed unanswered.
        Ok(Some(h)) if h.token == holder.token => Ok(()),
        Ok(h) => Err(locked(
            dest,
            h.as_ref(),
            &format!(
                "if that run is no longer running (killed, or its machine gone), break the \
                 lock by running this command again with --break-lock, or delete {shown}"
            ),
        )),
        Err(e) => Err(e),
    }
}

/// The lock's holder as recorded, `None` if there is no lock; an unreadable lock is
/// reported as a holder named by what it holds.
async fn read_holder(dest: &Location) -> Result<Option<Holder>> {
    match dest.get_max(LOCK_NAME, MAX_LOCK_BYTES).await {
        Ok(bytes) => Ok(Some(parse_holder(&bytes))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

fn parse_holder(bytes: &[u8]) -> Holder {
    serde_json::from_slice(bytes).unwrap_or_else(|_| Holder {
        command: format!(
            "an unknown writer (the lock holds {} unreadable bytes)",
            bytes.len()
        ),
        pid: 0,
        host: "?".into(),
        started: 0,
        token: String::new(),
    })
}

/// The refusal: which destination, who holds it, what to do.
fn locked(dest: &Location, holder: Option<&Holder>, advice: &str) -> Error {
    let who = holder.map_or_else(
        || "another run (it released the lock a moment ago: try again)".to_string(),
        Holder::describe,
    );
    Error::invalid(format!(
        "{} is locked by another run writing to it: {who}. Only one run may write a \
         destination at a time; wait for it to finish, or choose another destination; {advice}",
        dest.display()
    ))
    .in_shard(dest.display_of(LOCK_NAME))
}

#[cfg(unix)]
mod local {
    use std::fs::{File, OpenOptions};
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    use std::path::Path;

    use rustix::fs::{FlockOperation, flock};

    use super::{Holder, LOCK_NAME, locked, parse_holder};
    use crate::error::{Error, Result};
    use crate::storage::Location;

    /// Takes the `flock` of `dir/.editshard-lock` and writes `holder` into it.
    pub(super) fn acquire(dir: &Path, dest: &Location, holder: &Holder) -> Result<File> {
        let path = dir.join(LOCK_NAME);
        let io = |e: std::io::Error| Error::from(e).in_shard(path.display().to_string());
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::from(e).in_shard(dir.display().to_string()))?;
        // A few rounds at most: each lost round means another run released the lock (deleting
        // the file) between our open and our flock.
        for _ in 0..8 {
            // O_NOFOLLOW: a symbolic link planted at the lock's name must not make the lock
            // write through it to a file elsewhere.
            let opened = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(&path);
            let mut file = match opened {
                Ok(f) => f,
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                    return Err(Error::invalid(format!(
                        "{} is a symbolic link: refused (a lock is a plain file editshard \
                         makes); remove the link",
                        path.display()
                    )));
                }
                Err(e) => return Err(io(e)),
            };
            // Only a plain file with one name: a FIFO would block the read below, and a hard
            // link to a file elsewhere would have it overwritten with the holder.
            let meta = file.metadata().map_err(io)?;
            if !meta.is_file() || meta.nlink() > 1 {
                return Err(Error::invalid(format!(
                    "{} is not a plain file of its own (a FIFO, a device, or a hard link to \
                     another file): refused; remove it",
                    path.display()
                )));
            }
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    let mut bytes = Vec::new();
                    let _ = (&file).take(super::MAX_LOCK_BYTES).read_to_end(&mut bytes);
                    let holder = (!bytes.is_empty()).then(|| parse_holder(&bytes));
                    return Err(locked(
                        dest,
                        holder.as_ref(),
                        "the operating system releases this lock when its holder ends (even \
                         by kill -9), so that run is still alive",
                    ));
                }
                Err(e) => return Err(io(e.into())),
            }
            // Held; but is it still the file named LOCK_NAME (not one a releasing run has just
            // deleted)?
            let same = match std::fs::symlink_metadata(&path) {
                Ok(named) => {
                    let held = file.metadata().map_err(io)?;
                    named.dev() == held.dev() && named.ino() == held.ino()
                }
                Err(_) => false,
            };
            if !same {
                continue;
            }
            let mut old = Vec::new();
            file.read_to_end(&mut old).map_err(io)?;
            if !old.is_empty() {
                log::warn!(
                    "{} was left by {}, which is no longer running: taken over",
                    path.display(),
                    parse_holder(&old).describe()
                );
            }
            file.set_len(0).map_err(io)?;
            file.rewind().map_err(io)?;
            file.write_all(&serde_json::to_vec(holder).expect("a holder serializes"))
                .map_err(io)?;
            file.sync_data().map_err(io)?;
            return Ok(file);
        }
        Err(locked(dest, None, "the lock changed hands repeatedly"))
    }
}

fn host_name() -> String {
    #[cfg(unix)]
    {
        rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned()
    }
    #[cfg(not(unix))]
    {
        std::env::var("COMPUTERNAME").unwrap_or_else(|_| "?".into())
    }
}

/// 16 hex digits that differ between runs (time, pid and a per-process counter, hashed).
fn token(nanos: u128) -> String {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let digest = Sha256::digest(format!("{nanos}/{}/{n}", std::process::id()));
    crate::hex::hex(&digest)[..16].to_string()
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, proleptic Gregorian).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[tokio::test]
    async fn a_local_lock_excludes_a_second_and_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::local(dir.path());
        let a = DestLock::acquire(&loc, "first", false).await.unwrap();
        let e = DestLock::acquire(&loc, "second", false).await.unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("locked") && msg.contains("first") && msg.contains("pid"),
            "{msg}"
        );
        a.release_after(Ok(())).await.unwrap();
        assert!(!dir.path().join(LOCK_NAME).exists());
        assert!(dir.path().exists(), "a directory that existed is kept");
        let b = DestLock::acquire(&loc, "second", false).await.unwrap();
        b.release_after(Ok(())).await.unwrap();
    }

    #[tokio::test]
    async fn a_directory_the_lock_created_goes_if_left_empty() {
        let dir = tempfile::tempdir().unwrap();
        let (empty, used) = (dir.path().join("empty"), dir.path().join("used"));
        let lock = DestLock::acquire(&Location::local(&empty), "x", false)
            .await
            .unwrap();
        assert!(empty.join(LOCK_NAME).is_file());
        let r: Result<()> = Err(Error::invalid("refused"));
        assert!(lock.release_after(r).await.is_err());
        assert!(!empty.exists());
        let lock = DestLock::acquire(&Location::local(&used), "x", false)
            .await
            .unwrap();
        std::fs::write(used.join("manifest.json"), b"{}").unwrap();
        lock.release_after(Ok(())).await.unwrap();
        assert!(used.join("manifest.json").exists());
    }

    #[tokio::test]
    async fn a_stale_local_lock_file_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_NAME), b"{\"left\": \"by a dead run\"}").unwrap();
        let loc = Location::local(dir.path());
        let a = DestLock::acquire(&loc, "now", false).await.unwrap();
        let held: Holder =
            serde_json::from_slice(&std::fs::read(dir.path().join(LOCK_NAME)).unwrap()).unwrap();
        assert_eq!(&held, a.holder());
        a.release_after(Ok(())).await.unwrap();
    }
}
