//! editshard's test support and benchmark tools (not for users).
//!
//! - [`release`]: writes a mini Pico-Banana release in the real schema, deterministically by
//!   seed; the test suite's fixtures, the bundled sample and the benchmark releases come from it.
//! - [`records`]: deterministic records of every kind, for the format tests.
//! - [`fixtures`]: datasets for the reading tests, written with `DatasetWriter`.
//! - [`servers`]: real servers on loopback (nginx, http or https, and s3s-fs), killed on drop.
//! - [`fault_server`]: a std-only HTTP/1.1 server that misbehaves on demand.
//! - [`fault_proxy`]: a reverse proxy that puts S3 faults (5xx bursts, SlowDown, resets,
//!   stalls, lost responses) in front of s3s-fs.
//! - [`tamper`]: shards that lie with valid CRCs (a rewritten index), manifest kept in step.
//! - [`smuggle`]: a record whose image bytes hold a valid frame of another record.
//! - [`cli`]: running the `editshard` binary (its path is a parameter) and reading what it left.
//! - [`convert_support`]: running `editshard convert` and reading the dataset it wrote.
//! - [`hub_cdn`]: the Hugging Face Hub redirecting to its CDN, as two nginx servers.
//! - [`hub_parquet`]: Parquet files in the published schemas of the Hub's editing datasets.
//! - [`parquet_bytes`]: hostile Parquet files byte by byte (lying footers, pages and counts).
//! - [`view_fixture`]: a dataset with real images for `editshard view`.
//! - [`huge_images`]: images small stored and huge decoded (a 13000 x 13000 PNG in 3 MB).
//! - `src/bin/`: `gen_sample_release`, `gen_bench_release`, `bench_read` (`bench/run.sh`) and
//!   `bench_scale` (`bench/scale.sh`).
//!
//! Each integration-test binary (`crates/*/tests/*.rs`) has this crate as a dev-dependency.

pub mod cli;
pub mod convert_support;
pub mod fault_proxy;
pub mod fault_server;
pub mod fixtures;
pub mod hub_cdn;
pub mod hub_parquet;
pub mod huge_images;
pub mod parquet_bytes;
pub mod records;
pub mod release;
pub mod servers;
pub mod smuggle;
pub mod tamper;
pub mod view_fixture;
