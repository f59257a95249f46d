//! One error type for every editshard crate.
//!
//! Every error says *what* went wrong and, as far as the code that raised it knows, *where*:
//! the file or shard, the record index and id, and the byte offset. Context is added on the way
//! up with [`Error::in_shard`], [`Error::at_record`] and friends, so the parser deep down only
//! has to know the offset it was looking at.
//!
//! What to *do* about it is not this crate's business: the core knows no commands, stores or
//! credentials. The layer that does gives the advice (`editshard::advice::hint`, which the
//! `editshard` command prints on a line of its own, and the Python package and the viewer
//! show).
//!
//! ```
//! use editshard_format::Error;
//! let e = Error::checksum(1, 2).in_shard("shard-00000.esd").at_offset(16);
//! assert_eq!(e.to_string(), "shard-00000.esd, byte 16: CRC32 mismatch: stored 0x00000001, computed 0x00000002");
//! assert!(e.is_corruption());
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
    /// A request to a remote store (HTTP or S3) failed, after its retries. The store layer's
    /// own error (the `editshard` crate's `RemoteError`: operation, HTTP status) is the inner
    /// error, and the kind the closest I/O kind (`NotFound`, `PermissionDenied`, `TimedOut`,
    /// `Other`): this crate has no network and knows neither.
    Remote(io::Error),
    /// An internal invariant does not hold: a bug in editshard, to be reported.
    Bug(String),
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
    /// A failed request to a remote store: `error` is the store layer's error, `class` the
    /// closest I/O kind of failure.
    pub fn remote(
        class: io::ErrorKind,
        error: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::new(ErrorKind::Remote(io::Error::new(class, error)))
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
    /// The minor format version of the shard the error arose in, when it is newer than this
    /// reader's ([`Error::from_minor`]).
    pub fn newer_minor(&self) -> Option<u16> {
        self.newer_minor
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
            ErrorKind::Remote(e) => e.kind() == io::ErrorKind::NotFound,
            _ => false,
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
            ErrorKind::Remote(e) => write!(f, "{e}")?,
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
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) => Some(e),
            ErrorKind::Remote(e) => Some(e),
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
