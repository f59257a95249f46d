//! `editshard.mix`: the library's `mix` (the `editshard mix` command) from Python, e.g. to
//! join the parts that several writers wrote into one dataset.

use editshard::mix::{MixOptions, MixSource, default_name, mix as mix_datasets};
use editshard::storage::Location;
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::{Runtime, storage_options};

/// Mixes `sources` (name, location; a missing name is the location's last path segment, as
/// the command names it) into `out`; returns the report as JSON text.
#[pyfunction]
#[pyo3(signature = (out, sources, *, copy=false, break_lock=false, s3_endpoint=None, hf_token=None, timeout=None, connect_timeout=None, retries=None))]
#[allow(clippy::too_many_arguments)]
pub fn mix(
    py: Python<'_>,
    out: String,
    sources: Vec<(Option<String>, String)>,
    copy: bool,
    break_lock: bool,
    s3_endpoint: Option<String>,
    hf_token: Option<String>,
    timeout: Option<f64>,
    connect_timeout: Option<f64>,
    retries: Option<usize>,
) -> PyResult<String> {
    let mut storage = storage_options(s3_endpoint, timeout, connect_timeout, retries)?;
    storage.hf_token = hf_token;
    let sources = sources
        .into_iter()
        .map(|(name, given)| {
            let location = Location::parse(&given, &storage)?;
            Ok(MixSource {
                name: name.unwrap_or_else(|| default_name(&given)),
                given,
                location,
            })
        })
        .collect::<editshard::Result<Vec<_>>>()
        .map_err(to_py)?;
    let dest = Location::parse(&out, &storage).map_err(to_py)?;
    let opts = MixOptions {
        copy_only: copy,
        break_lock,
    };
    let rt = Runtime::new()?;
    let rt = rt.get()?;
    let report = py
        .detach(|| rt.block_on(mix_datasets(&sources, &dest, &opts)))
        .map_err(to_py)?;
    let json = serde_json::json!({
        "records": report.records,
        "shards": report.shards,
        "bytes": report.bytes,
        "copied": report.copied,
        "linked": report.linked,
        "kept": report.kept,
        "sources": report.sources,
    });
    Ok(json.to_string())
}
