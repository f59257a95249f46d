//! Writes the committed sample release (`examples/sample-release/`): 12 rows of
//! each Pico-Banana-400K subset, seed 1, no faults, tiny synthetic images.
//!
//! ```text
//! cargo run -p editshard-tools --bin gen_sample_release -- examples/sample-release
//! ```
//!
//! The generated subdirectories are removed first (README.md is kept), so the
//! output is exactly what the generator writes.

use editshard_tools::release;

use std::path::PathBuf;
use std::process::ExitCode;

use release::{ReleaseSpec, generate_release};

/// Directories the generator owns inside the output directory.
const GENERATED: [&str; 5] = ["jsonl", "manifest", "images", "openimages", "flickr"];

fn main() -> ExitCode {
    let out = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .unwrap_or_else(|| "examples/sample-release".into()),
    );
    for dir in GENERATED {
        let path = out.join(dir);
        if path.exists()
            && let Err(e) = std::fs::remove_dir_all(&path)
        {
            eprintln!("error: cannot remove {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let spec = ReleaseSpec::default();
    match generate_release(&out, &spec) {
        Ok(release) => {
            let bytes: u64 = release.files.values().map(|f| f.len).sum();
            println!(
                "wrote {} rows ({} sources, {} image files, {bytes} image bytes) to {}",
                release.rows.len(),
                release.sources.len(),
                release.files.len(),
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
