//! Where a record's images land in the batch: one crop box and one flip per record, drawn
//! from (seed, epoch, record key), expressed in fractions of the image so that every image of
//! the record (source, output, rejected, mask) gets the same region whatever its pixel size.

/// How the reference image is scaled before cropping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// The image covers the canvas: scaled so that it is at least the canvas on both sides
    /// (for a square canvas: the shorter side becomes the canvas side, like torchvision's
    /// `Resize(int)`); the crop then cuts the longer side.
    Shorter,
    /// The image fits in the canvas: scaled so that it is at most the canvas on both sides;
    /// the rest is padded (letterbox).
    Longer,
    /// Scaled to the canvas exactly (the aspect ratio is not kept).
    Exact,
}

/// Where the canvas sits in the resized image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crop {
    /// Centred, like torchvision's `CenterCrop` (a padded side is padded evenly).
    Center,
    /// Uniformly at random among the whole-pixel positions of the resized image.
    Random,
    /// No crop: only with [`Resize::Exact`].
    None,
}

/// The canvas (batch tensors' height and width) and the geometric settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    pub height: u32,
    pub width: u32,
    pub resize: Resize,
    pub crop: Crop,
    /// Probability of a horizontal flip.
    pub flip: f64,
}

/// One record's box and flip: the box is in fractions of an image's width and height
/// (`x0 + w` may pass 1, or `x0` be negative, where the canvas is padded), and it maps onto
/// the whole canvas. The same placement is applied to every image of the record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub x0: f64,
    pub y0: f64,
    pub w: f64,
    pub h: f64,
    pub flip: bool,
    /// The box in the reference image's resized frame, in whole pixels: the top-left corner
    /// of the canvas in it (negative where padded) and that frame's size.
    pub top: i64,
    pub left: i64,
    pub resized_height: u32,
    pub resized_width: u32,
}

/// One image's part of a placement: the source rectangle (in that image's pixels, within
/// the image) that is resampled onto the destination rectangle of the canvas (before the
/// flip). The rest of the canvas is padding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub src_x: f64,
    pub src_y: f64,
    pub src_w: f64,
    pub src_h: f64,
    pub dst_x: u32,
    pub dst_y: u32,
    pub dst_w: u32,
    pub dst_h: u32,
}

impl Geometry {
    /// The reference image's size after the resize, as torchvision computes it for a square
    /// canvas (`int(size * long / short)`, here in exact integer arithmetic).
    pub fn resized(&self, ref_width: u32, ref_height: u32) -> (u32, u32) {
        let (rw, rh) = (u64::from(ref_width.max(1)), u64::from(ref_height.max(1)));
        let (cw, ch) = (u64::from(self.width), u64::from(self.height));
        // Scale to the canvas height when H/rh vs W/rw says so (cross-multiplied).
        let by_height = match self.resize {
            Resize::Exact => return (self.width, self.height),
            Resize::Shorter => ch * rw >= cw * rh,
            Resize::Longer => ch * rw <= cw * rh,
        };
        let clamp = |v: u64| v.clamp(1, u64::from(u32::MAX)) as u32;
        if by_height {
            (clamp(rw * ch / rh), self.height)
        } else {
            (self.width, clamp(rh * cw / rw))
        }
    }

    /// The placement of the record keyed `key` (its id) in `epoch`, with `ref_width` x
    /// `ref_height` the size of its reference image (the source).
    pub fn place(&self, seed: u64, epoch: u64, key: &[u8], ref_width: u32, ref_height: u32) -> Placement {
        let mut rng = Draws::new(seed, epoch, key);
        let (rw, rh) = self.resized(ref_width, ref_height);
        let top = offset(self.crop, rh, self.height, rng.next());
        let left = offset(self.crop, rw, self.width, rng.next());
        let flip = rng.unit() < self.flip;
        Placement {
            x0: left as f64 / f64::from(rw),
            y0: top as f64 / f64::from(rh),
            w: f64::from(self.width) / f64::from(rw),
            h: f64::from(self.height) / f64::from(rh),
            flip,
            top,
            left,
            resized_height: rh,
            resized_width: rw,
        }
    }
}

/// The canvas offset along one axis: the crop's start in the resized image (negative: the
/// image starts that far into the canvas, which is padded before it).
fn offset(crop: Crop, resized: u32, canvas: u32, r: u64) -> i64 {
    let d = i64::from(resized) - i64::from(canvas);
    match crop {
        Crop::None => 0,
        // torchvision's CenterCrop: int(round(d / 2)) with round-half-to-even when cropping;
        // (canvas - image) // 2 of padding before the image when padding.
        Crop::Center if d >= 0 => {
            let half = d / 2;
            if d % 2 == 1 && half % 2 == 1 {
                half + 1
            } else {
                half
            }
        }
        Crop::Center => -((-d) / 2),
        Crop::Random => {
            let (lo, hi) = (d.min(0), d.max(0));
            let span = (hi - lo) as u64 + 1;
            lo + ((u128::from(r) * u128::from(span)) >> 64) as i64
        }
    }
}

impl Placement {
    /// This placement on an image of `width` x `height` pixels, onto a `canvas_w` x
    /// `canvas_h` canvas. None when the image does not reach the canvas at all.
    pub fn region(&self, width: u32, height: u32, canvas_w: u32, canvas_h: u32) -> Option<Region> {
        let (src_x, src_w, dst_x, dst_w) = axis(self.x0, self.w, width, canvas_w)?;
        let (src_y, src_h, dst_y, dst_h) = axis(self.y0, self.h, height, canvas_h)?;
        Some(Region {
            src_x,
            src_y,
            src_w,
            src_h,
            dst_x,
            dst_y,
            dst_w,
            dst_h,
        })
    }
}

/// One axis of [`Placement::region`]: the box `[a, a + l)` (fractions of the image) maps onto
/// `[0, canvas)`; the part of it inside the image `[0, 1)` gives the source span (pixels)
/// and the destination span (whole canvas pixels, rounded).
fn axis(a: f64, l: f64, size: u32, canvas: u32) -> Option<(f64, f64, u32, u32)> {
    if l.is_nan() || l <= 0.0 || size == 0 || canvas == 0 {
        return None;
    }
    let n = f64::from(canvas);
    let lo = a.max(0.0);
    let hi = (a + l).min(1.0);
    if hi <= lo {
        return None;
    }
    let d0 = (((lo - a) / l) * n).round().clamp(0.0, n);
    let d1 = (((hi - a) / l) * n).round().clamp(0.0, n);
    if d1 <= d0 {
        return None;
    }
    // The source span follows the rounded destination span, so that the scale stays l / n.
    let px = f64::from(size);
    let s0 = ((a + d0 / n * l) * px).clamp(0.0, px);
    let s1 = ((a + d1 / n * l) * px).clamp(0.0, px);
    if s1 <= s0 {
        return None;
    }
    Some((s0, s1 - s0, d0 as u32, (d1 - d0) as u32))
}

/// A stream of 64-bit draws keyed by (seed, epoch, key): SplitMix64 seeded by a mix of the
/// three, so a record gets the same draws in an epoch whatever process reads it.
struct Draws(u64);

impl Draws {
    fn new(seed: u64, epoch: u64, key: &[u8]) -> Draws {
        // FNV-1a: fixed across Rust versions, unlike std's hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in key {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Draws(mix(seed ^ mix(epoch ^ mix(h))))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo(h: u32, w: u32, resize: Resize, crop: Crop) -> Geometry {
        Geometry {
            height: h,
            width: w,
            resize,
            crop,
            flip: 0.5,
        }
    }

    #[test]
    fn resized_like_torchvision() {
        let g = geo(256, 256, Resize::Shorter, Crop::Center);
        assert_eq!(g.resized(1024, 683), (383, 256)); // int(256 * 1024 / 683) = 383
        assert_eq!(g.resized(683, 1024), (256, 383));
        assert_eq!(g.resized(300, 300), (256, 256));
        let g = geo(256, 256, Resize::Longer, Crop::Center);
        assert_eq!(g.resized(1024, 683), (256, 170));
        let g = geo(100, 200, Resize::Shorter, Crop::Center);
        assert_eq!(g.resized(400, 400), (200, 200));
        assert_eq!(geo(7, 9, Resize::Exact, Crop::None).resized(1, 1), (9, 7));
    }

    #[test]
    fn center_offsets_round_half_to_even() {
        // int(round(d / 2)): d = 1 -> 0, 3 -> 2, 5 -> 2, 127 -> 64.
        for (d, want) in [(0, 0), (1, 0), (2, 1), (3, 2), (5, 2), (7, 4), (127, 64)] {
            assert_eq!(offset(Crop::Center, 10 + d, 10, 0), want, "d = {d}");
        }
        // Padding: (canvas - image) // 2 before the image.
        assert_eq!(offset(Crop::Center, 7, 10, 0), -1);
        assert_eq!(offset(Crop::Center, 6, 10, 0), -2);
    }

    #[test]
    fn random_offsets_cover_their_range_and_only_it() {
        let mut seen = [false; 5];
        for r in 0..2000u64 {
            let o = offset(Crop::Random, 14, 10, mix(r));
            assert!((0..=4).contains(&o));
            seen[o as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        for r in 0..200u64 {
            let o = offset(Crop::Random, 6, 10, mix(r));
            assert!((-4..=0).contains(&o), "{o}");
        }
        assert_eq!(offset(Crop::Random, 10, 10, u64::MAX), 0);
    }

    #[test]
    fn draws_depend_on_seed_epoch_and_key_only() {
        let g = geo(64, 64, Resize::Shorter, Crop::Random);
        let a = g.place(1, 2, b"rec-1", 640, 480);
        assert_eq!(a, g.place(1, 2, b"rec-1", 640, 480));
        let others = [
            g.place(2, 2, b"rec-1", 640, 480),
            g.place(1, 3, b"rec-1", 640, 480),
            g.place(1, 2, b"rec-2", 640, 480),
        ];
        assert!(others.iter().all(|o| (o.left, o.flip) != (a.left, a.flip) || o.top != a.top));
        let flips = (0..1000)
            .filter(|i| g.place(0, 0, format!("r{i}").as_bytes(), 64, 64).flip)
            .count();
        assert!((400..600).contains(&flips), "{flips}");
    }

    #[test]
    fn the_reference_region_is_torchvisions_crop_of_the_resized_image() {
        let g = geo(256, 256, Resize::Shorter, Crop::Center);
        let p = g.place(0, 0, b"x", 1024, 683);
        assert_eq!((p.resized_width, p.resized_height, p.left, p.top), (383, 256, 64, 0));
        let r = p.region(1024, 683, 256, 256).unwrap();
        assert_eq!((r.dst_x, r.dst_y, r.dst_w, r.dst_h), (0, 0, 256, 256));
        assert!((r.src_x - 64.0 * 1024.0 / 383.0).abs() < 1e-9);
        assert!((r.src_w - 256.0 * 1024.0 / 383.0).abs() < 1e-9);
        assert!((r.src_y).abs() < 1e-9 && (r.src_h - 683.0).abs() < 1e-9);
        // A half-size mask gets the same fractions of itself.
        let m = p.region(512, 342, 256, 256).unwrap();
        assert!((m.src_x / 512.0 - r.src_x / 1024.0).abs() < 1e-12);
        assert_eq!((m.dst_w, m.dst_h), (256, 256));
    }

    #[test]
    fn letterbox_regions_are_whole_pixels_of_the_canvas() {
        let g = geo(256, 256, Resize::Longer, Crop::Center);
        let p = g.place(0, 0, b"x", 1024, 683);
        assert_eq!((p.resized_width, p.resized_height, p.top), (256, 170, -43));
        let r = p.region(1024, 683, 256, 256).unwrap();
        assert_eq!((r.dst_x, r.dst_y, r.dst_w, r.dst_h), (0, 43, 256, 170));
        assert!(r.src_y.abs() < 1e-9 && (r.src_h - 683.0).abs() < 1e-9);
    }
}
