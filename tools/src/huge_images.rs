//! Images that are small stored and huge decoded: a black RGB PNG of any size, written
//! directly (one fixed-Huffman deflate block of back-references), so that a 13000 x 13000
//! image (507 MB decoded) costs about 3 MB and no encoding time.

use editshard::format::wire::crc32;

/// A valid black 8-bit RGB PNG of `width` x `height`.
pub fn black_png(width: u32, height: u32) -> Vec<u8> {
    let raw = (1 + u64::from(width) * 3) * u64::from(height);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // depth 8, RGB, deflate, filter 0, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib_zeros(raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    out.extend_from_slice(&crc_input);
    out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
}

/// A zlib stream of `n` zero bytes: a literal 0, then copies of 258 bytes at distance 1, then
/// literals for the rest.
fn zlib_zeros(n: u64) -> Vec<u8> {
    let mut bits = Bits::default();
    bits.put(1, 1); // BFINAL
    bits.put(1, 2); // BTYPE 01: fixed Huffman codes
    let literal_zero = |bits: &mut Bits| bits.put_code(0x30, 8);
    let mut left = n;
    if left > 0 {
        literal_zero(&mut bits);
        left -= 1;
    }
    while left >= 258 {
        bits.put_code(0xC5, 8); // length code 285: 258 bytes
        bits.put_code(0, 5); // distance code 0: distance 1
        left -= 258;
    }
    for _ in 0..left {
        literal_zero(&mut bits);
    }
    bits.put_code(0, 7); // end of block (256)
    let mut out = vec![0x78, 0x01];
    out.extend_from_slice(&bits.finish());
    // Adler-32 of zeros: a stays 1, b adds 1 per byte.
    let adler = ((n % 65_521) << 16) as u32 | 1;
    out.extend_from_slice(&adler.to_be_bytes());
    out
}

#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    acc: u32,
    len: u32,
}

impl Bits {
    /// `count` bits of `value`, least significant first (header fields, extra bits).
    fn put(&mut self, value: u32, count: u32) {
        for i in 0..count {
            self.acc |= ((value >> i) & 1) << self.len;
            self.len += 1;
            if self.len == 8 {
                self.bytes.push(self.acc as u8);
                self.acc = 0;
                self.len = 0;
            }
        }
    }

    /// A Huffman code of `count` bits, most significant first.
    fn put_code(&mut self, code: u32, count: u32) {
        for i in (0..count).rev() {
            self.put((code >> i) & 1, 1);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.len > 0 {
            self.bytes.push(self.acc as u8);
        }
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_to_a_black_image_of_its_size() {
        for (w, h) in [(1, 1), (3, 2), (97, 40)] {
            let img = image::load_from_memory(&black_png(w, h)).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), (w, h));
            assert!(img.pixels().all(|p| p.0 == [0, 0, 0]));
        }
        let (w, h) = image::ImageReader::new(std::io::Cursor::new(black_png(13_000, 13_000)))
            .with_guessed_format()
            .unwrap()
            .into_dimensions()
            .unwrap();
        assert_eq!((w, h), (13_000, 13_000));
    }
}
