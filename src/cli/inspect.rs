//! `editshard ls`, `cat`, `get`, `stats` and `verify`.

use std::process::ExitCode;

use clap::Args;

use crate::error::{Error, Result};

#[derive(Args, Debug)]
pub struct LsArgs {}
#[derive(Args, Debug)]
pub struct CatArgs {}
#[derive(Args, Debug)]
pub struct GetArgs {}
#[derive(Args, Debug)]
pub struct StatsArgs {}
#[derive(Args, Debug)]
pub struct VerifyArgs {}

fn todo(what: &str) -> Result<ExitCode> {
    Err(Error::invalid(format!("{what} is not implemented yet")))
}
pub fn run_ls(_args: LsArgs) -> Result<ExitCode> {
    todo("ls")
}
pub fn run_cat(_args: CatArgs) -> Result<ExitCode> {
    todo("cat")
}
pub fn run_get(_args: GetArgs) -> Result<ExitCode> {
    todo("get")
}
pub fn run_stats(_args: StatsArgs) -> Result<ExitCode> {
    todo("stats")
}
pub fn run_verify(_args: VerifyArgs) -> Result<ExitCode> {
    todo("verify")
}
