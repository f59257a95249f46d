//! Writes a mini release for benchmarks (`bench/convert_throughput.sh`): the test generator's
//! exact schema at any size, optionally with realistic image sizes.
//!
//! ```text
//! cargo run --release -p editshard-tools --bin gen_bench_release -- DIR [--sft N] [--preference N]
//!     [--multi-turn N] [--px N] [--noise | --realistic] [--seed N]
//! ```
//!
//! `--noise` re-encodes every image with random pixels at the same size (PNG stays PNG, JPEG
//! stays JPEG), so that images weigh what real ones do (a 640 px PNG is ~1.2 MB) instead of the
//! few kilobytes of the generator's smooth drawings. The JSONL files are unchanged.
//!
//! `--realistic` (used by `bench/run.sh`) redraws the images at the real release's sizes:
//! every edit (chosen, rejected, multi-turn) as a PNG of 0.7-1.5 MB at one of the editor's
//! fixed sizes (1024x1024, 1248x832, 832x1248, 1184x864, 1152x896: the one whose aspect ratio
//! the generator picked), every source in `openimages/train_0/` as a JPEG of 150-400 KB at
//! 512-1024 px on the long side, keeping its aspect ratio. Each file's target size is drawn
//! from the seed and the file's path, and the amount of pixel noise over a smooth gradient is
//! adjusted until the encoded file lands on it, so the release is deterministic by seed. The
//! Flickr mirror copies (`flickr/`) keep the generator's tiny images: convert with
//! `--openimages-dir`, and count `images/`, `openimages/train_0/` and `jsonl/` as the release.
//! Files are encoded on all cores.

use editshard_tools::release;

use std::path::PathBuf;
use std::process::ExitCode;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};
use release::{ReleaseSpec, generate_release};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .ok_or("usage: gen_bench_release DIR [options]")?,
    );
    let mut spec = ReleaseSpec {
        sft: 100,
        preference: 40,
        multi_turn: 40,
        seed: 7,
        image_px: 48,
        faults: false,
    };
    let mut noise = false;
    let mut realistic = false;
    while let Some(flag) = args.next() {
        let mut num = || -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--sft" => spec.sft = num()? as usize,
            "--preference" => spec.preference = num()? as usize,
            "--multi-turn" => spec.multi_turn = num()? as usize,
            "--px" => spec.image_px = num()? as u32,
            "--seed" => spec.seed = num()?,
            "--noise" => noise = true,
            "--realistic" => realistic = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if realistic {
        // The generator only draws placeholders here; their aspect ratios pick the sizes.
        spec.image_px = 64;
    }
    let rel = generate_release(&out, &spec).map_err(|e| e.to_string())?;
    if realistic {
        return realistic_images(&out, &rel, spec.seed);
    }
    let mut state = spec.seed | 1;
    let mut bytes = 0u64;
    for (path, f) in &rel.files {
        let full = out.join(path);
        if noise {
            let mut px = vec![0u8; (f.width * f.height * 3) as usize];
            for b in px.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            let mut data = Vec::new();
            if path.ends_with(".png") {
                PngEncoder::new_with_quality(
                    &mut data,
                    CompressionType::Fast,
                    FilterType::NoFilter,
                )
                .write_image(&px, f.width, f.height, ExtendedColorType::Rgb8)
                .map_err(|e| e.to_string())?;
            } else {
                JpegEncoder::new_with_quality(&mut data, 90)
                    .encode(&px, f.width, f.height, ExtendedColorType::Rgb8)
                    .map_err(|e| e.to_string())?;
            }
            std::fs::write(&full, &data).map_err(|e| format!("{}: {e}", full.display()))?;
        }
        bytes += std::fs::metadata(&full).map_err(|e| e.to_string())?.len();
    }
    println!(
        "wrote {} rows, {} image files, {bytes} image bytes to {}",
        rel.rows.len(),
        rel.files.len(),
        out.display()
    );
    Ok(())
}

/// Long side and size range of a source JPEG; size range of an edited PNG.
const SOURCE_PX: (u32, u32) = (512, 1024);
const SOURCE_BYTES: (u64, u64) = (150_000, 400_000);
const EDIT_BYTES: (u64, u64) = (700_000, 1_500_000);

struct Job {
    path: PathBuf,
    png: bool,
    width: u32,
    height: u32,
    target: u64,
    seed: u64,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// The editor size whose aspect ratio is closest to the placeholder's.
fn editor_size(w: u32, h: u32) -> (u32, u32) {
    let aspect = w as f64 / h as f64;
    release::EDITOR_SIZES
        .into_iter()
        .min_by(|a, b| {
            let da = (a.0 as f64 / a.1 as f64 - aspect).abs();
            let db = (b.0 as f64 / b.1 as f64 - aspect).abs();
            da.total_cmp(&db)
        })
        .unwrap_or((1024, 1024))
}

fn realistic_images(
    out: &std::path::Path,
    rel: &release::GeneratedRelease,
    seed: u64,
) -> Result<(), String> {
    let mut jobs = Vec::new();
    for (path, f) in &rel.files {
        let png = path.ends_with(".png");
        if !png && !path.starts_with(release::OPENIMAGES_IMAGE_DIR) {
            continue; // Flickr mirror copy: not part of the measured release
        }
        let key = seed ^ fnv1a(path.as_bytes());
        let mut r = key | 1;
        let mut pick = |lo: u64, hi: u64| lo + xorshift(&mut r) % (hi - lo + 1);
        let (width, height, target) = if png {
            let (w, h) = editor_size(f.width, f.height);
            (w, h, pick(EDIT_BYTES.0, EDIT_BYTES.1))
        } else {
            let long = pick(SOURCE_PX.0 as u64, SOURCE_PX.1 as u64) as u32;
            let (w, h) = if f.width >= f.height {
                (long, (long * f.height + f.width / 2) / f.width)
            } else {
                ((long * f.width + f.height / 2) / f.height, long)
            };
            (w.max(1), h.max(1), pick(SOURCE_BYTES.0, SOURCE_BYTES.1))
        };
        jobs.push(Job {
            path: out.join(path),
            png,
            width,
            height,
            target,
            seed: key,
        });
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<(u64, u64, u64), String>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut sums = (0u64, 0u64, 0u64); // png bytes, jpeg bytes, files
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else {
                            return Ok(sums);
                        };
                        let data = encode_to_target(job)?;
                        std::fs::write(&job.path, &data)
                            .map_err(|e| format!("{}: {e}", job.path.display()))?;
                        if job.png {
                            sums.0 += data.len() as u64;
                        } else {
                            sums.1 += data.len() as u64;
                        }
                        sums.2 += 1;
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err("encoder thread panicked".into()))
            })
            .collect()
    });
    let (mut png, mut jpeg, mut files) = (0, 0, 0);
    for r in results {
        let (p, j, f) = r?;
        png += p;
        jpeg += j;
        files += f;
    }
    println!(
        "wrote {} rows, {files} realistic image files ({png} bytes of PNG edits, {jpeg} bytes of JPEG sources) to {}",
        rel.rows.len(),
        out.display()
    );
    Ok(())
}

/// A smooth gradient plus uniform noise of amplitude `amp` (0-255).
fn pixels(job: &Job, amp: f64) -> Vec<u8> {
    let (w, h) = (job.width as usize, job.height as usize);
    let mut px = Vec::with_capacity(w * h * 3);
    let mut r = job.seed | 1;
    let phase = (job.seed % 256) as usize;
    let scale = (amp * 256.0) as u64;
    for y in 0..h {
        for x in 0..w {
            let base = [
                (x * 255 / w + phase) as u64,
                (y * 255 / h) as u64,
                ((x + y) * 127 / (w + h) + 64) as u64,
            ];
            let n = xorshift(&mut r);
            for (c, b) in base.into_iter().enumerate() {
                let noise = (((n >> (c * 16)) & 0xffff) * scale) >> 24;
                px.push(((b + noise) & 0xff) as u8);
            }
        }
    }
    px
}

fn encode(job: &Job, amp: f64) -> Result<Vec<u8>, String> {
    let px = pixels(job, amp);
    let mut data = Vec::new();
    if job.png {
        PngEncoder::new_with_quality(&mut data, CompressionType::Fast, FilterType::Sub)
            .write_image(&px, job.width, job.height, ExtendedColorType::Rgb8)
            .map_err(|e| e.to_string())?;
    } else {
        JpegEncoder::new_with_quality(&mut data, 85)
            .encode(&px, job.width, job.height, ExtendedColorType::Rgb8)
            .map_err(|e| e.to_string())?;
    }
    Ok(data)
}

/// Encodes with the noise amplitude bisected until the file is within 10% of its target
/// size (and inside the allowed range), in at most 12 tries.
fn encode_to_target(job: &Job) -> Result<Vec<u8>, String> {
    let (lo_ok, hi_ok) = if job.png { EDIT_BYTES } else { SOURCE_BYTES };
    let (mut lo, mut hi) = (0.0f64, 255.0f64);
    let mut amp = if job.png { 6.0 } else { 24.0 };
    let mut best = encode(job, amp)?;
    for _ in 0..12 {
        let len = best.len() as u64;
        let close = len.abs_diff(job.target) * 10 <= job.target;
        if close && (lo_ok..=hi_ok).contains(&len) {
            break;
        }
        if len < job.target {
            lo = amp;
        } else {
            hi = amp;
        }
        amp = (lo + hi) / 2.0;
        best = encode(job, amp)?;
    }
    Ok(best)
}
