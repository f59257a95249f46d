//! Paths named by a manifest or a release: relative, inside the directory or prefix they
//! belong to, and checked before anything is opened, fetched or written.

use crate::error::{Error, Result};

/// Refuses paths that could leave the dataset directory or bucket prefix: empty, absolute,
/// with `.`/`..`/empty components, backslashes, NUL, or longer than 1024 bytes.
pub fn check_relative_path(path: &str) -> Result<()> {
    let bad = path.is_empty()
        || path.len() > 1024
        || path.starts_with('/')
        || path.contains('\\')
        || path.contains('\0')
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(Error::malformed(format!(
            "path {path:?} is not a plain relative path inside the dataset"
        )));
    }
    Ok(())
}
