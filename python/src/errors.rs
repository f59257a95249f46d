//! editshard errors as instances of the Python exception classes of `editshard._errors`.

use editshard::error::ErrorKind;
use pyo3::prelude::*;

/// The Python class for an error: damaged bytes, a missing object, other storage failures,
/// a newer format, or a bad call.
fn class_name(e: &editshard::Error) -> &'static str {
    if e.is_corruption() {
        return "CorruptionError";
    }
    let class = match e.kind() {
        ErrorKind::Io(io) => io.kind(),
        ErrorKind::Remote(remote) => remote.class,
        ErrorKind::Unsupported(_) => return "UnsupportedError",
        _ => return "InvalidError",
    };
    match class {
        std::io::ErrorKind::NotFound => "ObjectNotFoundError",
        std::io::ErrorKind::PermissionDenied => "PermissionDeniedError",
        _ => "StorageError",
    }
}

fn kind_name(e: &editshard::Error) -> &'static str {
    match e.kind() {
        ErrorKind::Io(_) => "io",
        ErrorKind::Malformed(_) => "malformed",
        ErrorKind::Checksum { .. } => "checksum",
        ErrorKind::Truncated(_) => "truncated",
        ErrorKind::Unsupported(_) => "unsupported",
        ErrorKind::Limit(_) => "limit",
        ErrorKind::Invalid(_) => "invalid",
        ErrorKind::Rejected(_) => "rejected",
        ErrorKind::Remote(_) => "remote",
        ErrorKind::Bug(_) => "bug",
        _ => "other",
    }
}

fn build(py: Python<'_>, e: &editshard::Error) -> PyResult<PyErr> {
    let module = py.import("editshard._errors")?;
    let class = module.getattr(class_name(e))?;
    let value = class.call1((e.to_string(),))?;
    value.setattr("shard", e.shard())?;
    value.setattr("record", e.record())?;
    value.setattr("id", e.id())?;
    value.setattr("offset", e.offset())?;
    value.setattr("kind", kind_name(e))?;
    value.setattr("http_status", e.http_status())?;
    value.setattr("hint", e.hint())?;
    Ok(PyErr::from_value(value))
}

/// Converts an editshard error (needs the GIL; takes it if not held).
pub fn to_py(e: editshard::Error) -> PyErr {
    Python::attach(|py| {
        build(py, &e).unwrap_or_else(|import_failed| {
            pyo3::exceptions::PyRuntimeError::new_err(format!(
                "{e} (and editshard._errors could not be used: {import_failed})"
            ))
        })
    })
}

/// An image that does not decode, or would take more than the decode limit, as
/// `editshard.DecodeError` (a `ValueError`); `kind` is "limit" or "rejected".
pub fn decode_error(py: Python<'_>, message: &str, over_limit: bool) -> PyErr {
    let built = || -> PyResult<PyErr> {
        let class = py.import("editshard._errors")?.getattr("DecodeError")?;
        let value = class.call1((message,))?;
        value.setattr("kind", if over_limit { "limit" } else { "rejected" })?;
        Ok(PyErr::from_value(value))
    };
    built().unwrap_or_else(|_| pyo3::exceptions::PyValueError::new_err(message.to_string()))
}
