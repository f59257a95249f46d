//! CRC-64/NVME of whole shard files, as the manifest records it (`crc64nvme`, spec section
//! 12) and as S3 keeps it for an object (`x-amz-checksum-crc64nvme`).
//!
//! The manifest's SHA-256 pins a shard; this CRC lets a store's own checksum of an object be
//! compared with the manifest without reading the object back. S3 keeps a whole-object
//! checksum only for the CRC algorithms (a multipart SHA-256 is a checksum of the parts'
//! checksums), and CRC-64/NVME is its default one.
//!
//! The text form is S3's: standard base64 (RFC 4648 section 4, padded) of the CRC's 8 bytes in
//! big-endian order, 12 characters.
//!
//! ```
//! use editshard_format::crc64::{Crc64Nvme, decode, encode};
//! let mut crc = Crc64Nvme::new();
//! crc.update(b"1234");
//! crc.update(b"56789");
//! assert_eq!(crc.finalize(), 0xAE8B_1486_0A79_9888); // the algorithm's check value
//! assert_eq!(encode(0xAE8B_1486_0A79_9888), "rosUhgp5mIg=");
//! assert_eq!(decode("rosUhgp5mIg="), Some(0xAE8B_1486_0A79_9888));
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A CRC-64/NVME being computed over bytes that arrive in pieces.
#[derive(Clone, Copy)]
pub struct Crc64Nvme(crc_fast::Digest);

impl Crc64Nvme {
    pub fn new() -> Crc64Nvme {
        Crc64Nvme(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme))
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The CRC of everything passed to [`update`](Self::update).
    pub fn finalize(&self) -> u64 {
        self.0.finalize()
    }
}

impl Default for Crc64Nvme {
    fn default() -> Self {
        Crc64Nvme::new()
    }
}

impl std::fmt::Debug for Crc64Nvme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Crc64Nvme({})", encode(self.finalize()))
    }
}

/// The CRC-64/NVME of `bytes`.
pub fn crc64nvme(bytes: &[u8]) -> u64 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, bytes)
}

/// `crc` in the manifest's (and S3's) text form.
pub fn encode(crc: u64) -> String {
    STANDARD.encode(crc.to_be_bytes())
}

/// Parses the text form: exactly 12 characters of padded standard base64 that decode to 8
/// bytes and encode back to the same text (one spelling per value).
pub fn decode(text: &str) -> Option<u64> {
    if text.len() != 12 {
        return None;
    }
    let bytes: [u8; 8] = STANDARD.decode(text).ok()?.try_into().ok()?;
    let crc = u64::from_be_bytes(bytes);
    (encode(crc) == text).then_some(crc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value_and_text_form() {
        // CRC-64/NVME's catalogued check value (the CRC of "123456789").
        assert_eq!(crc64nvme(b"123456789"), 0xAE8B_1486_0A79_9888);
        assert_eq!(crc64nvme(b""), 0);
        assert_eq!(encode(0), "AAAAAAAAAAA=");
        for crc in [0, 1, u64::MAX, 0xAE8B_1486_0A79_9888] {
            assert_eq!(decode(&encode(crc)), Some(crc));
        }
        // Not 12 characters, not base64, unpadded, or a second spelling of a value.
        for bad in [
            "",
            "rosUhgp5mIg",
            "rosUhgp5mIg==",
            "rosUhgp5mI!=",
            "rosUhgp5mIh=",
        ] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn pieces_give_the_whole_crc() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let mut crc = Crc64Nvme::new();
        for piece in data.chunks(999) {
            crc.update(piece);
        }
        assert_eq!(crc.finalize(), crc64nvme(&data));
    }
}
