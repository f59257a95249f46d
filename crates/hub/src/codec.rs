//! Decompressing one Parquet page, to exactly the size its header states and never more:
//! the output is allocated only once the compressed bytes are shown able to hold it (Snappy
//! states its length in a preamble and expands at most about 21 times; zstd and gzip grow
//! the output as it comes and stop one byte past the stated size), and zstd's window is
//! capped.

use std::io::Read;

use bytes::Bytes;

/// The codecs this build reads (Parquet's `CompressionCodec` numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Uncompressed,
    Snappy,
    Gzip,
    Zstd,
}

impl Codec {
    pub fn from_thrift(codec: i32) -> Option<Codec> {
        match codec {
            0 => Some(Codec::Uncompressed),
            1 => Some(Codec::Snappy),
            2 => Some(Codec::Gzip),
            6 => Some(Codec::Zstd),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Uncompressed => "uncompressed",
            Codec::Snappy => "Snappy",
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
        }
    }
}

/// Largest zstd window a page may ask for (128 MiB: level 22 with a page of that size); a
/// page smaller than 8 MiB may still ask for 8 MiB (streaming encoders without a size
/// hint), no more.
const MAX_ZSTD_WINDOW_LOG: u32 = 27;
const MIN_ZSTD_WINDOW_LOG: u32 = 23;

/// The most a Snappy stream of `n` bytes can expand to: a 3-byte copy yields 64 bytes.
pub fn snappy_max_output(n: usize) -> u64 {
    (n as u64).div_ceil(3).saturating_mul(64) + 64
}

/// `input` decompressed with `codec`, which must give exactly `expected` bytes. An
/// uncompressed page is handed on as it is (no copy: the Hub writes image columns so).
pub fn decompress(codec: Codec, input: &Bytes, expected: usize) -> Result<Bytes, String> {
    let out = match codec {
        Codec::Uncompressed => {
            if input.len() != expected {
                return Err(format!(
                    "an uncompressed page of {} bytes whose header says {expected}",
                    input.len()
                ));
            }
            return Ok(input.clone());
        }
        Codec::Snappy => {
            let stated = snap::raw::decompress_len(input)
                .map_err(|e| format!("Snappy data without a valid length: {e}"))?;
            if stated != expected {
                return Err(format!(
                    "the Snappy data states {stated} bytes, the page header {expected}"
                ));
            }
            if stated as u64 > snappy_max_output(input.len()) {
                return Err(format!(
                    "{} bytes of Snappy data cannot expand to the {stated} they state",
                    input.len()
                ));
            }
            let mut out = vec![0; stated];
            let n = snap::raw::Decoder::new()
                .decompress(input, &mut out)
                .map_err(|e| format!("damaged Snappy data: {e}"))?;
            out.truncate(n);
            Bytes::from(out)
        }
        Codec::Zstd => {
            if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(input)
                && size != expected as u64
            {
                return Err(format!(
                    "the zstd frame states {size} bytes, the page header {expected}"
                ));
            }
            let mut d = zstd::stream::read::Decoder::with_buffer(&input[..])
                .map_err(|e| format!("zstd: {e}"))?;
            let log = (usize::BITS - expected.leading_zeros())
                .clamp(MIN_ZSTD_WINDOW_LOG, MAX_ZSTD_WINDOW_LOG);
            d.window_log_max(log).map_err(|e| format!("zstd: {e}"))?;
            Bytes::from(
                read_bounded(d, input.len(), expected)
                    .map_err(|e| format!("damaged zstd data: {e}"))?,
            )
        }
        Codec::Gzip => Bytes::from(
            read_bounded(
                flate2::read::MultiGzDecoder::new(&input[..]),
                input.len(),
                expected,
            )
            .map_err(|e| format!("damaged gzip data: {e}"))?,
        ),
    };
    if out.len() != expected {
        return Err(format!(
            "the {} data holds {} bytes, the page header says {expected}",
            codec.name(),
            out.len()
        ));
    }
    Ok(out)
}

/// Reads `r` to its end, or to one byte past `expected` (which the caller then refuses):
/// the buffer grows as bytes come, from a guess no larger than a few times the input.
fn read_bounded(r: impl Read, input_len: usize, expected: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(expected.min(input_len.saturating_mul(4) + (64 << 10)));
    r.take(expected as u64 + 1).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_decompresses_to_its_stated_size_or_is_refused() {
        // Snappy stating 2^31 - 1 bytes in a few: refused before allocating.
        let mut lying = vec![0xff, 0xff, 0xff, 0xff, 0x07];
        lying.extend_from_slice(&[0x0c, b'a', b'b', b'c', b'd']);
        let lying = Bytes::from(lying);
        let e = decompress(Codec::Snappy, &lying, (1 << 31) - 1).unwrap_err();
        assert!(e.contains("cannot expand"), "{e}");
        // zstd of 1 MiB of zeros said to be 1000 bytes: stops just past 1000.
        let big = Bytes::from(zstd::bulk::compress(&vec![0u8; 1 << 20], 3).unwrap());
        let e = decompress(Codec::Zstd, &big, 1000).unwrap_err();
        assert!(e.contains("1048576") || e.contains("1001"), "{e}");
        let ok = decompress(Codec::Zstd, &big, 1 << 20).unwrap();
        assert_eq!(ok.len(), 1 << 20);
        // gzip, honest and understated.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &[7u8; 5000]).unwrap();
        let gz = Bytes::from(gz.finish().unwrap());
        assert_eq!(decompress(Codec::Gzip, &gz, 5000).unwrap(), vec![7u8; 5000]);
        // Uncompressed: the same bytes, not a copy of them.
        let plain = Bytes::from(vec![1u8; 64]);
        let same = decompress(Codec::Uncompressed, &plain, 64).unwrap();
        assert_eq!(same.as_ptr(), plain.as_ptr());
        assert!(decompress(Codec::Uncompressed, &plain, 63).is_err());
        assert!(decompress(Codec::Gzip, &gz, 4999).is_err());
    }
}
