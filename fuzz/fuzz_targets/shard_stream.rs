//! A whole shard through the sync streaming reader. Seeded with the golden vectors.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::shard_stream(data));
