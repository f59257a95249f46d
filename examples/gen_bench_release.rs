//! Writes a mini release for benchmarks (`bench/convert_throughput.sh`): the test generator's
//! exact schema at any size, optionally with realistic image sizes.
//!
//! ```text
//! cargo run --release --example gen_bench_release -- DIR [--sft N] [--preference N]
//!     [--multi-turn N] [--px N] [--noise] [--seed N]
//! ```
//!
//! `--noise` re-encodes every image with random pixels at the same size (PNG stays PNG, JPEG
//! stays JPEG), so that images weigh what real ones do (a 640 px PNG is ~1.2 MB) instead of the
//! few kilobytes of the generator's smooth drawings. The JSONL files are unchanged.

#[path = "../tests/common/release.rs"]
mod release;

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
            other => return Err(format!("unknown option {other}")),
        }
    }
    let rel = generate_release(&out, &spec).map_err(|e| e.to_string())?;
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
