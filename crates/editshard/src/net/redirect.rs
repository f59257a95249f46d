//! Which redirects a request follows, and what it keeps when it does.
//!
//! A read follows redirects to other origins, as `curl -L`, browsers and `huggingface_hub`
//! do: that is how the Hugging Face Hub's `resolve/` URLs reach its CDN, GitHub release
//! assets their storage host, and many CDNs their signed URLs. Three rules bound it:
//! - at most [`MAX_REDIRECTS`] hops;
//! - never from `https` to plain `http`;
//! - credentials go only to the origin the user named: once a chain leaves that origin, the
//!   request loses its `Authorization` header, cookies and S3 signature headers (`x-amz-*`)
//!   for good, even if a later hop comes back to it (a server elsewhere must not be able to
//!   aim the user's credentials at a URL of its choosing).
//!
//! A write (`PUT`, `POST`, `DELETE`, ...) follows only `307`/`308` redirects within its
//! origin: data is never sent somewhere the user did not name, nor resent as a `GET`.

use std::fmt;

use reqwest::Url;
use reqwest::header::{AUTHORIZATION, COOKIE, HOST, HeaderMap, HeaderName, PROXY_AUTHORIZATION};

/// Most redirects one request follows.
pub const MAX_REDIRECTS: usize = 5;

/// Scheme, host and port: what credentials are bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: Option<String>,
    port: Option<u16>,
}

impl Origin {
    pub fn of(url: &Url) -> Origin {
        Origin {
            scheme: url.scheme().to_string(),
            host: url.host_str().map(str::to_ascii_lowercase),
            port: url.port_or_known_default(),
        }
    }
}

/// A redirect that was not followed: from where, to where, why, and what to do about it.
#[derive(Debug, Clone)]
pub struct RedirectRefused {
    /// The URL that answered with the redirect (shown without credentials or query).
    pub from: String,
    /// Where it pointed (likewise), or the `Location` as sent when it is not a URL.
    pub to: String,
    pub why: String,
    /// What the user can do about it.
    pub advice: &'static str,
}

impl fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused the redirect from {} to {}: {}",
            self.from, self.to, self.why
        )
    }
}

impl std::error::Error for RedirectRefused {}

const ADVICE_DOWNGRADE: &str = "editshard never follows https to plain http (the bytes and \
    what the next server trusts would cross the network in the clear): ask the server's \
    operator to redirect to https, or give editshard an https location that serves the files";
const ADVICE_TOO_MANY: &str = "the server may redirect in a loop: see the chain with `curl -sIL \
    URL`, then give editshard the final location";
const ADVICE_BAD_LOCATION: &str = "the server's redirect is broken: see it with `curl -sI URL` \
    and give editshard a location that serves the files directly";
const ADVICE_WRITE: &str = "editshard sends writes only to the origin it was given: write to \
    the location the server redirects to, named directly";

/// A URL for messages: no `user:password@`, and a query (which may hold a signature) shown as
/// `?…`.
pub fn shown(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    let query = u.query().is_some();
    u.set_query(None);
    u.set_fragment(None);
    if query {
        format!("{u}?…")
    } else {
        u.to_string()
    }
}

/// True for the statuses that redirect a request with a `Location` to follow (not `300`,
/// `304` or `305`).
pub fn is_followed_status(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Whether requests of this method are reads (follow redirects anywhere the rules allow).
pub fn is_read(method: &reqwest::Method) -> bool {
    method == reqwest::Method::GET || method == reqwest::Method::HEAD
}

/// The URL to request next, after `from` answered `status` with `location`, `hops` redirects
/// having been followed already; or why not.
pub fn next_hop(
    from: &Url,
    status: u16,
    location: &str,
    hops: usize,
    method: &reqwest::Method,
) -> Result<Url, RedirectRefused> {
    let refuse = |to: String, why: String, advice| RedirectRefused {
        from: shown(from),
        to,
        why,
        advice,
    };
    let next = match from.join(location.trim()) {
        Ok(next) => next,
        Err(e) => {
            return Err(refuse(
                format!("{location:?}"),
                format!("the Location of its {status} is not a URL ({e})"),
                ADVICE_BAD_LOCATION,
            ));
        }
    };
    let to = shown(&next);
    if hops >= MAX_REDIRECTS {
        return Err(refuse(
            to,
            format!("more than {MAX_REDIRECTS} redirects"),
            ADVICE_TOO_MANY,
        ));
    }
    if !matches!(next.scheme(), "http" | "https") {
        return Err(refuse(
            to,
            format!(
                "editshard follows redirects to http(s) only, not {}:",
                next.scheme()
            ),
            ADVICE_BAD_LOCATION,
        ));
    }
    if from.scheme() == "https" && next.scheme() == "http" {
        return Err(refuse(
            to,
            "it goes from https to plain http".to_string(),
            ADVICE_DOWNGRADE,
        ));
    }
    if !is_read(method) {
        if Origin::of(&next) != Origin::of(from) {
            return Err(refuse(
                to,
                format!("a {method} is never redirected to another origin"),
                ADVICE_WRITE,
            ));
        }
        if !matches!(status, 307 | 308) {
            return Err(refuse(
                to,
                format!("a {status} would resend the {method} as a GET"),
                ADVICE_WRITE,
            ));
        }
    }
    Ok(next)
}

/// Removes what authenticates a request, before it goes to an origin the user did not name:
/// `Authorization` (a bearer token or an S3 signature), `Proxy-Authorization`, cookies and
/// every `x-amz-*` header (a session token, a customer encryption key, the signature's
/// date and payload hash). Also `Host`, which the client sets from the new URL.
pub fn strip_credentials(headers: &mut HeaderMap) {
    for name in [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE, HOST] {
        headers.remove(name);
    }
    let amz: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("x-amz-"))
        .cloned()
        .collect();
    for name in amz {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::Method;
    use reqwest::header::HeaderValue;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn follows_reads_to_other_origins() {
        let from = url("https://hub.example/datasets/o/n/resolve/main/manifest.json");
        let next = next_hop(&from, 302, "https://cdn.example/b/1?sig=x", 0, &Method::GET);
        assert_eq!(next.unwrap().as_str(), "https://cdn.example/b/1?sig=x");
        // Relative locations resolve against the URL that answered.
        let next = next_hop(&from, 307, "../x", 4, &Method::HEAD).unwrap();
        assert_eq!(next.as_str(), "https://hub.example/datasets/o/n/resolve/x");
        // http to https is an upgrade, and followed.
        let next = next_hop(&url("http://a/x"), 301, "https://b/x", 0, &Method::GET);
        assert!(next.is_ok());
    }

    #[test]
    fn refuses_a_downgrade_naming_both_ends() {
        let from = url("https://user:pw@hub.example/f?token=secret");
        let e = next_hop(&from, 302, "http://cdn.example/f?sig=s", 0, &Method::GET).unwrap_err();
        assert_eq!(e.from, "https://hub.example/f?…");
        assert_eq!(e.to, "http://cdn.example/f?…");
        assert!(e.why.contains("https to plain http"), "{e}");
        assert!(e.advice.contains("https"));
        let text = e.to_string();
        assert!(!text.contains("secret") && !text.contains("pw") && !text.contains("sig=s"));
    }

    #[test]
    fn refuses_a_sixth_hop() {
        let from = url("http://a/x");
        assert!(next_hop(&from, 302, "/y", MAX_REDIRECTS - 1, &Method::GET).is_ok());
        let e = next_hop(&from, 302, "/y", MAX_REDIRECTS, &Method::GET).unwrap_err();
        assert!(e.why.contains("more than 5 redirects"), "{e}");
    }

    #[test]
    fn refuses_other_schemes_and_broken_locations() {
        let from = url("http://a/x");
        let e = next_hop(&from, 302, "file:///etc/passwd", 0, &Method::GET).unwrap_err();
        assert!(e.why.contains("http(s) only"), "{e}");
        let e = next_hop(&from, 302, "http://[::1", 0, &Method::GET).unwrap_err();
        assert!(e.why.contains("not a URL"), "{e}");
    }

    #[test]
    fn writes_stay_in_their_origin_and_method() {
        let from = url("http://127.0.0.1:9000/bucket/key");
        assert!(next_hop(&from, 307, "/bucket/other", 0, &Method::PUT).is_ok());
        let e = next_hop(&from, 307, "http://127.0.0.1:9001/k", 0, &Method::PUT).unwrap_err();
        assert!(e.why.contains("another origin"), "{e}");
        let e = next_hop(&from, 302, "/bucket/other", 0, &Method::PUT).unwrap_err();
        assert!(e.why.contains("as a GET"), "{e}");
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let o = |s| Origin::of(&url(s));
        assert_eq!(o("https://H.example/a"), o("https://h.example:443/b"));
        assert_ne!(o("https://h.example/"), o("http://h.example/"));
        assert_ne!(o("http://127.0.0.1:1/"), o("http://127.0.0.1:2/"));
    }

    #[test]
    fn strips_every_credential() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer t"),
            ("proxy-authorization", "Basic x"),
            ("cookie", "a=b"),
            ("host", "hub"),
            ("x-amz-security-token", "tok"),
            ("x-amz-date", "20240101T000000Z"),
            ("range", "bytes=0-9"),
            ("user-agent", "editshard"),
        ] {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        strip_credentials(&mut h);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["range", "user-agent"]);
    }
}
