//! Helpers shared by the integration tests. Each test binary uses a subset.
#![allow(dead_code)]

pub mod cli;
pub mod fault_server;
pub mod release;
pub mod servers;
