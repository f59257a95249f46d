//! Turning `object_store` and file-system failures into [`crate::Error`]s that name the
//! object, keep the original error as their source, and carry the HTTP status when there was
//! one ([`RemoteError`]). What to do about them is [`Error::hint`]'s job.

use std::io;

use crate::error::Error;
#[cfg(feature = "remote")]
use crate::error::RemoteError;

/// The HTTP status behind an `object_store` error, if the server sent one.
///
/// `object_store` keeps its retry error type (the one that holds the status) private, so the
/// status is recovered from the variant where it has one and otherwise from the message,
/// which always spells it out as "status code: NNN" or similar.
#[cfg(feature = "remote")]
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
#[cfg(feature = "remote")]
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

/// Wraps an `object_store` failure of `op` ("GET", "PUT", ...) on `what` (a URL), keeping it
/// as the source, with the HTTP status and the kind of failure.
#[cfg(feature = "remote")]
pub(crate) fn remote(op: impl Into<String>, what: &str, e: object_store::Error) -> Error {
    remote_advised(op, what, e, None)
}

/// [`remote`], with `auth_advice` as the advice for a 401 or 403 (the store knows what
/// credentials it takes). A refused redirect carries its own advice.
#[cfg(feature = "remote")]
pub(crate) fn remote_advised(
    op: impl Into<String>,
    what: &str,
    e: object_store::Error,
    auth_advice: Option<&'static str>,
) -> Error {
    let status = http_status(&e);
    let refused = refused_redirect(&e);
    let class = match (&e, status) {
        (object_store::Error::NotFound { .. }, _) | (_, Some(404)) => io::ErrorKind::NotFound,
        (_, Some(401 | 403)) => io::ErrorKind::PermissionDenied,
        _ if is_timeout(&e) => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    let advice = match (refused, status) {
        (Some(r), _) => Some(r.advice),
        (None, Some(401 | 403)) => auth_advice,
        _ => None,
    };
    Error::remote(RemoteError {
        op: op.into(),
        status,
        class,
        advice,
        source: Box::new(e),
    })
    .in_shard(what.to_string())
}

/// The redirect that was refused, when that is why the request failed.
#[cfg(feature = "remote")]
fn refused_redirect(e: &object_store::Error) -> Option<&crate::net::RedirectRefused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<crate::net::RedirectRefused>() {
            return Some(r);
        }
        source = s.source();
    }
    None
}

/// Wraps a failure to finish a multipart upload. `object_store`'s `WriteMultipart::finish`
/// aborts the upload when completing it fails and, when the abort fails too, returns the
/// abort's error instead: which is what happens when the completion did land but its
/// response was lost (the store then refuses to abort an upload it has completed, with a
/// 403 or 404 on `DELETE ?uploadId`). That status is not the cause, and its advice (check
/// credentials) would be wrong: say what is known instead.
#[cfg(feature = "remote")]
pub(crate) fn remote_finish(what: &str, e: object_store::Error) -> Error {
    let text = e.to_string();
    if !(text.contains("DELETE") && text.contains("uploadId")) {
        return remote("complete multipart upload", what, e);
    }
    Error::remote(RemoteError {
        op: "complete multipart upload (unconfirmed: its answer was lost or it failed, and \
             aborting the upload was then refused, as a store refuses once an upload completed; \
             run the command again: a complete, intact copy is found and kept)"
            .into(),
        status: None,
        class: io::ErrorKind::Interrupted,
        advice: None,
        source: Box::new(e),
    })
    .in_shard(what.to_string())
}

/// True when the failure was a timeout: the transport said so somewhere in the chain.
#[cfg(feature = "remote")]
fn is_timeout(e: &object_store::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<object_store::client::HttpError>() {
            if h.kind() == object_store::client::HttpErrorKind::Timeout {
                return true;
            }
        }
        source = s.source();
    }
    e.to_string().contains("timed out")
}

/// Wraps a local file-system failure of `op` on `what` (a path).
pub(crate) fn local(op: &str, what: &str, e: io::Error) -> Error {
    let msg = format!("{op} failed: {e}");
    Error::from(io::Error::new(e.kind(), msg)).in_shard(what.to_string())
}

/// True when `e` says the object does not exist (same as [`Error::is_not_found`]).
pub fn is_not_found(e: &Error) -> bool {
    e.is_not_found()
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
