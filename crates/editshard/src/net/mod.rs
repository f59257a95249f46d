//! Network set-up shared by every HTTP and S3 client: the TLS provider, and how redirects
//! are followed ([`redirect`]'s rules, applied under object_store by [`follow`]: reads go
//! to other origins too, at most 5 hops, never https to http, credentials only to the origin
//! the user named, each object's final URL remembered).

/// Installs rustls' ring crypto provider as the process default, once. reqwest and
/// object_store are built without a provider of their own (so that aws-lc-sys, a slow C build,
/// stays out), and need one installed before the first TLS connection.
pub fn ensure_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An error means another provider was installed first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

mod follow;
mod redirect;

pub(crate) use follow::Bearer;
pub use redirect::{MAX_REDIRECTS, Origin, RedirectRefused};

/// The redirect rule for downloading a release's images, whose URLs the release lists on
/// hosts that do redirect elsewhere (Flickr's `farmN.staticflickr.com` to
/// `live.staticflickr.com`): at most [`MAX_REDIRECTS`] hops, and never from `https` to plain
/// `http`. Following a redirect reaches nothing the release could not list directly.
pub fn download_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let downgrade = attempt.url().scheme() == "http"
            && attempt.previous().iter().any(|u| u.scheme() == "https");
        if downgrade {
            let why = format!(
                "{} redirected from https to plain http: refused",
                attempt.url()
            );
            return attempt.error(why);
        }
        if attempt.previous().len() > MAX_REDIRECTS {
            let why = format!("{}: more than {MAX_REDIRECTS} redirects", attempt.url());
            return attempt.error(why);
        }
        attempt.follow()
    })
}

/// object_store's HTTP connector: a reqwest client that follows no redirect itself, under
/// [`follow::FollowRedirects`], which follows them by editshard's rules (see
/// [`redirect`]). It reproduces what editshard sets in `ClientOptions`: timeouts and whether
/// plain `http://` is allowed.
#[derive(Debug, Clone)]
pub(crate) struct Connector {
    pub connect_timeout: std::time::Duration,
    pub read_timeout: std::time::Duration,
    pub allow_http: bool,
    /// A bearer token for the origin the user named (`HF_TOKEN` for `hf://`).
    pub bearer: Option<Bearer>,
}

impl object_store::client::HttpConnector for Connector {
    fn connect(
        &self,
        _: &object_store::ClientOptions,
    ) -> object_store::Result<object_store::client::HttpClient> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("editshard/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .https_only(!self.allow_http)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| object_store::Error::Generic {
                store: "HTTP",
                source: Box::new(e),
            })?;
        Ok(object_store::client::HttpClient::new(
            follow::FollowRedirects::new(client, self.bearer.clone()),
        ))
    }
}
