//! Property: an arbitrary record written by `ShardWriter` reads back equal through the sync
//! reader and the random-access reader.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::round_trip(data));
