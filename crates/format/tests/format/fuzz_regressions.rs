//! Replays every kept fuzz input (`crates/format/tests/fuzz-regressions/TARGET/*`) and every
//! seed (`fuzz/seeds/TARGET/*`) through the same target bodies cargo-fuzz runs
//! (`fuzz/targets.rs`), on the stable toolchain: inputs that once crashed stay fixed.

// Relative to this file's directory, crates/format/tests/format/.
#[path = "../../../../fuzz/targets.rs"]
mod targets;

use std::path::Path;

use editshard_tools::fuzz_replay::replay;

#[test]
fn every_kept_input_runs_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")); // crates/format
    let replayed = replay(targets::TARGETS, |name| {
        vec![
            root.join("tests/fuzz-regressions").join(name),
            root.join("../../fuzz/seeds").join(name),
        ]
    });
    // Guard against a silently empty replay (a moved directory would otherwise pass).
    assert!(replayed >= 20, "only {replayed} inputs replayed");
}

#[test]
fn round_trip_target_runs_on_structured_noise() {
    // The round-trip target builds records from any bytes; feed it a spread of inputs.
    for seed in 0..64u32 {
        let data: Vec<u8> = (0..512u32)
            .map(|i| (i.wrapping_mul(seed * 2 + 1) >> 3) as u8)
            .collect();
        targets::round_trip(&data);
    }
}
