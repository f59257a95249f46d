//! editshard's test support and benchmark tools (not for users).
//!
//! - [`release`]: writes a mini Pico-Banana release in the real schema, deterministically by
//!   seed; the test suite's fixtures, the bundled sample and the benchmark releases come from it.
//! - `src/bin/`: `gen_sample_release`, `gen_bench_release` and `bench_read` (`bench/run.sh`).

pub mod release;
