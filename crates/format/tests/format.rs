//! The format core's integration tests, one binary: golden vectors, damage, overhead,
//! properties, round trips, the independent spec walker and the fuzz regressions.
//!
//! Fixtures come from `editshard_tools` (`records`); data lives next to this file in
//! `vectors/` and `fuzz-regressions/`. Run one group with e.g.
//! `cargo test -p editshard-format --test format damage::`.

#[path = "format/damage.rs"]
mod damage;
#[path = "format/fuzz_regressions.rs"]
mod fuzz_regressions;
#[path = "format/index_in_place.rs"]
mod index_in_place;
#[path = "format/lying_index.rs"]
mod lying_index;
#[path = "format/overhead.rs"]
mod overhead;
#[path = "format/proptests.rs"]
mod proptests;
#[path = "format/roundtrip.rs"]
mod roundtrip;
#[path = "format/salvage.rs"]
mod salvage;
#[path = "format/spec_walker.rs"]
mod spec_walker;
#[path = "format/v1_1.rs"]
mod v1_1;
#[path = "format/vectors.rs"]
mod vectors;
#[path = "format/verify_levels.rs"]
mod verify_levels;
