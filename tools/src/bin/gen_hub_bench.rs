//! Writes an InstructPix2Pix-shaped Parquet dataset (`timbrooks/instructpix2pix-clip-filtered`'s
//! schema and `huggingface` metadata) for `bench/hub_convert.sh`:
//!
//!     gen_hub_bench DIR [FILES [ROWS_PER_FILE [ROWS_PER_GROUP [IMAGE_BYTES]]]]
//!
//! Defaults: 2 files of 400 rows, 100-row row groups, 200,000-byte images (the Hub copy's
//! images average about 209 kB: 130.9 GB over 313,010 rows of two images). Image bytes are a
//! real PNG header followed by incompressible filler, deterministic by position.

use editshard_tools::hub_parquet::{Col, png, write};

fn image(seed: u64, len: usize) -> Vec<u8> {
    let mut v = png(seed as u32, 512, 512);
    v.truncate(33); // signature and IHDR: what editshard reads of an image
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while v.len() < len {
        // xorshift64: incompressible, as real PNG data is.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        eprintln!(
            "usage: gen_hub_bench DIR [FILES [ROWS_PER_FILE [ROWS_PER_GROUP [IMAGE_BYTES]]]]"
        );
        std::process::exit(2);
    };
    let num = |i: usize, d: usize| args.get(i).map_or(d, |v| v.parse().expect("a number"));
    let (files, rows, group, bytes) = (num(2, 2), num(3, 400), num(4, 100), num(5, 200_000));
    for f in 0..files {
        let base = (f * rows) as u64;
        let cols = vec![
            Col::text(
                "original_prompt",
                (0..rows)
                    .map(|k| Some(format!("a photograph of a cat number {}", base + k as u64)))
                    .collect(),
            ),
            Col::image(
                "original_image",
                (0..rows)
                    .map(|k| Some((image(2 * (base + k as u64), bytes), None)))
                    .collect(),
            ),
            Col::text(
                "edit_prompt",
                (0..rows)
                    .map(|k| Some(format!("make the cat {} blue", base + k as u64)))
                    .collect(),
            ),
            Col::text(
                "edited_prompt",
                (0..rows)
                    .map(|k| {
                        Some(format!(
                            "a photograph of a blue cat number {}",
                            base + k as u64
                        ))
                    })
                    .collect(),
            ),
            Col::image(
                "edited_image",
                (0..rows)
                    .map(|k| Some((image(2 * (base + k as u64) + 1, bytes), None)))
                    .collect(),
            ),
        ];
        let name = format!("{dir}/data/train-{f:05}-of-{files:05}-bench.parquet");
        write(std::path::Path::new(&name), cols, group, true);
        eprintln!("wrote {name}");
    }
}
