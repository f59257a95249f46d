//! `editshard convert` and `editshard merge`.

use std::process::ExitCode;

use clap::Args;

use crate::error::{Error, Result};

#[derive(Args, Debug)]
pub struct ConvertArgs {}

#[derive(Args, Debug)]
pub struct MergeArgs {}

pub fn run(_args: ConvertArgs) -> Result<ExitCode> {
    Err(Error::invalid("convert is not implemented yet"))
}

pub fn run_merge(_args: MergeArgs) -> Result<ExitCode> {
    Err(Error::invalid("merge is not implemented yet"))
}
