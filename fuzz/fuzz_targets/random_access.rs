//! The random-access reader on arbitrary bytes: open, then every record, its metadata and
//! each of its images.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::random_access(data));
