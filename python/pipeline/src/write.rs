//! Writing resampled pixels into one image's slot of a batch tensor (C, H, W, channel-first):
//! the dtype conversion and normalisation are one table lookup per 8-bit value, the flip is
//! the write's column order, and padding is written where the image does not reach.

/// The element type of the batch tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    U8,
    F32,
    /// bfloat16, rounded to nearest even from float32.
    BF16,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::U8 => 1,
            DType::F32 => 4,
            DType::BF16 => 2,
        }
    }
}

/// Per channel, the bytes (native endianness) of each of the 256 input values.
#[derive(Debug, Clone)]
pub struct Encoding {
    dtype: DType,
    tables: Vec<[[u8; 4]; 256]>,
}

fn bf16_bits(v: f32) -> u16 {
    let bits = v.to_bits();
    if v.is_nan() {
        return ((bits >> 16) as u16) | 0x40;
    }
    let rounding = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(rounding) >> 16) as u16
}

impl Encoding {
    /// `channels` tables: value v becomes v (uint8), or v / 255 then `(x - mean) / std`
    /// per channel when given (float32, bfloat16).
    pub fn new(dtype: DType, channels: usize, normalize: Option<(&[f32], &[f32])>) -> Encoding {
        let tables = (0..channels)
            .map(|c| {
                let mut t = [[0u8; 4]; 256];
                for (v, entry) in t.iter_mut().enumerate() {
                    let mut x = v as f32 / 255.0;
                    if let Some((mean, std)) = normalize {
                        x = (x - mean[c]) / std[c];
                    }
                    match dtype {
                        DType::U8 => entry[0] = v as u8,
                        DType::F32 => *entry = x.to_ne_bytes(),
                        DType::BF16 => entry[..2].copy_from_slice(&bf16_bits(x).to_ne_bytes()),
                    }
                }
                t
            })
            .collect();
        Encoding { dtype, tables }
    }

    pub fn channels(&self) -> usize {
        self.tables.len()
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }
}

/// Where the resampled pixels go on the canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dest {
    pub canvas_w: usize,
    pub canvas_h: usize,
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
    pub flip: bool,
}

/// Writes `pixels` (`dest.w` x `dest.h`, interleaved channels) into `slot` (one image of the
/// batch: channels x canvas_h x canvas_w elements), the rest of the canvas as input value 0
/// (black, encoded like any pixel). `pixels` may be empty when the image does not reach the
/// canvas at all (then all of it is padding).
pub fn write(slot: &mut [u8], enc: &Encoding, pixels: &[u8], dest: &Dest) {
    match enc.dtype.size() {
        1 => write_items::<1>(slot, enc, pixels, dest),
        2 => write_items::<2>(slot, enc, pixels, dest),
        _ => write_items::<4>(slot, enc, pixels, dest),
    }
}

fn write_items<const N: usize>(slot: &mut [u8], enc: &Encoding, pixels: &[u8], d: &Dest) {
    let channels = enc.channels();
    let row_len = d.canvas_w * N;
    let plane_len = row_len * d.canvas_h;
    let inside = !pixels.is_empty() && d.w > 0 && d.h > 0;
    for (c, plane) in slot.chunks_exact_mut(plane_len).take(channels).enumerate() {
        let table = &enc.tables[c];
        let pad: [u8; N] = table[0][..N].try_into().expect("N <= 4");
        for (y, row) in plane.chunks_exact_mut(row_len).enumerate() {
            let covered = inside && y >= d.y && y < d.y + d.h;
            if !covered {
                for item in row.chunks_exact_mut(N) {
                    item.copy_from_slice(&pad);
                }
                continue;
            }
            // Columns of the canvas before the flip: [d.x, d.x + d.w) hold the image.
            let (img_lo, img_hi) = if d.flip {
                (d.canvas_w - d.x - d.w, d.canvas_w - d.x)
            } else {
                (d.x, d.x + d.w)
            };
            for item in row[..img_lo * N].chunks_exact_mut(N) {
                item.copy_from_slice(&pad);
            }
            for item in row[img_hi * N..].chunks_exact_mut(N) {
                item.copy_from_slice(&pad);
            }
            let src_row = &pixels[(y - d.y) * d.w * channels..][..d.w * channels];
            let dst = &mut row[img_lo * N..img_hi * N];
            let values = src_row.iter().skip(c).step_by(channels);
            if d.flip {
                for (item, &v) in dst.chunks_exact_mut(N).rev().zip(values) {
                    item.copy_from_slice(&table[usize::from(v)][..N]);
                }
            } else {
                for (item, &v) in dst.chunks_exact_mut(N).zip(values) {
                    item.copy_from_slice(&table[usize::from(v)][..N]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bfloat16_rounds_to_nearest_even() {
        assert_eq!(bf16_bits(1.0), 0x3f80);
        assert_eq!(bf16_bits(-2.0), 0xc000);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1.0).
        assert_eq!(bf16_bits(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(bf16_bits(1.0 + 3.0 / 256.0), 0x3f82);
    }

    #[test]
    fn normalised_float_values() {
        let enc = Encoding::new(DType::F32, 3, Some((&[0.5, 0.25, 0.0], &[0.5, 0.25, 2.0])));
        let f = |c: usize, v: usize| f32::from_ne_bytes(enc.tables[c][v]);
        assert_eq!(f(0, 0), -1.0);
        assert_eq!(f(0, 255), 1.0);
        assert_eq!(f(1, 0), -1.0);
        assert_eq!(f(2, 255), 0.5);
    }

    #[test]
    fn flip_and_padding_in_channel_first_order() {
        let enc = Encoding::new(DType::U8, 2, None);
        // A 2x1 image (values 10,11 / 20,21 interleaved) at x = 1 of a 4x2 canvas, row 1.
        let pixels = [10, 11, 20, 21];
        let mut slot = vec![9u8; 2 * 2 * 4];
        let mut d = Dest {
            canvas_w: 4,
            canvas_h: 2,
            x: 1,
            y: 1,
            w: 2,
            h: 1,
            flip: false,
        };
        write(&mut slot, &enc, &pixels, &d);
        assert_eq!(slot, [0, 0, 0, 0, 0, 10, 20, 0, 0, 0, 0, 0, 0, 11, 21, 0]);
        d.flip = true;
        d.x = 0;
        write(&mut slot, &enc, &pixels, &d);
        assert_eq!(slot, [0, 0, 0, 0, 0, 0, 20, 10, 0, 0, 0, 0, 0, 0, 21, 11]);
        write(&mut slot, &enc, &[], &d);
        assert!(slot.iter().all(|&v| v == 0));
    }
}
