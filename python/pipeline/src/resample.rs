//! Resampling a region of decoded pixels to its size on the canvas, with fast_image_resize's
//! SIMD convolution (Pillow's algorithm, which torchvision's antialiased resize follows:
//! the filter widens with the downscaling factor).

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::decode::Pixels;
use crate::geometry::Region;

/// The resampling filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    Nearest,
    Bilinear,
    /// Catmull-Rom (a = -0.5), as Pillow's and torchvision's bicubic.
    Bicubic,
    Lanczos3,
}

impl Filter {
    fn algorithm(self) -> ResizeAlg {
        match self {
            Filter::Nearest => ResizeAlg::Nearest,
            Filter::Bilinear => ResizeAlg::Convolution(FilterType::Bilinear),
            Filter::Bicubic => ResizeAlg::Convolution(FilterType::CatmullRom),
            Filter::Lanczos3 => ResizeAlg::Convolution(FilterType::Lanczos3),
        }
    }
}

/// Resamples `region`'s source rectangle of `pixels` to `dst_w` x `dst_h` pixels in `out`
/// (resized to fit; its memory is reused from call to call). Pixels outside the rectangle
/// but inside the image contribute at its edges, as they do when the whole image is resized
/// and then cropped.
pub fn resample(
    resizer: &mut Resizer,
    pixels: &Pixels,
    region: &Region,
    filter: Filter,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let pixel_type = match pixels.channels {
        1 => PixelType::U8,
        3 => PixelType::U8x3,
        n => return Err(format!("{n} channels: expected 1 or 3")),
    };
    let src = ImageRef::new(pixels.width, pixels.height, &pixels.data, pixel_type)
        .map_err(|e| e.to_string())?;
    let len = region.dst_w as usize * region.dst_h as usize * usize::from(pixels.channels);
    out.clear();
    out.resize(len, 0);
    let mut dst = Image::from_slice_u8(region.dst_w, region.dst_h, out, pixel_type)
        .map_err(|e| e.to_string())?;
    let options = ResizeOptions::new()
        .resize_alg(filter.algorithm())
        .crop(region.src_x, region.src_y, region.src_w, region.src_h);
    resizer
        .resize(&src, &mut dst, &options)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coords(w: u32, h: u32) -> Pixels {
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                data.extend([x as u8, y as u8, 7]);
            }
        }
        Pixels {
            data,
            width: w,
            height: h,
            channels: 3,
        }
    }

    fn region(x: f64, y: f64, w: f64, h: f64, dw: u32, dh: u32) -> Region {
        Region {
            src_x: x,
            src_y: y,
            src_w: w,
            src_h: h,
            dst_x: 0,
            dst_y: 0,
            dst_w: dw,
            dst_h: dh,
        }
    }

    #[test]
    fn a_whole_pixel_crop_at_scale_one_copies_exactly() {
        let px = coords(50, 40);
        let mut out = Vec::new();
        for filter in [Filter::Nearest, Filter::Bilinear, Filter::Bicubic] {
            resample(
                &mut Resizer::new(),
                &px,
                &region(7.0, 5.0, 20.0, 10.0, 20, 10),
                filter,
                &mut out,
            )
            .unwrap();
            for y in 0..10 {
                for x in 0..20 {
                    let p = &out[(y * 20 + x) * 3..][..3];
                    assert_eq!(p, [7 + x as u8, 5 + y as u8, 7], "{filter:?} at {x},{y}");
                }
            }
        }
    }

    #[test]
    fn halving_averages_neighbours() {
        let px = coords(64, 64);
        let mut out = Vec::new();
        resample(
            &mut Resizer::new(),
            &px,
            &region(0.0, 0.0, 64.0, 64.0, 32, 32),
            Filter::Bilinear,
            &mut out,
        )
        .unwrap();
        // Output x = 10 is centred on source 20.5: the triangle over 19..=22 averages to 20.5.
        let v = out[(5 * 32 + 10) * 3];
        assert!(v == 20 || v == 21, "{v}");
    }
}
