//! Paths named by a manifest or a release: relative, inside the directory or prefix they
//! belong to, and checked before anything is opened, fetched or written.

use crate::error::{Error, Result};

/// Refuses paths that could leave the dataset directory or bucket prefix: empty, absolute,
/// with `.`/`..`/empty components, backslashes, NUL, or longer than 1024 bytes; and the same
/// written with percent-escapes (`%2e%2e`, `..%2f`, `%5c`, `%00`), because a URL built from
/// the path is decoded by the server (and `%2e%2e` by the URL parser itself).
pub fn check_relative_path(path: &str) -> Result<()> {
    let bad_component = |c: &str| {
        let decoded = percent_decoded(c);
        c.is_empty()
            || decoded == b"."
            || decoded == b".."
            || decoded.iter().any(|&b| matches!(b, b'/' | b'\\' | 0))
    };
    let bad = path.is_empty()
        || path.len() > 1024
        || path.starts_with('/')
        || path.contains('\\')
        || path.contains('\0')
        || path.split('/').any(bad_component);
    if bad {
        return Err(Error::malformed(format!(
            "path {path:?} is not a plain relative path inside the dataset"
        )));
    }
    Ok(())
}

/// `%XX` escapes decoded (bytes, not necessarily UTF-8); anything else kept as written.
fn percent_decoded(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_dot_segments_and_separators_are_refused() {
        for bad in [
            "images/%2e%2e/%2e%2e/x.png",
            "images/%2E%2E/x.png",
            "images/.%2e/x.png",
            "images/%2e/x.png",
            "..%2f..%2fx.png",
            "images/a%2Fb.png",
            "images/a%5cb.png",
            "images/a%00.png",
            "../x",
            "a//b",
        ] {
            assert!(check_relative_path(bad).is_err(), "{bad}");
        }
        for good in [
            "images/100%.png",
            "images/a%20b.png",
            "images/%2e%2ex.png",
            "a/b%",
        ] {
            assert!(check_relative_path(good).is_ok(), "{good}");
        }
    }
}
