//! The HTTP service under every object_store client editshard makes: it sends each request
//! with a reqwest client that follows no redirect itself, and follows them here under the
//! rules of [`super::redirect`], so that it can
//! - drop credentials for good once a chain leaves the origin the user named,
//! - add a bearer token (`HF_TOKEN`) to requests to that origin only, and
//! - remember where a read of each object ended up, so that the many ranged reads of one
//!   shard pay the redirect once, not each time. A remembered target that stops answering
//!   (a signed URL that expired: 403, or 400, 401, 404, 410, or a new redirect) is forgotten
//!   and the object is resolved again from the URL the user named, once per request.
//!
//! object_store's retries and back-off wrap this service: a refused redirect is an error of
//! kind `Unknown`, which it does not retry.

use std::collections::HashMap;
use std::sync::Mutex;

use object_store::client::{
    HttpError, HttpErrorKind, HttpRequest, HttpRequestBody, HttpResponse, HttpService,
};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, LOCATION};
use reqwest::{Method, Url};

use super::redirect::{self, Origin, is_followed_status, is_read, strip_credentials};

/// Most objects whose redirect target is remembered at once; past it the memory starts over
/// (a dataset has a manifest and its shards: a few thousand objects at most).
const MAX_REMEMBERED: usize = 4096;

/// A bearer token and the only origin it is sent to.
#[derive(Clone)]
pub(crate) struct Bearer {
    pub origin: Origin,
    pub value: HeaderValue,
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bearer(<redacted> for {:?})", self.origin)
    }
}

impl Bearer {
    /// A token sent as `Authorization: Bearer TOKEN` to `origin_of`'s origin only; `None`
    /// when the token cannot be a header value.
    #[cfg(feature = "http")]
    pub fn new(origin_of: &Url, token: &str) -> Option<Bearer> {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.trim())).ok()?;
        value.set_sensitive(true);
        Some(Bearer {
            origin: Origin::of(origin_of),
            value,
        })
    }
}

/// Where a read of an object ended up, and whether credentials go there.
#[derive(Debug, Clone)]
struct Target {
    url: Url,
    credentials: bool,
}

#[derive(Debug)]
pub(crate) struct FollowRedirects {
    client: reqwest::Client,
    bearer: Option<Bearer>,
    /// The final URL of each read that was redirected, by the URL requested.
    targets: Mutex<HashMap<String, Target>>,
}

/// The parts of a request that each hop resends.
struct Sent<'a> {
    method: &'a Method,
    headers: &'a HeaderMap,
    body: &'a HttpRequestBody,
}

impl FollowRedirects {
    /// `client` must follow no redirects itself (`reqwest::redirect::Policy::none()`).
    pub fn new(client: reqwest::Client, bearer: Option<Bearer>) -> FollowRedirects {
        FollowRedirects {
            client,
            bearer,
            targets: Mutex::new(HashMap::new()),
        }
    }

    fn remembered(&self, key: &str) -> Option<Target> {
        let targets = self.targets.lock().unwrap_or_else(|e| e.into_inner());
        targets.get(key).cloned()
    }

    fn remember(&self, key: String, target: Target) {
        let mut targets = self.targets.lock().unwrap_or_else(|e| e.into_inner());
        if targets.len() >= MAX_REMEMBERED && !targets.contains_key(&key) {
            targets.clear();
        }
        targets.insert(key, target);
    }

    fn forget(&self, key: &str) {
        let mut targets = self.targets.lock().unwrap_or_else(|e| e.into_inner());
        targets.remove(key);
    }

    async fn send(
        &self,
        req: &Sent<'_>,
        url: &Url,
        credentials: bool,
    ) -> Result<HttpResponse, HttpError> {
        let uri = url
            .as_str()
            .parse::<http::Uri>()
            .map_err(|e| HttpError::new(HttpErrorKind::Unknown, e))?;
        let mut out = HttpRequest::new(req.body.clone());
        *out.method_mut() = req.method.clone();
        *out.uri_mut() = uri;
        *out.headers_mut() = req.headers.clone();
        if !credentials {
            strip_credentials(out.headers_mut());
        }
        self.client.call(out).await
    }

    /// Requests `url`, following redirects; remembers where a successful read ended up.
    async fn resolve(&self, req: &Sent<'_>, url: Url) -> Result<HttpResponse, HttpError> {
        let origin = Origin::of(&url);
        let requested = url.as_str().to_string();
        let mut url = url;
        let mut credentials = true;
        let mut hops = 0;
        loop {
            let response = self.send(req, &url, credentials).await?;
            let status = response.status().as_u16();
            let location = response.headers().get(LOCATION);
            // Without a Location, object_store reports the bare redirect itself.
            let (true, Some(location)) = (is_followed_status(status), location) else {
                if hops > 0 && is_read(req.method) && response.status().is_success() {
                    self.remember(requested, Target { url, credentials });
                }
                return Ok(response);
            };
            let location = String::from_utf8_lossy(location.as_bytes()).into_owned();
            drop(response);
            let next = redirect::next_hop(&url, status, &location, hops, req.method)
                .map_err(|refused| HttpError::new(HttpErrorKind::Unknown, refused))?;
            if Origin::of(&next) != origin {
                credentials = false;
            }
            url = next;
            hops += 1;
        }
    }
}

/// A status from a remembered target that means it no longer serves the object (a signed
/// URL expired or was revoked, the object moved, or it redirects in turn), rather than a
/// range or load problem.
fn is_stale(status: u16) -> bool {
    matches!(status, 400 | 401 | 403 | 404 | 410) || is_followed_status(status)
}

#[async_trait::async_trait]
impl HttpService for FollowRedirects {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (mut parts, body) = req.into_parts();
        let url = Url::parse(&parts.uri.to_string())
            .map_err(|e| HttpError::new(HttpErrorKind::Unknown, e))?;
        if let Some(bearer) = &self.bearer {
            if Origin::of(&url) == bearer.origin && !parts.headers.contains_key(AUTHORIZATION) {
                parts.headers.insert(AUTHORIZATION, bearer.value.clone());
            }
        }
        let req = Sent {
            method: &parts.method,
            headers: &parts.headers,
            body: &body,
        };
        if is_read(&parts.method) {
            let key = url.as_str();
            if let Some(target) = self.remembered(key) {
                match self.send(&req, &target.url, target.credentials).await {
                    Ok(response) if !is_stale(response.status().as_u16()) => return Ok(response),
                    // Resolved again below, from the URL the user named.
                    Ok(_) => self.forget(key),
                    // Resolved again on object_store's retry, if it makes one.
                    Err(e) => {
                        self.forget(key);
                        return Err(e);
                    }
                }
            }
        }
        self.resolve(&req, url).await
    }
}
