//! editshard's conversion engine: published editing datasets into verified shards.
//!
//! Two drivers turn a dataset's rows into records:
//! - [`pico`]: the raw Pico-Banana-400K release (three JSONL files plus ~400K image URLs or
//!   local files), fetched concurrently and politely;
//! - [`hub`]: editing datasets published on the Hugging Face Hub as Parquet (MagicBrush,
//!   InstructPix2Pix, UltraEdit, ...), through a preset or a mapping file.
//!
//! Around them sits what every conversion shares: the destination lock and ownership check
//! ([`ownership`]), the work directory that lets a killed run resume ([`state`]), the list of
//! rows that did not become records ([`failures`]), progress and the summary table
//! ([`progress`]), and joining the parts of a split conversion ([`merge`]).
//!
//! The `editshard` binary parses the command line and prints; everything else is here, so any
//! program (the Python package among them) can convert too.

pub mod failures;
mod failures_file;
pub mod hub;
mod kill;
pub mod merge;
mod ownership;
pub mod pico;
pub mod progress;
pub mod session;
pub mod state;

/// The directory of part `i` of `n` under DEST.
pub fn part_dir(i: u32, n: u32) -> String {
    format!("part-{i:04}-of-{n:04}")
}
