//! The three fixed-size structures: the shard header, the frame header and the trailer.

use super::wire::{Cursor, crc32};
use super::{
    FRAME_HEADER_LEN, HEADER_LEN, SHARD_MAGIC, TRAILER_LEN, TRAILER_MAGIC, VERSION_MAJOR,
    VERSION_MINOR,
};
use crate::error::{Error, Result};

/// The first 16 bytes of a shard: magic, version, and a CRC of both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardHeader {
    pub major: u16,
    pub minor: u16,
}

impl ShardHeader {
    pub const CURRENT: ShardHeader = ShardHeader {
        major: VERSION_MAJOR,
        minor: VERSION_MINOR,
    };

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(&SHARD_MAGIC);
        out[8..10].copy_from_slice(&self.major.to_le_bytes());
        out[10..12].copy_from_slice(&self.minor.to_le_bytes());
        let crc = crc32(&out[..12]);
        out[12..16].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses and checks a header. A newer minor version is accepted (its additions are
    /// optional by rule); a different major version is not.
    pub fn parse(bytes: &[u8]) -> Result<ShardHeader> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::truncated(format!(
                "the shard header needs {HEADER_LEN} bytes, got {}",
                bytes.len()
            ))
            .at_offset(0));
        }
        if bytes[..8] != SHARD_MAGIC {
            return Err(Error::malformed(
                "not an editshard shard (the first 8 bytes are not the shard magic)",
            )
            .at_offset(0));
        }
        let stored = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
        let actual = crc32(&bytes[..12]);
        if stored != actual {
            return Err(Error::checksum(stored, actual).at_offset(12));
        }
        let major = u16::from_le_bytes([bytes[8], bytes[9]]);
        let minor = u16::from_le_bytes([bytes[10], bytes[11]]);
        if major != VERSION_MAJOR {
            return Err(Error::unsupported(format!(
                "format version {major}.{minor}; this reader reads {VERSION_MAJOR}.x"
            ))
            .at_offset(8));
        }
        Ok(ShardHeader { major, minor })
    }
}

/// The 8 bytes in front of every frame body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub body_len: u32,
    pub body_crc: u32,
}

impl FrameHeader {
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut out = [0u8; FRAME_HEADER_LEN];
        out[..4].copy_from_slice(&self.body_len.to_le_bytes());
        out[4..].copy_from_slice(&self.body_crc.to_le_bytes());
        out
    }

    /// `offset` is the absolute position of the header, for error messages.
    pub fn parse(bytes: &[u8], offset: u64) -> Result<FrameHeader> {
        let mut c = Cursor::new(bytes, offset);
        let body_len = c.u32("frame length")?;
        let body_crc = c.u32("frame CRC")?;
        if body_len < 2 {
            return Err(Error::malformed(format!(
                "frame length {body_len} is shorter than the 2-byte type and flags"
            ))
            .at_offset(offset));
        }
        Ok(FrameHeader { body_len, body_crc })
    }

    /// Header plus body.
    pub fn frame_len(&self) -> u64 {
        FRAME_HEADER_LEN as u64 + u64::from(self.body_len)
    }
}

/// The last 32 bytes of a shard: where the index frame is and how many records there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Absolute offset of the index frame's header.
    pub index_offset: u64,
    /// Length of the index frame, header included.
    pub index_len: u64,
    pub record_count: u64,
}

impl Trailer {
    pub fn encode(&self) -> [u8; TRAILER_LEN] {
        let mut out = [0u8; TRAILER_LEN];
        out[..8].copy_from_slice(&self.index_offset.to_le_bytes());
        out[8..16].copy_from_slice(&self.index_len.to_le_bytes());
        out[16..24].copy_from_slice(&self.record_count.to_le_bytes());
        let crc = crc32(&out[..24]);
        out[24..28].copy_from_slice(&crc.to_le_bytes());
        out[28..].copy_from_slice(&TRAILER_MAGIC);
        out
    }

    /// `offset` is the absolute position of the trailer. When `file_len` is known, the index
    /// location is checked against it.
    pub fn parse(bytes: &[u8], offset: u64) -> Result<Trailer> {
        if bytes.len() != TRAILER_LEN {
            return Err(Error::truncated(format!(
                "the trailer is {TRAILER_LEN} bytes, got {}",
                bytes.len()
            ))
            .at_offset(offset));
        }
        if bytes[28..] != TRAILER_MAGIC {
            return Err(Error::malformed(
                "no shard trailer at the end of the file (the file is truncated or not a shard)",
            )
            .at_offset(offset + 28));
        }
        let stored = u32::from_le_bytes(bytes[24..28].try_into().expect("4 bytes"));
        let actual = crc32(&bytes[..24]);
        if stored != actual {
            return Err(Error::checksum(stored, actual).at_offset(offset + 24));
        }
        let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let t = Trailer {
            index_offset: word(0),
            index_len: word(8),
            record_count: word(16),
        };
        // The index frame must end exactly where the trailer starts.
        if t.index_offset.checked_add(t.index_len) != Some(offset)
            || t.index_offset < HEADER_LEN as u64
            || t.index_len < FRAME_HEADER_LEN as u64 + 2
        {
            return Err(Error::malformed(format!(
                "the trailer places the index at {}..+{}, which does not end at the trailer ({offset})",
                t.index_offset, t.index_len
            ))
            .at_offset(offset));
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_damage() {
        let bytes = ShardHeader::CURRENT.encode();
        assert_eq!(ShardHeader::parse(&bytes).unwrap(), ShardHeader::CURRENT);
        for i in 0..HEADER_LEN {
            let mut bad = bytes;
            bad[i] ^= 0x40;
            assert!(ShardHeader::parse(&bad).is_err(), "flip at {i}");
        }
        let newer = ShardHeader { major: 1, minor: 7 }.encode();
        assert_eq!(ShardHeader::parse(&newer).unwrap().minor, 7);
        let major2 = ShardHeader { major: 2, minor: 0 }.encode();
        assert!(matches!(
            ShardHeader::parse(&major2).unwrap_err().kind(),
            crate::error::ErrorKind::Unsupported(_)
        ));
    }

    #[test]
    fn trailer_round_trip_and_placement() {
        let t = Trailer {
            index_offset: 100,
            index_len: 50,
            record_count: 3,
        };
        assert_eq!(Trailer::parse(&t.encode(), 150).unwrap(), t);
        assert!(Trailer::parse(&t.encode(), 151).is_err());
        assert!(Trailer::parse(&t.encode()[..31], 150).is_err());
    }
}
