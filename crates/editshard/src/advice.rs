//! What to do about an [`Error`]: advice for a person, naming the `editshard` commands and
//! the credentials a store takes.
//!
//! The format core says what went wrong and where; this layer knows the commands, the stores
//! and their credentials, so the advice lives here. The `editshard` command prints it on a
//! line of its own under the error, the Python package sets it as the exception's `hint`, and
//! the viewer shows it beside the error; a library caller may show it or not.
//!
//! ```
//! use editshard::{Error, advice};
//! let e = Error::checksum(1, 2).in_shard("shard-00000.esd").at_offset(16);
//! assert!(advice::hint(&e).contains("editshard verify"));
//! ```

use std::io;

use crate::error::{Error, ErrorKind};
use crate::manifest::MANIFEST_NAME;
use crate::storage::RemoteError;

/// What to do about `e`.
pub fn hint(e: &Error) -> &'static str {
    if e.newer_minor().is_some() {
        return "the shard was written by a newer version of the format than this editshard \
                reads: upgrade editshard";
    }
    match e.kind() {
        ErrorKind::Io(io) => io_hint(io.kind()),
        ErrorKind::Remote(io) => match RemoteError::of(e) {
            Some(r) => remote_hint(r),
            // A remote failure of another origin: only its kind is known.
            None => io_hint(io.kind()),
        },
        // A manifest is not a shard: `repair` rebuilds it from the shards.
        ErrorKind::Checksum { .. } | ErrorKind::Malformed(_) | ErrorKind::Truncated(_)
            if e.shard().is_some_and(|s| s.ends_with(MANIFEST_NAME)) =>
        {
            "manifest.json is damaged, or not an editshard manifest: check the location \
             (a dataset has manifest.json at its root) or fetch it again; `editshard \
             repair` writes a new dataset, manifest included, from the shards"
        }
        ErrorKind::Checksum { .. } | ErrorKind::Malformed(_) | ErrorKind::Truncated(_) => {
            "the shard is damaged or incomplete: fetch it again (e.g. `editshard mirror`) \
             and check it with `editshard verify`; without a good copy, `editshard repair` \
             salvages every intact record"
        }
        ErrorKind::Unsupported(_) => "upgrade editshard to read this file",
        ErrorKind::Limit(_) => {
            "the input exceeds a safety limit: if the file is trusted, raise the limit \
             (see spec/FORMAT.md, Limits)"
        }
        ErrorKind::Invalid(_) => "fix the call or its arguments",
        ErrorKind::Rejected(_) => "the input cannot be stored as it is: fix or drop it",
        ErrorKind::Bug(_) => {
            "this is a bug in editshard: please report it with the command that caused it"
        }
        // `ErrorKind` is non-exhaustive: a kind added to the core later.
        _ => "check the message above; if it names a path or location, check it, then retry",
    }
}

/// Advice for a local I/O failure of `kind`.
fn io_hint(kind: io::ErrorKind) -> &'static str {
    match kind {
        io::ErrorKind::NotFound => {
            "check the path or URL (a dataset has manifest.json at its root)"
        }
        io::ErrorKind::PermissionDenied => "check permissions or credentials",
        io::ErrorKind::StorageFull => {
            "free some space, then run the same command again: finished work is kept"
        }
        io::ErrorKind::TimedOut => {
            "check the network or the server, or allow a longer timeout, then retry"
        }
        // A path of the wrong kind or in the wrong place: running again changes nothing.
        io::ErrorKind::AlreadyExists
        | io::ErrorKind::NotADirectory
        | io::ErrorKind::IsADirectory
        | io::ErrorKind::DirectoryNotEmpty
        | io::ErrorKind::ReadOnlyFilesystem
        | io::ErrorKind::InvalidInput
        | io::ErrorKind::InvalidFilename => {
            "check the paths given: a file where a directory is expected (or the reverse), \
             or a read-only place"
        }
        // Transient by nature.
        io::ErrorKind::Interrupted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::WouldBlock => "run the same command again: finished work is kept",
        _ => {
            "check the path or location named above; if it is right, run the same command \
             again"
        }
    }
}

/// Advice for a failed request to a remote store: the store's own advice when it has one,
/// otherwise by HTTP status.
fn remote_hint(r: &RemoteError) -> &'static str {
    if let Some(advice) = r.advice {
        return advice;
    }
    match r.status {
        Some(404) => {
            "no such object: check the URL or prefix (a dataset has manifest.json at its root)"
        }
        Some(401 | 403) => {
            "access denied: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or \
             AWS_SESSION_TOKEN) and the bucket's permissions"
        }
        Some(416) => {
            "the object is shorter than expected: it changed or is truncated; fetch it again"
        }
        Some(429 | 500..=599) => {
            "the server is overloaded or failing and retries were exhausted: try again later \
             or allow more retries"
        }
        Some(400..=499) => "the server refused the request: check the URL, region and endpoint",
        _ if r.class == io::ErrorKind::TimedOut => {
            "the server stopped sending: check the network or the server, or allow a longer \
             timeout, then retry"
        }
        _ => "check the network and the endpoint (AWS_ENDPOINT_URL), then retry",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_points_to_verify_and_a_manifest_to_repair() {
        let shard = Error::checksum(1, 2).in_shard("shard-00000.esd");
        assert!(
            hint(&shard).contains("editshard verify"),
            "{}",
            hint(&shard)
        );
        let manifest = Error::malformed("not JSON").in_shard("ds/manifest.json");
        assert!(hint(&manifest).starts_with("manifest.json is damaged"));
    }

    #[test]
    fn a_newer_minor_version_says_upgrade() {
        let e = Error::malformed("unknown field").from_minor(u16::MAX);
        assert!(hint(&e).contains("upgrade editshard"), "{}", hint(&e));
    }

    #[test]
    fn remote_advice_by_status_unless_the_store_knows_better() {
        let remote = |status, advice| {
            Error::from(RemoteError {
                op: "GET".into(),
                status,
                class: io::ErrorKind::PermissionDenied,
                advice,
                source: "denied".into(),
            })
        };
        assert!(hint(&remote(Some(403), None)).contains("AWS_SECRET_ACCESS_KEY"));
        assert_eq!(
            hint(&remote(Some(403), Some("set HF_TOKEN"))),
            "set HF_TOKEN"
        );
        assert_eq!(
            crate::storage::http_status(&remote(Some(403), None)),
            Some(403)
        );
        // The message says what and where only.
        let e = remote(Some(403), None).in_shard("s3://b/x");
        assert_eq!(e.to_string(), "s3://b/x: GET failed: HTTP 403: denied");
    }
}
