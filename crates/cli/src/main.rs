//! The `editshard` command: glue over the `editshard` library ([`cli`]), plus the two jobs
//! that belong to the application: converting Pico-Banana-400K ([`convert`]) and exporting
//! datasets back out ([`export`]).

// The library's modules, under the names the command's code uses for them.
use editshard::hex;
use editshard::{Error, Result};
use editshard::{
    atomic, error, format, image_info, lock, manifest, mirror, mix, ownership, path, probe, read,
    record, repair, shard, storage, units, write,
};

mod cli;
mod convert;
mod export;
mod progress;

fn main() -> std::process::ExitCode {
    cli::main()
}
