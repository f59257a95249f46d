//! A Parquet footer on arbitrary bytes: the bounded check, then the `parquet` crate's decoding
//! and the Arrow schema (see `hub_targets::hub_footer`).
#![no_main]

#[path = "../hub_targets.rs"]
mod hub_targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| hub_targets::hub_footer(data));
