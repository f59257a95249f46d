//! The library's integration tests, one binary: storage (local, HTTP, S3), reading datasets
//! (local, HTTP, S3; order, resume, concurrency), reads under injected HTTP and S3 faults, reads
//! through redirects and from the Hub (`hf://`), and the smoke tests of the test servers themselves.
//!
//! Support (fixtures, nginx and s3s-fs harnesses, the fault server) comes from
//! `editshard_tools`. Tests against real servers need nginx and s3s-fs
//! (`scripts/install-test-deps.sh`). Run one group with e.g.
//! `cargo test -p editshard --test library read_s3::`.

#[path = "library/fault_read_http.rs"]
mod fault_read_http;
#[path = "library/fault_read_s3.rs"]
mod fault_read_s3;
#[path = "library/hub_redirects.rs"]
mod hub_redirects;
#[path = "library/id_filters.rs"]
mod id_filters;
#[path = "library/links_in_dest.rs"]
mod links_in_dest;
#[path = "library/read_concurrency.rs"]
mod read_concurrency;
#[path = "library/read_http.rs"]
mod read_http;
#[path = "library/read_local.rs"]
mod read_local;
#[path = "library/read_mapped.rs"]
mod read_mapped;
#[path = "library/read_order.rs"]
mod read_order;
#[path = "library/read_s3.rs"]
mod read_s3;
#[path = "library/repair.rs"]
mod repair;
#[path = "library/servers_smoke.rs"]
mod servers_smoke;
#[path = "library/storage_local.rs"]
mod storage_local;
#[path = "library/storage_remote.rs"]
mod storage_remote;
#[path = "library/unique_ids.rs"]
mod unique_ids;
#[path = "library/verify_levels.rs"]
mod verify_levels;
#[path = "library/verify_manifest.rs"]
mod verify_manifest;
#[path = "library/write_dest.rs"]
mod write_dest;
