//! Turning `object_store` and file-system failures into [`crate::Error`]s that name the
//! object, carry the HTTP status when there was one, and say what to do about it.

use std::io;

use crate::error::Error;

/// The HTTP status behind an `object_store` error, if the server sent one.
///
/// `object_store` keeps its retry error type private, so the status is recovered from the
/// variant where it has one and otherwise from the message, which always spells it out as
/// "status code: NNN" or similar.
pub(crate) fn http_status(e: &object_store::Error) -> Option<u16> {
    match e {
        object_store::Error::NotFound { .. } => return Some(404),
        object_store::Error::PermissionDenied { .. } => return Some(403),
        object_store::Error::Unauthenticated { .. } => return Some(401),
        object_store::Error::Precondition { .. } => return Some(412),
        _ => {}
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    status_in(&text)
}

/// Finds a three-digit HTTP status after "status code:" / "status:" in an error message.
fn status_in(text: &str) -> Option<u16> {
    for marker in ["status code: ", "status: ", "HTTP status "] {
        if let Some(at) = text.find(marker) {
            let digits: String = text[at + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(code) = digits.parse::<u16>() {
                if (100..600).contains(&code) {
                    return Some(code);
                }
            }
        }
    }
    None
}

fn advice(status: Option<u16>) -> &'static str {
    match status {
        Some(404) => {
            "no such object: check the URL or prefix (a dataset has manifest.json at its root)"
        }
        Some(401) | Some(403) => {
            "access denied: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or \
             AWS_SESSION_TOKEN) and the bucket's permissions"
        }
        Some(416) => {
            "the object is shorter than expected: it changed or is truncated; fetch it again"
        }
        Some(429) | Some(500..=599) => {
            "the server is overloaded or failing; retries were exhausted: try again later or \
             raise --retries"
        }
        Some(400..=499) => "the server refused the request: check the URL, region and endpoint",
        _ => "check the network, the endpoint (--s3-endpoint / AWS_ENDPOINT_URL) and retry",
    }
}

/// Wraps an `object_store` failure of `op` ("GET", "PUT", ...) on `what` (a URL).
pub(crate) fn remote(op: &str, what: &str, e: object_store::Error) -> Error {
    let status = http_status(&e);
    let kind = match (&e, status) {
        (object_store::Error::NotFound { .. }, _) | (_, Some(404)) => io::ErrorKind::NotFound,
        (_, Some(401 | 403)) => io::ErrorKind::PermissionDenied,
        _ if e.to_string().contains("timed out") => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    let status_text = status.map(|s| format!("HTTP {s}: ")).unwrap_or_default();
    let msg = format!("{op} failed: {status_text}{} [{e}]", advice(status));
    Error::from(io::Error::new(kind, msg)).in_shard(what.to_string())
}

/// Wraps a local file-system failure of `op` on `what` (a path).
pub(crate) fn local(op: &str, what: &str, e: io::Error) -> Error {
    let hint = match e.kind() {
        io::ErrorKind::NotFound => ": no such file (a dataset has manifest.json at its root)",
        io::ErrorKind::PermissionDenied => ": permission denied",
        _ => "",
    };
    let msg = format!("{op} failed{hint}: {e}");
    Error::from(io::Error::new(e.kind(), msg)).in_shard(what.to_string())
}

/// True when `e` says the object does not exist.
pub fn is_not_found(e: &Error) -> bool {
    matches!(e.kind(), crate::error::ErrorKind::Io(io) if io.kind() == io::ErrorKind::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_status_in_messages() {
        assert_eq!(
            status_in("Server returned non-2xx status code: 416 Range Not Satisfiable"),
            Some(416)
        );
        assert_eq!(status_in("Server returned non-2xx status code: 9"), None);
        assert_eq!(status_in("connection reset"), None);
    }
}
