//! A Parquet file through the Hub converter's reading path: row groups page by page within
//! small limits, rows into records (see `hub_targets::hub_row_group`).
#![no_main]

#[path = "../hub_targets.rs"]
mod hub_targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| hub_targets::hub_row_group(data));
