//! One error type for the whole crate.
//!
//! Every error says *what* went wrong and, as far as the code that raised it knows, *where*:
//! the file or shard, the record index and id, and the byte offset. Context is added on the way
//! up with [`Error::in_shard`], [`Error::at_record`] and friends, so the parser deep down only
//! has to know the offset it was looking at.

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
    /// The caller asked for something invalid (a record without image bytes, an unknown id).
    Invalid(String),
}

/// An error with its location.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    shard: Option<String>,
    record: Option<u64>,
    id: Option<String>,
    offset: Option<u64>,
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
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        if self.id.is_none() {
            self.id = Some(id.into());
        }
        self
    }

    fn advice(&self) -> &'static str {
        match &self.kind {
            ErrorKind::Io(e) => match e.kind() {
                std::io::ErrorKind::NotFound => "check the path or URL",
                std::io::ErrorKind::PermissionDenied => "check permissions or credentials",
                std::io::ErrorKind::StorageFull => {
                    "free some space, then run the same command again: finished work is kept"
                }
                std::io::ErrorKind::TimedOut => {
                    "check the network or the server, or allow a longer timeout, then retry"
                }
                _ => "run the same command again; if it keeps failing, check the location",
            },
            ErrorKind::Checksum { .. } | ErrorKind::Malformed(_) | ErrorKind::Truncated(_) => {
                "the shard is damaged or incomplete: fetch it again (e.g. `editshard mirror`) \
                 and check it with `editshard verify`"
            }
            ErrorKind::Unsupported(_) => "upgrade editshard to read this file",
            ErrorKind::Limit(_) => {
                "the input exceeds a safety limit: if the file is trusted, raise the limit \
                 (see spec/FORMAT.md, Limits)"
            }
            ErrorKind::Invalid(_) => "fix the call or its arguments",
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
        }
        write!(f, " ({})", self.advice())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) => Some(e),
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
