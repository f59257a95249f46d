//! Pictures seeded by a key, encoded as PNG or JPEG, and written into the release.

use std::fs;
use std::io;
use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};
use sha2::{Digest, Sha256};

use super::text::Rng;
use super::*;

/// An RGB picture seeded by `key`: a two-colour gradient plus three flat rectangles.
/// Smooth enough to compress to well under 4 KB at 48 px.
pub(super) fn draw(w: u32, h: u32, key: u64) -> Vec<u8> {
    let mut rng = Rng(key);
    let color = |rng: &mut Rng| {
        let v = rng.next_u64();
        [v as u8, (v >> 8) as u8, (v >> 16) as u8]
    };
    let c0 = color(&mut rng);
    let c1 = color(&mut rng);
    let dir = rng.below(3);
    let (wu, hu) = (w as usize, h as usize);
    let mut px = vec![0u8; wu * hu * 3];
    for y in 0..hu {
        for x in 0..wu {
            let (num, den) = match dir {
                0 => (x, wu.max(2) - 1),
                1 => (y, hu.max(2) - 1),
                _ => (x + y, wu + hu - 2),
            };
            let o = (y * wu + x) * 3;
            for c in 0..3 {
                let a = c0[c] as usize;
                let b = c1[c] as usize;
                px[o + c] = ((a * (den - num) + b * num) / den.max(1)) as u8;
            }
        }
    }
    for _ in 0..3 {
        let col = color(&mut rng);
        let rw = 1 + rng.below(wu / 2);
        let rh = 1 + rng.below(hu / 2);
        let x0 = rng.below(wu - rw + 1);
        let y0 = rng.below(hu - rh + 1);
        for y in y0..y0 + rh {
            for x in x0..x0 + rw {
                let o = (y * wu + x) * 3;
                px[o..o + 3].copy_from_slice(&col);
            }
        }
    }
    px
}

pub(super) fn encode_png(rgb: &[u8], w: u32, h: u32) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Best, FilterType::Adaptive)
        .write_image(rgb, w, h, ExtendedColorType::Rgb8)
        .map_err(io::Error::other)?;
    Ok(out)
}

pub(super) fn encode_jpeg(rgb: &[u8], w: u32, h: u32) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 80)
        .encode(rgb, w, h, ExtendedColorType::Rgb8)
        .map_err(io::Error::other)?;
    Ok(out)
}

pub(super) fn file_info(width: u32, height: u32, bytes: &[u8]) -> GeneratedFile {
    GeneratedFile {
        width,
        height,
        len: bytes.len() as u64,
        sha256: hex(&Sha256::digest(bytes)),
    }
}

/// `f` of every item, in order, computed on all cores in contiguous chunks.
pub(super) fn par_map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> io::Result<R> + Sync,
) -> io::Result<Vec<R>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<io::Result<Vec<R>>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for w in workers {
            out.extend(
                w.join()
                    .map_err(|_| io::Error::other("a writer thread panicked"))??,
            );
        }
        Ok(out)
    })
}

pub(super) fn write_file(root: &Path, rel: &str, bytes: &[u8]) -> io::Result<()> {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, bytes)
}
