//! Paired image augmentation written straight into batch tensors.
//!
//! For each image of a batch: decode ([`decode`]: JPEG, PNG, WebP, bounded, a JPEG wanted at
//! half its size or less decoded smaller by its IDCT), resample the record's crop box to the
//! canvas ([`resample`]), and write it once into its slot of the batch's contiguous memory
//! with the flip, dtype conversion and normalisation ([`write`]). Every image of a record
//! shares one [`Placement`] ([`geometry`]), drawn from (seed, epoch, record id). The images of
//! a batch are rendered on a bounded number of scoped threads ([`Pipeline::render_all`]).

pub mod decode;
pub mod geometry;
pub mod resample;
pub mod write;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use decode::{DecodeError, Limits};
pub use geometry::{Crop, Geometry, Placement, Resize};
pub use resample::Filter;
pub use write::{DType, Encoding};

/// What an image is for: colour images have three channels and the chosen filter; a mask
/// has one channel (its luma), is resampled with nearest neighbours (as torchvision does for
/// a `Mask`) and is never normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Color,
    Mask,
}

/// Everything configured once.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub geometry: Geometry,
    pub filter: Filter,
    pub limits: Limits,
    /// Decode a JPEG needed at half its size or less at that size (its IDCT's scaling).
    pub scaled_jpeg: bool,
    color: Encoding,
    mask: Encoding,
}

/// One image to render into its slot.
pub struct Job<'a> {
    pub bytes: &'a [u8],
    pub kind: Kind,
    pub placement: Placement,
    /// This image's elements of the batch tensor: [`Pipeline::slot_len`] bytes.
    pub slot: &'a mut [u8],
}

/// Per-thread memory reused from image to image.
#[derive(Default)]
struct Scratch {
    resizer: fast_image_resize::Resizer,
    resized: Vec<u8>,
}

impl Pipeline {
    /// `normalize`: per-channel mean and std (of values in 0..1) for colour images.
    pub fn new(
        geometry: Geometry,
        filter: Filter,
        dtype: DType,
        normalize: Option<([f32; 3], [f32; 3])>,
        limits: Limits,
        scaled_jpeg: bool,
    ) -> Pipeline {
        let norm = normalize.as_ref().map(|(m, s)| (&m[..], &s[..]));
        Pipeline {
            geometry,
            filter,
            limits,
            scaled_jpeg,
            color: Encoding::new(dtype, 3, norm),
            mask: Encoding::new(dtype, 1, None),
        }
    }

    fn encoding(&self, kind: Kind) -> &Encoding {
        match kind {
            Kind::Color => &self.color,
            Kind::Mask => &self.mask,
        }
    }

    pub fn channels(&self, kind: Kind) -> usize {
        self.encoding(kind).channels()
    }

    /// Bytes of one image's slot in a batch tensor.
    pub fn slot_len(&self, kind: Kind) -> usize {
        let g = &self.geometry;
        self.channels(kind) * g.height as usize * g.width as usize * self.color.dtype().size()
    }

    /// The placement of a record (see [`Geometry::place`]).
    pub fn place(&self, seed: u64, epoch: u64, key: &[u8], ref_w: u32, ref_h: u32) -> Placement {
        self.geometry.place(seed, epoch, key, ref_w, ref_h)
    }

    fn render(&self, job: &mut Job<'_>, scratch: &mut Scratch) -> Result<(), DecodeError> {
        let g = self.geometry;
        let p = job.placement;
        let (channels, filter) = match job.kind {
            Kind::Color => (3, self.filter),
            Kind::Mask => (1, Filter::Nearest),
        };
        // The image's whole size at the canvas' scale: what a scaled JPEG decode must reach.
        let want = |_, _| {
            // (Less a hair: 224 / (224 / 298) must stay 298, not round up to 299.)
            let up = |canvas: u32, frac: f64| {
                (f64::from(canvas) / frac - 1e-6)
                    .ceil()
                    .clamp(1.0, f64::from(u32::MAX)) as u32
            };
            (up(g.width, p.w), up(g.height, p.h))
        };
        let pixels = decode::decode(job.bytes, channels, want, self.scaled_jpeg, &self.limits)?;
        let enc = self.encoding(job.kind);
        let region = p.region(pixels.width, pixels.height, g.width, g.height);
        let dest = match region {
            Some(r) => {
                resample::resample(&mut scratch.resizer, &pixels, &r, filter, &mut scratch.resized)
                    .map_err(|e| DecodeError::Invalid(format!("resampling: {e}")))?;
                write::Dest {
                    canvas_w: g.width as usize,
                    canvas_h: g.height as usize,
                    x: r.dst_x as usize,
                    y: r.dst_y as usize,
                    w: r.dst_w as usize,
                    h: r.dst_h as usize,
                    flip: p.flip,
                }
            }
            None => {
                scratch.resized.clear();
                write::Dest {
                    canvas_w: g.width as usize,
                    canvas_h: g.height as usize,
                    x: 0,
                    y: 0,
                    w: 0,
                    h: 0,
                    flip: p.flip,
                }
            }
        };
        drop(pixels);
        write::write(job.slot, enc, &scratch.resized, &dest);
        Ok(())
    }

    /// Renders every job on at most `threads` threads (scoped to this call: no thread
    /// outlives it, so nothing is left behind across a `fork`). One result per job, in
    /// order. A slot whose job failed holds unspecified values.
    pub fn render_all(&self, jobs: Vec<Job<'_>>, threads: usize) -> Vec<Result<(), DecodeError>> {
        let n = jobs.len();
        let jobs: Vec<Mutex<Job<'_>>> = jobs.into_iter().map(Mutex::new).collect();
        let results: Vec<Mutex<Option<Result<(), DecodeError>>>> =
            (0..n).map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let work = || {
            let mut scratch = Scratch::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let mut job = jobs[i].lock().unwrap_or_else(|p| p.into_inner());
                // A decoder that panics on hostile bytes is this image's error, not the
                // process' end.
                let result = catch_unwind(AssertUnwindSafe(|| self.render(&mut job, &mut scratch)))
                    .unwrap_or_else(|panic| {
                        let what = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        scratch = Scratch::default();
                        Err(DecodeError::Invalid(format!("the decoder failed: {what}")))
                    });
                *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
            }
        };
        let threads = threads.clamp(1, n.max(1));
        if threads == 1 {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(work);
                }
            });
        }
        results
            .into_iter()
            .map(|r| {
                r.into_inner()
                    .unwrap_or_else(|p| p.into_inner())
                    .unwrap_or_else(|| Err(DecodeError::Invalid("not rendered".into())))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn png_of(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 200]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    fn pipeline(resize: Resize, crop: Crop, flip: f64) -> Pipeline {
        Pipeline::new(
            Geometry {
                height: 32,
                width: 48,
                resize,
                crop,
                flip,
            },
            Filter::Bilinear,
            DType::U8,
            None,
            Limits {
                max_bytes: 1 << 30,
                max_side: 32_768,
            },
            true,
        )
    }

    #[test]
    fn paired_images_get_the_same_pixels_and_coordinates_survive() {
        let p = pipeline(Resize::Shorter, Crop::Random, 0.5);
        let png = png_of(100, 32); // shorter side = 32 = canvas height: scale 1
        let mut slots = vec![vec![0u8; p.slot_len(Kind::Color)]; 8];
        let placements: Vec<Placement> = (0..4)
            .map(|i| p.place(3, 1, format!("r{i}").as_bytes(), 100, 32))
            .collect();
        let jobs = slots
            .iter_mut()
            .enumerate()
            .map(|(i, slot)| Job {
                bytes: &png,
                kind: Kind::Color,
                placement: placements[i / 2],
                slot,
            })
            .collect();
        let results = p.render_all(jobs, 3);
        assert!(results.iter().all(|r| r.is_ok()));
        for (i, pl) in placements.iter().enumerate() {
            assert_eq!(slots[2 * i], slots[2 * i + 1]);
            let s = &slots[2 * i];
            for x in 0..48usize {
                let src_x = if pl.flip { 47 - x } else { x } as i64 + pl.left;
                assert_eq!(i64::from(s[x]), src_x, "record {i}");
                assert_eq!(s[32 * 48 + 5 * 48 + x], 5); // G plane, row 5
                assert_eq!(s[2 * 32 * 48 + x], 200);
            }
        }
    }

    #[test]
    fn a_failed_image_is_its_own_error() {
        let p = pipeline(Resize::Exact, Crop::None, 0.0);
        let good = png_of(10, 10);
        let mut a = vec![0u8; p.slot_len(Kind::Mask)];
        let mut b = vec![0u8; p.slot_len(Kind::Color)];
        let pl = p.place(0, 0, b"x", 10, 10);
        let results = p.render_all(
            vec![
                Job {
                    bytes: &good,
                    kind: Kind::Mask,
                    placement: pl,
                    slot: &mut a,
                },
                Job {
                    bytes: b"not an image",
                    kind: Kind::Color,
                    placement: pl,
                    slot: &mut b,
                },
            ],
            2,
        );
        assert!(results[0].is_ok());
        assert!(matches!(results[1], Err(DecodeError::Invalid(_))));
    }
}
