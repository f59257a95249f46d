//! The footer parser (index frame + trailer) on arbitrary bytes at an arbitrary file offset.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::footer(data));
