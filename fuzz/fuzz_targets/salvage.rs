//! The salvage reader behind `editshard repair` on arbitrary bytes: it resynchronises on
//! frame boundaries after damage, never panics, and returns only intact records.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::salvage(data));
