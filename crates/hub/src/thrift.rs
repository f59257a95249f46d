//! A bounded reader of the Thrift compact protocol, in which Parquet writes its footer and
//! its page headers. The `parquet` crate allocates what a list header claims and recurses as
//! deep as structs nest; this reader is what checks those bytes first: every length and
//! count is held to what the remaining bytes can hold, and nesting to [`MAX_DEPTH`].

/// Deepest nesting of structs and containers accepted (Parquet's own structures nest about
/// six deep: a footer's statistics inside column metadata inside a row group's chunk).
pub const MAX_DEPTH: u32 = 32;

/// Compact-protocol type codes.
pub const BOOL_TRUE: u8 = 1;
pub const BOOL_FALSE: u8 = 2;
pub const BYTE: u8 = 3;
pub const I16: u8 = 4;
pub const I32: u8 = 5;
pub const I64: u8 = 6;
pub const DOUBLE: u8 = 7;
pub const BINARY: u8 = 8;
pub const LIST: u8 = 9;
pub const SET: u8 = 10;
pub const MAP: u8 = 11;
pub const STRUCT: u8 = 12;

pub type Result<T> = std::result::Result<T, String>;

/// A reader over `buf`; errors name the byte offset in it.
pub struct Compact<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: u32,
}

impl<'a> Compact<'a> {
    pub fn new(buf: &'a [u8]) -> Compact<'a> {
        Compact {
            buf,
            pos: 0,
            depth: 0,
        }
    }

    /// Bytes read so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn err(&self, what: impl std::fmt::Display) -> String {
        format!("{what} (at byte {})", self.pos)
    }

    fn byte(&mut self) -> Result<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.err("the bytes end inside a Thrift structure"))?;
        self.pos += 1;
        Ok(b)
    }

    pub fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(self.err("a varint longer than 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err("a varint longer than 10 bytes"))
    }

    pub fn i64(&mut self) -> Result<i64> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    pub fn i32(&mut self) -> Result<i32> {
        let v = self.i64()?;
        i32::try_from(v).map_err(|_| self.err(format_args!("{v} does not fit a 32-bit field")))
    }

    /// A binary or string value, borrowed; its length is held to the bytes left.
    pub fn binary(&mut self) -> Result<&'a [u8]> {
        let len = self.varint()?;
        if len > self.remaining() as u64 {
            return Err(self.err(format_args!(
                "a string of {len} bytes where {} are left",
                self.remaining()
            )));
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(&self.buf[start..self.pos])
    }

    /// The next field of a struct: `None` at its end. `last` is the previous field's id
    /// (the compact protocol sends deltas).
    pub fn field(&mut self, last: &mut i16) -> Result<Option<(i16, u8)>> {
        let b = self.byte()?;
        if b == 0 {
            return Ok(None);
        }
        let ty = b & 0x0f;
        let delta = b >> 4;
        let id = if delta == 0 {
            let v = self.i64()?;
            i16::try_from(v).map_err(|_| self.err(format_args!("field id {v}")))?
        } else {
            last.checked_add(i16::from(delta))
                .ok_or_else(|| self.err("field id overflow"))?
        };
        *last = id;
        Ok(Some((id, ty)))
    }

    /// A list or set header: element type and count. The count is held to what the bytes
    /// left can hold (every element takes at least one byte, a double eight).
    pub fn list(&mut self) -> Result<(u8, u64)> {
        let b = self.byte()?;
        let elem = b & 0x0f;
        let count = match b >> 4 {
            15 => self.varint()?,
            n => u64::from(n),
        };
        let min = if elem == DOUBLE { 8 } else { 1 };
        if count.saturating_mul(min) > self.remaining() as u64 {
            return Err(self.err(format_args!(
                "a list claiming {count} elements where {} bytes are left",
                self.remaining()
            )));
        }
        Ok((elem, count))
    }

    /// Enters a struct or container: one level deeper, up to [`MAX_DEPTH`].
    pub fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(format_args!(
                "Thrift structures nested more than {MAX_DEPTH} deep"
            )));
        }
        Ok(())
    }

    pub fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Reads a value of type `ty` and throws it away.
    pub fn skip(&mut self, ty: u8) -> Result<()> {
        match ty {
            BOOL_TRUE | BOOL_FALSE => Ok(()),
            BYTE => self.byte().map(drop),
            I16 | I32 | I64 => self.varint().map(drop),
            DOUBLE => {
                if self.remaining() < 8 {
                    return Err(self.err("the bytes end inside a double"));
                }
                self.pos += 8;
                Ok(())
            }
            BINARY => self.binary().map(drop),
            LIST | SET => {
                let (elem, count) = self.list()?;
                no_booleans(&[elem], count).map_err(|e| self.err(e))?;
                self.enter()?;
                for _ in 0..count {
                    self.skip(elem)?;
                }
                self.leave();
                Ok(())
            }
            MAP => {
                let count = self.varint()?;
                if count == 0 {
                    return Ok(());
                }
                if count.saturating_mul(2) > self.remaining() as u64 {
                    return Err(self.err(format_args!(
                        "a map claiming {count} entries where {} bytes are left",
                        self.remaining()
                    )));
                }
                let kinds = self.byte()?;
                no_booleans(&[kinds >> 4, kinds & 0x0f], count).map_err(|e| self.err(e))?;
                self.enter()?;
                for _ in 0..count {
                    self.skip(kinds >> 4)?;
                    self.skip(kinds & 0x0f)?;
                }
                self.leave();
                Ok(())
            }
            STRUCT => self.skip_struct(),
            other => Err(self.err(format_args!("unknown Thrift type {other}"))),
        }
    }

    /// Reads a whole struct and throws it away.
    pub fn skip_struct(&mut self) -> Result<()> {
        self.enter()?;
        let mut last = 0;
        while let Some((_, ty)) = self.field(&mut last)? {
            self.skip(ty)?;
        }
        self.leave();
        Ok(())
    }

    /// Reads a struct field by field: `f` gets each field's id and type and must read its
    /// value (or call `skip`).
    pub fn read_struct(
        &mut self,
        mut f: impl FnMut(&mut Self, i16, u8) -> Result<()>,
    ) -> Result<()> {
        self.enter()?;
        let mut last = 0;
        while let Some((id, ty)) = self.field(&mut last)? {
            f(self, id, ty)?;
        }
        self.leave();
        Ok(())
    }

    /// A field's value as an integer, whatever integer type it was written with.
    pub fn int(&mut self, ty: u8) -> Result<i64> {
        match ty {
            I16 | I32 | I64 => self.i64(),
            BYTE => Ok(i64::from(self.byte()? as i8)),
            other => Err(self.err(format_args!("an integer field of Thrift type {other}"))),
        }
    }

    /// A boolean field's value (the compact protocol keeps it in the type code).
    pub fn boolean(&self, ty: u8) -> Result<bool> {
        match ty {
            BOOL_TRUE => Ok(true),
            BOOL_FALSE => Ok(false),
            other => Err(self.err(format_args!("a boolean field of Thrift type {other}"))),
        }
    }
}

/// Refuses a container of booleans. The compact protocol gives each boolean element a
/// byte, but the `parquet` crate skips them as taking none (it skips them as boolean
/// fields), so past one the two would read different bytes: the crate could take a list
/// count this reader never saw. Neither a footer nor a page header holds one.
fn no_booleans(kinds: &[u8], count: u64) -> std::result::Result<(), &'static str> {
    if count > 0 && kinds.iter().any(|&k| k == BOOL_TRUE || k == BOOL_FALSE) {
        return Err("a container of booleans, which no Parquet footer or page header holds");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_lengths_are_held_to_the_bytes_left() {
        // A list header claiming 2^31 - 1 structs, and nothing after it.
        let mut r = Compact::new(&[0xfc, 0xff, 0xff, 0xff, 0xff, 0x07]);
        let e = r.list().unwrap_err();
        assert!(e.contains("2147483647"), "{e}");
        // A string claiming 2^40 bytes.
        let mut r = Compact::new(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x20, b'x']);
        assert!(r.binary().unwrap_err().contains("1099511627776"));
        // A varint that never ends.
        let mut r = Compact::new(&[0xff; 11]);
        assert!(r.varint().is_err());
    }

    #[test]
    fn containers_of_booleans_are_refused() {
        // A list of 8 booleans: the parquet crate would read its 8 bytes as fields.
        let mut r = Compact::new(&[0x81, 1, 1, 1, 1, 1, 1, 1, 1]);
        assert!(r.skip(LIST).unwrap_err().contains("booleans"));
        // A map of i32 to booleans.
        let mut r = Compact::new(&[0x01, 0x51, 0x02, 0x01]);
        assert!(r.skip(MAP).unwrap_err().contains("booleans"));
        // Empty ones are nothing to disagree on.
        Compact::new(&[0x01]).skip(LIST).unwrap();
    }

    #[test]
    fn nesting_is_held_to_the_limit() {
        // Structs nested 1000 deep: field 1, type struct, again and again.
        let mut bytes = vec![0x1c; 1000];
        bytes.extend(vec![0; 1001]);
        let e = Compact::new(&bytes).skip_struct().unwrap_err();
        assert!(e.contains("nested"), "{e}");
        let mut ok = vec![0x1c; 10];
        ok.extend(vec![0; 11]);
        Compact::new(&ok).skip_struct().unwrap();
    }
}
