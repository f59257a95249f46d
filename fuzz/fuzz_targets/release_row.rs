//! One release JSONL row of each subset through the row adapter, and the line reader that
//! splits (and caps) the JSONL file.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::release_row(data));
