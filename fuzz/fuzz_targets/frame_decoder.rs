//! The tokio-util `Decoder` fed arbitrary bytes in arbitrary chunk sizes, the way a network
//! stream delivers them: it must never panic, and must end in records or an error.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::frame_decoder(data));
