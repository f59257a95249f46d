//! Primitive encodings shared by every structure of the format (spec/FORMAT.md, "Primitives"):
//! little-endian integers, LEB128 varints, and a bounds-checked cursor over a byte slice.
//!
//! The cursor never reads past its slice and never allocates on behalf of a length it read:
//! callers bound every length against a [`super::Limits`] field before using it.

use nom::IResult;
use nom::Parser;
use nom::number::complete::{le_u32, le_u64, u8 as nom_u8};

use crate::error::{Error, Result};

/// Longest valid varint: ten 7-bit groups cover 64 bits.
pub const MAX_VARINT_LEN: usize = 10;

/// Parses an unsigned LEB128 varint. Rejects encodings longer than ten bytes, values that do
/// not fit in 64 bits, and non-minimal encodings (a trailing zero group), so that every value
/// has exactly one encoding.
pub fn varint(input: &[u8]) -> IResult<&[u8], u64> {
    let mut value: u64 = 0;
    for i in 0..MAX_VARINT_LEN {
        let Some(&byte) = input.get(i) else {
            return Err(nom::Err::Incomplete(nom::Needed::new(1)));
        };
        let group = u64::from(byte & 0x7f);
        if i == 9 && byte > 1 {
            return Err(nom_fail(input));
        }
        value |= group << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return Err(nom_fail(input));
            }
            return Ok((&input[i + 1..], value));
        }
    }
    Err(nom_fail(input))
}

fn nom_fail(input: &[u8]) -> nom::Err<nom::error::Error<&[u8]>> {
    nom::Err::Error(nom::error::Error::new(input, nom::error::ErrorKind::Verify))
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// A cursor over a byte slice that knows where the slice sits in the file, so that every
/// error carries an absolute byte offset.
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Cursor<'a> {
    /// `base` is the absolute offset of `buf[0]` in the file (0 when unknown).
    pub fn new(buf: &'a [u8], base: u64) -> Self {
        Cursor { buf, pos: 0, base }
    }
    pub fn position(&self) -> usize {
        self.pos
    }
    /// Absolute file offset of the next byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    fn run<T>(
        &mut self,
        what: &str,
        mut parser: impl FnMut(&'a [u8]) -> IResult<&'a [u8], T>,
    ) -> Result<T> {
        let input = self.rest();
        match parser.parse(input) {
            Ok((rest, value)) => {
                self.pos = self.buf.len() - rest.len();
                Ok(value)
            }
            Err(nom::Err::Incomplete(_)) => Err(self.error_truncated(what)),
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
                // Point at the byte where the parser gave up, not where it started.
                let at = self.buf.len() - e.input.len();
                Err(Error::malformed(format!("invalid {what}")).at_offset(self.base + at as u64))
            }
        }
    }

    fn error_truncated(&self, what: &str) -> Error {
        Error::truncated(format!(
            "{what} runs past the end of its enclosing structure ({} bytes left)",
            self.remaining()
        ))
        .at_offset(self.offset())
    }

    pub fn u8(&mut self, what: &str) -> Result<u8> {
        self.run(what, |i| complete(nom_u8(i)))
    }
    pub fn u32(&mut self, what: &str) -> Result<u32> {
        self.run(what, |i| complete(le_u32(i)))
    }
    pub fn u64(&mut self, what: &str) -> Result<u64> {
        self.run(what, |i| complete(le_u64(i)))
    }
    pub fn varint(&mut self, what: &str) -> Result<u64> {
        self.run(what, varint)
    }
    /// A varint that must lie in `min..=max`; the bound is checked before the value is used
    /// for anything, in particular before any allocation it might size.
    pub fn varint_in(&mut self, what: &str, min: u64, max: u64) -> Result<u64> {
        let at = self.offset();
        let v = self.varint(what)?;
        if v < min || v > max {
            return Err(Error::malformed(format!(
                "{what} is {v}, outside the allowed {min}..={max}"
            ))
            .at_offset(at));
        }
        Ok(v)
    }
    pub fn bytes(&mut self, what: &str, len: usize) -> Result<&'a [u8]> {
        if len > self.remaining() {
            return Err(self.error_truncated(what));
        }
        let out = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }
    pub fn utf8(&mut self, what: &str, len: usize) -> Result<&'a str> {
        let at = self.offset();
        let bytes = self.bytes(what, len)?;
        std::str::from_utf8(bytes)
            .map_err(|_| Error::malformed(format!("{what} is not valid UTF-8")).at_offset(at))
    }
    /// Fails unless every byte was consumed.
    pub fn finish(&self, what: &str) -> Result<()> {
        if self.remaining() != 0 {
            return Err(Error::malformed(format!(
                "{} unexpected bytes at the end of {what}",
                self.remaining()
            ))
            .at_offset(self.offset()));
        }
        Ok(())
    }
}

/// The `complete` number parsers report a short input as an error; the cursor wants to tell
/// "truncated" apart from "invalid", so turn that case back into `Incomplete`.
fn complete<T>(r: IResult<&[u8], T>) -> IResult<&[u8], T> {
    match r {
        Err(nom::Err::Error(e)) if e.code == nom::error::ErrorKind::Eof => {
            Err(nom::Err::Incomplete(nom::Needed::Unknown))
        }
        other => other,
    }
}

pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_lengths() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            assert_eq!(varint(&out).unwrap(), (&[][..], v));
        }
    }

    #[test]
    fn varint_rejects_non_minimal_overlong_and_overflow() {
        assert!(varint(&[0x80, 0x00]).is_err(), "non-minimal zero");
        assert!(varint(&[0xff; 11]).is_err(), "eleven bytes");
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert!(varint(&over).is_err(), "65 bits");
        assert!(matches!(varint(&[0x80]), Err(nom::Err::Incomplete(_))));
    }

    #[test]
    fn cursor_reports_absolute_offsets() {
        let mut c = Cursor::new(&[1, 2, 3], 100);
        c.u8("a").unwrap();
        let err = c.u32("b").unwrap_err();
        assert_eq!(err.offset(), Some(101));
        assert!(matches!(err.kind(), crate::error::ErrorKind::Truncated(_)));
    }

    #[test]
    fn crc_is_iso_hdlc() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
