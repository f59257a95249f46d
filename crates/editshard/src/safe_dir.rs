//! Directories inside a destination, created or entered without following a symbolic link.
//!
//! A destination (`convert --out`, `mix DEST`, `mirror`'s target, `repair --out`) may already
//! hold entries when a run starts: an earlier run's, or someone's planted link. A path such as
//! `DEST/NAME/part-0/shard.esd` written with ordinary calls follows a link at `NAME` or
//! `part-0` and writes wherever it points. [`SafeDir`] walks such a path one component at a
//! time from the destination's root, each directory opened relative to the one before with
//! `O_NOFOLLOW` (made first if it is missing), so every directory it returns is a real
//! directory inside the root, and the files it makes are created, renamed and removed relative
//! to that open directory: a link swapped in after the check is not followed either. The root
//! itself is the user's choice and may be a link.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, CWD, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};

/// A directory inside a destination, open.
#[derive(Debug)]
pub struct SafeDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl SafeDir {
    /// The directories of `rel` (relative; plain names) inside `root`, each made if missing
    /// or found as a directory, never through a symbolic link: the innermost, open.
    pub fn create_inside(root: &Path, rel: &Path) -> Result<SafeDir> {
        SafeDir::walk(root, rel, true).map(|d| d.expect("created"))
    }

    /// As [`create_inside`](Self::create_inside) without creating anything: `None` when a
    /// directory of `rel` does not exist.
    pub fn open_inside(root: &Path, rel: &Path) -> Result<Option<SafeDir>> {
        SafeDir::walk(root, rel, false)
    }

    fn walk(root: &Path, rel: &Path, create: bool) -> Result<Option<SafeDir>> {
        let shown = |p: &Path| p.display().to_string();
        let dir_flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
        let mut fd = match rustix::fs::openat(CWD, root, dir_flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if !create => return Ok(None),
            Err(e) => return Err(Error::from(std::io::Error::from(e)).in_shard(shown(root))),
        };
        let mut path = root.to_path_buf();
        for component in rel.components() {
            let name = match component {
                Component::Normal(name) => name,
                Component::CurDir => continue,
                _ => {
                    return Err(Error::invalid(format!(
                        "{}: only plain names are allowed below {}",
                        rel.display(),
                        root.display()
                    )));
                }
            };
            path.push(name);
            if create {
                match rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(0o777)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => {
                        return Err(Error::from(std::io::Error::from(e)).in_shard(shown(&path)));
                    }
                }
            }
            fd = match rustix::fs::openat(&fd, name, dir_flags | OFlags::NOFOLLOW, Mode::empty()) {
                Ok(next) => next,
                Err(Errno::NOENT) if !create => return Ok(None),
                Err(Errno::LOOP) => return Err(not_followed(&path, root, "a symbolic link")),
                Err(Errno::NOTDIR) => {
                    let what = match std::fs::symlink_metadata(&path) {
                        Ok(m) if m.file_type().is_symlink() => "a symbolic link",
                        _ => "not a directory",
                    };
                    return Err(not_followed(&path, root, what));
                }
                Err(e) => return Err(Error::from(std::io::Error::from(e)).in_shard(shown(&path))),
            };
        }
        Ok(Some(SafeDir { fd, path }))
    }

    /// The directory's path (for messages, and for reads).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the file `name` here, exclusively (`O_CREAT | O_EXCL`, which never follows a
    /// link), for writing (and reading back what was written: a ranged download hashes
    /// parts of its file again).
    pub fn create_new(&self, name: &OsStr) -> std::io::Result<File> {
        let flags =
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(0o666))?;
        Ok(File::from(fd))
    }

    /// Renames `from` to `to`, both here (a link at `to` is replaced, not followed).
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> std::io::Result<()> {
        Ok(rustix::fs::renameat(&self.fd, from, &self.fd, to)?)
    }

    /// Moves the file at `from` (a path of the caller's, on the same file system) to `name`
    /// here (a link at `name` is replaced, not followed).
    pub fn rename_into(&self, from: &Path, name: &OsStr) -> std::io::Result<()> {
        Ok(rustix::fs::renameat(CWD, from, &self.fd, name)?)
    }

    /// Removes the file (or link) `name` here; one that does not exist is not an error.
    pub fn remove_file(&self, name: &OsStr) -> std::io::Result<()> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes `name` here a hard link to the file at `target` (never to a link: `target` is
    /// not followed either).
    pub fn hard_link(&self, target: &Path, name: &OsStr) -> std::io::Result<()> {
        Ok(rustix::fs::linkat(
            CWD,
            target,
            &self.fd,
            name,
            AtFlags::empty(),
        )?)
    }

    /// The names of the entries here.
    pub fn names(&self) -> std::io::Result<Vec<OsString>> {
        use std::os::unix::ffi::OsStrExt;
        let mut dir = rustix::fs::Dir::read_from(&self.fd)?;
        let mut out = Vec::new();
        while let Some(entry) = dir.read() {
            let name = entry?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                out.push(OsStr::from_bytes(&name).to_os_string());
            }
        }
        Ok(out)
    }

    /// Makes the directory's entries durable (best effort: not every file system can).
    pub fn sync(&self) {
        let _ = rustix::fs::fsync(&self.fd);
    }
}

fn not_followed(path: &Path, root: &Path, what: &str) -> Error {
    Error::invalid(format!(
        "{} is {what}: refused, nothing is written through it (editshard writes only into \
         directories it makes, or finds as directories, inside {}); move it away",
        path.display(),
        root.display()
    ))
    .in_shard(path.display().to_string())
}

/// The directory part and the file name of a relative `/`-separated path.
pub fn split(rel: &str) -> (&str, &str) {
    match rel.rsplit_once('/') {
        Some((dir, name)) => (dir, name),
        None => ("", rel),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_files_in_the_path_are_refused_and_directories_made() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let made = SafeDir::create_inside(root, Path::new("a/b/c")).unwrap();
        assert!(root.join("a/b/c").is_dir());
        assert_eq!(made.path(), root.join("a/b/c"));
        let f = made.create_new(OsStr::new("x.partial")).unwrap();
        drop(f);
        made.rename(OsStr::new("x.partial"), OsStr::new("x"))
            .unwrap();
        assert!(root.join("a/b/c/x").is_file());
        assert_eq!(made.names().unwrap(), [OsString::from("x")]);
        made.remove_file(OsStr::new("x")).unwrap();
        made.remove_file(OsStr::new("x")).unwrap();

        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("a/link")).unwrap();
        let e = SafeDir::create_inside(root, Path::new("a/link/d")).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
        std::os::unix::fs::symlink("/nonexistent", root.join("dangling")).unwrap();
        assert!(SafeDir::create_inside(root, Path::new("dangling")).is_err());
        std::fs::write(root.join("file"), b"").unwrap();
        let e = SafeDir::create_inside(root, Path::new("file/d")).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
        assert!(SafeDir::create_inside(root, Path::new("../x")).is_err());
        assert!(
            SafeDir::open_inside(root, Path::new("none/here"))
                .unwrap()
                .is_none()
        );
        assert!(SafeDir::open_inside(root, Path::new("a/link")).is_err());
    }
}
