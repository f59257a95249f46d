//! The `editshard` command's integration tests, one binary: every test that runs the binary
//! (convert from local and HTTP/S3 releases, export, mirror, read/verify, a dataset on the Hub
//! behind its CDN, disk full, the README followed as written) and the release generator's checks.
//!
//! Support comes from `editshard_tools`; its helpers that run the binary take its path,
//! [`BIN`]. The convert kill tests need the `test-hooks` feature:
//! `cargo test --features test-hooks --test cli`.

use std::path::PathBuf;

#[path = "cli/convert_http.rs"]
mod convert_http;
#[path = "cli/convert_hub.rs"]
mod convert_hub;
#[path = "cli/convert_hub_hostile.rs"]
mod convert_hub_hostile;
#[path = "cli/convert_hub_memory.rs"]
mod convert_hub_memory;
#[path = "cli/convert_hub_ops.rs"]
mod convert_hub_ops;
#[path = "cli/convert_hub_sessions.rs"]
mod convert_hub_sessions;
#[path = "cli/convert_local.rs"]
mod convert_local;
#[path = "cli/export_hf.rs"]
mod export_hf;
#[path = "cli/export_publish.rs"]
mod export_publish;
#[path = "cli/export_roundtrip.rs"]
mod export_roundtrip;
#[path = "cli/fault_disk_full.rs"]
mod fault_disk_full;
#[path = "cli/hostile_release.rs"]
mod hostile_release;
#[path = "cli/hub_cli.rs"]
mod hub_cli;
#[path = "cli/memory_bounds.rs"]
mod memory_bounds;
#[path = "cli/mirror_local.rs"]
mod mirror_local;
#[path = "cli/mirror_ranged.rs"]
mod mirror_ranged;
#[path = "cli/mirror_remote.rs"]
mod mirror_remote;
#[path = "cli/mix_cli.rs"]
mod mix_cli;
#[path = "cli/older_manifests.rs"]
mod older_manifests;
#[path = "cli/read_cli.rs"]
mod read_cli;
#[path = "cli/readme.rs"]
mod readme;
#[path = "cli/release_generator.rs"]
mod release_generator;
#[path = "cli/repair_cli.rs"]
mod repair_cli;
#[path = "cli/verify_remote.rs"]
mod verify_remote;
#[path = "cli/view_cli.rs"]
mod view_cli;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_editshard");

/// The workspace root (`examples/sample-release` lives there).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
