//! The `editshard` command: argument parsing, progress and printing over the library crates
//! (`editshard` for reading, writing, mirroring, mixing and repairing; `editshard-convert`
//! and `editshard-export` for the jobs between editshard and other layouts;
//! `editshard-view` for the browser view). Each subcommand lives in [`commands`].

mod commands;
mod progress;

fn main() -> std::process::ExitCode {
    commands::main()
}
