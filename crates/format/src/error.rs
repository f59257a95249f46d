//! One error type for every editshard crate.
//!
//! Every error says *what* went wrong and, as far as the code that raised it knows, *where*:
//! the file or shard, the record index and id, and the byte offset. Context is added on the way
//! up with [`Error::in_shard`], [`Error::at_record`] and friends, so the parser deep down only
//! has to know the offset it was looking at.
//!
//! What to *do* about it is separate: [`Error::hint`] gives advice for a person, which the
//! `editshard` command prints on a line of its own. `{}` shows what and where only; the
//! alternate form `{:#}` adds the hint in parentheses.
//!
//! ```
//! use editshard_format::Error;
//! let e = Error::checksum(1, 2).in_shard("shard-00000.esd").at_offset(16);
//! assert_eq!(e.to_string(), "shard-00000.esd, byte 16: CRC32 mismatch: stored 0x00000001, computed 0x00000002");
//! assert!(e.is_corruption());
//! assert!(format!("{e:#}").contains("editshard verify"));
//! ```

use std::fmt;
use std::io;

/// What kind of failure this is. Matching on it is how callers decide between "retry",
/// "skip this record" and "give up".
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An I/O error from the underlying reader, writer or file system.
    Io(io::Error),
    /// The bytes do not follow the format: wrong magic, bad varint, a length out of bounds, a
    /// field that may not be missing, and so on.
    Malformed(String),
    /// A stored CRC32 does not match the bytes it covers.
    Checksum { expected: u32, actual: u32 },
    /// The input ended before the structure it was reading did.
    Truncated(String),
    /// The file is a newer major version (or uses a required feature) this reader does not know.
    Unsupported(String),
    /// A configured resource bound was hit (a frame, a text field or a decompressed block
    /// larger than the limit).
    Limit(String),
    /// The caller asked for something invalid: bad arguments or options, an index out of
    /// range, a call in the wrong state.
    Invalid(String),
    /// Input that is not what it must be, refused before it is stored: bytes that are not an
    /// image, a record the format cannot hold (an id too long, image bytes that do not match
    /// their hash). A converter reports such a row and goes on.
    Rejected(String),
    /// A request to a remote store (HTTP or S3) failed, after its retries.
    Remote(Box<RemoteError>),
    /// An internal invariant does not hold: a bug in editshard, to be reported.
    Bug(String),
}

/// A failed request to a remote store, with the HTTP status when the server sent one and the
/// client library's error as its source.
#[derive(Debug)]
pub struct RemoteError {
    /// The operation: `GET`, `PUT`, `HEAD`, ...
    pub op: String,
    /// The HTTP status of the last response, if there was one.
    pub status: Option<u16>,
    /// What kind of failure this was, as the closest I/O error kind (`NotFound`,
    /// `PermissionDenied`, `TimedOut`, `Other`).
    pub class: io::ErrorKind,
    /// What to do, when the layer that raised the error knows better than its status tells
    /// (a refused redirect, the credentials a particular store takes): [`Error::hint`] then
    /// gives this.
    pub advice: Option<&'static str>,
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// An error with its location.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    shard: Option<String>,
    record: Option<u64>,
    id: Option<String>,
    offset: Option<u64>,
    /// The minor format version of the shard, when it is newer than this reader knows: what
    /// went wrong is then most likely something that version added.
    newer_minor: Option<u16>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind) -> Self {
        Error {
            kind,
            shard: None,
            record: None,
            id: None,
            offset: None,
            newer_minor: None,
        }
    }
    pub fn malformed(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::Malformed(msg.into()))
    }
    pub fn truncated(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::Truncated(msg.into()))
    }
    pub fn unsupported(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unsupported(msg.into()))
    }
    pub fn limit(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::Limit(msg.into()))
    }
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::Invalid(msg.into()))
    }
    pub fn rejected(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::Rejected(msg.into()))
    }
    pub fn bug(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::Bug(msg.into()))
    }
    pub fn remote(error: RemoteError) -> Self {
        Error::new(ErrorKind::Remote(Box::new(error)))
    }
    pub fn checksum(expected: u32, actual: u32) -> Self {
        Error::new(ErrorKind::Checksum { expected, actual })
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
    pub fn shard(&self) -> Option<&str> {
        self.shard.as_deref()
    }
    pub fn record(&self) -> Option<u64> {
        self.record
    }
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
    pub fn offset(&self) -> Option<u64> {
        self.offset
    }

    /// True when the bytes themselves are damaged (as opposed to an I/O failure or a usage
    /// error): the kind of error `skip_corrupt` may skip and `verify` reports as damage.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Malformed(_)
                | ErrorKind::Checksum { .. }
                | ErrorKind::Truncated(_)
                | ErrorKind::Limit(_)
        )
    }

    /// True when the file or object does not exist (a local `NotFound`, or HTTP 404).
    pub fn is_not_found(&self) -> bool {
        match &self.kind {
            ErrorKind::Io(e) => e.kind() == io::ErrorKind::NotFound,
            ErrorKind::Remote(r) => r.class == io::ErrorKind::NotFound,
            _ => false,
        }
    }

    /// The HTTP status behind a remote failure, if the server sent one.
    pub fn http_status(&self) -> Option<u16> {
        match &self.kind {
            ErrorKind::Remote(r) => r.status,
            _ => None,
        }
    }

    /// Names the shard (file name, URL or object key), unless a more precise one is set.
    pub fn in_shard(mut self, shard: impl Into<String>) -> Self {
        if self.shard.is_none() {
            self.shard = Some(shard.into());
        }
        self
    }
    /// Sets the byte offset, unless an inner layer already set a more precise one.
    pub fn at_offset(mut self, offset: u64) -> Self {
        if self.offset.is_none() {
            self.offset = Some(offset);
        }
        self
    }
    /// Replaces the byte offset, whatever was set before.
    pub fn set_offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }
    /// Adds a base to a relative offset already set (a parser that saw only a slice reports
    /// offsets relative to it).
    pub fn shift_offset(mut self, base: u64) -> Self {
        self.offset = Some(base + self.offset.unwrap_or(0));
        self
    }
    pub fn at_record(mut self, index: u64) -> Self {
        if self.record.is_none() {
            self.record = Some(index);
        }
        self
    }
    /// Notes the minor format version of the shard the error arose in: if it is newer than
    /// this reader's, the message says the shard was written by a newer editshard.
    pub fn from_minor(mut self, minor: u16) -> Self {
        if minor > crate::format::VERSION_MINOR {
            self.newer_minor = Some(minor);
        }
        self
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        if self.id.is_none() {
            self.id = Some(id.into());
        }
        self
    }

    /// Advice for a person: what to do about this error. The `editshard` command prints it
    /// under the error; a library caller may show it or not.
    pub fn hint(&self) -> &'static str {
        if self.newer_minor.is_some() {
            return "the shard was written by a newer version of the format than this editshard \
                    reads: upgrade editshard";
        }
        match &self.kind {
            ErrorKind::Io(e) => match e.kind() {
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
                    "check the paths given: a file where a directory is expected (or the \
                     reverse), or a read-only place"
                }
                // Transient by nature.
                io::ErrorKind::Interrupted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::WouldBlock => "run the same command again: finished work is kept",
                _ => {
                    "check the path or location named above; if it is right, run the same \
                      command again"
                }
            },
            ErrorKind::Remote(r) if r.advice.is_some() => r.advice.unwrap_or_default(),
            ErrorKind::Remote(r) => match r.status {
                Some(404) => {
                    "no such object: check the URL or prefix (a dataset has manifest.json at \
                     its root)"
                }
                Some(401 | 403) => {
                    "access denied: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or \
                     AWS_SESSION_TOKEN) and the bucket's permissions"
                }
                Some(416) => {
                    "the object is shorter than expected: it changed or is truncated; fetch it \
                     again"
                }
                Some(429 | 500..=599) => {
                    "the server is overloaded or failing and retries were exhausted: try again \
                     later or allow more retries"
                }
                Some(400..=499) => {
                    "the server refused the request: check the URL, region and endpoint"
                }
                _ if r.class == io::ErrorKind::TimedOut => {
                    "the server stopped sending: check the network or the server, or allow a \
                     longer timeout, then retry"
                }
                _ => "check the network and the endpoint (AWS_ENDPOINT_URL), then retry",
            },
            // A manifest is not a shard: `repair` rebuilds it from the shards.
            ErrorKind::Checksum { .. } | ErrorKind::Malformed(_) | ErrorKind::Truncated(_)
                if self
                    .shard
                    .as_deref()
                    .is_some_and(|s| s.ends_with(crate::manifest::MANIFEST_NAME)) =>
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
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut wrote = false;
        let mut sep = |f: &mut fmt::Formatter<'_>| -> fmt::Result {
            let s = if wrote { ", " } else { "" };
            wrote = true;
            f.write_str(s)
        };
        if let Some(shard) = &self.shard {
            sep(f)?;
            write!(f, "{shard}")?;
        }
        if let Some(record) = self.record {
            sep(f)?;
            write!(f, "record #{record}")?;
        }
        if let Some(id) = &self.id {
            sep(f)?;
            write!(f, "id {id:?}")?;
        }
        if let Some(offset) = self.offset {
            sep(f)?;
            write!(f, "byte {offset}")?;
        }
        if wrote {
            f.write_str(": ")?;
        }
        match &self.kind {
            ErrorKind::Io(e) => write!(f, "I/O error: {e}")?,
            ErrorKind::Malformed(m) => write!(f, "malformed: {m}")?,
            ErrorKind::Checksum { expected, actual } => write!(
                f,
                "CRC32 mismatch: stored {expected:#010x}, computed {actual:#010x}"
            )?,
            ErrorKind::Truncated(m) => write!(f, "truncated: {m}")?,
            ErrorKind::Unsupported(m) => write!(f, "unsupported: {m}")?,
            ErrorKind::Limit(m) => write!(f, "limit exceeded: {m}")?,
            ErrorKind::Invalid(m) => write!(f, "invalid: {m}")?,
            ErrorKind::Rejected(m) => write!(f, "rejected: {m}")?,
            ErrorKind::Remote(r) => {
                write!(f, "{} failed", r.op)?;
                if let Some(status) = r.status {
                    write!(f, ": HTTP {status}")?;
                }
                let shown = r.source.to_string();
                write!(f, ": {shown}")?;
                // The root cause is often deep in the chain (object_store over reqwest over
                // hyper) and not in the top message: "error following redirect" says
                // nothing of which redirect was refused, nor why.
                let mut root: &dyn std::error::Error = r.source.as_ref();
                while let Some(next) = root.source() {
                    root = next;
                }
                let cause = root.to_string();
                if !shown.contains(&cause) {
                    write!(f, ": {cause}")?;
                }
            }
            ErrorKind::Bug(m) => write!(f, "internal error: {m}")?,
        }
        if let Some(minor) = self.newer_minor {
            write!(
                f,
                " (the shard was written by format version {}.{minor}, newer than this \
                 reader's {}.{}: upgrade editshard)",
                crate::format::VERSION_MAJOR,
                crate::format::VERSION_MAJOR,
                crate::format::VERSION_MINOR
            )?;
        }
        if f.alternate() {
            write!(f, " ({})", self.hint())?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) => Some(e),
            ErrorKind::Remote(r) => Some(r.source.as_ref()),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::new(ErrorKind::Io(e))
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e.kind {
            ErrorKind::Io(inner) if e.shard.is_none() && e.offset.is_none() => inner,
            _ => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }
}
