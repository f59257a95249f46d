//! The Hugging Face Hub in front of its CDN, modelled by two real nginx servers on loopback
//! (see `testing.md`, "A CDN behind a redirect"):
//! - the "hub" answers `/datasets/ORG/NAME/resolve/main/PATH` only to a request carrying
//!   `Authorization: Bearer TOKEN` (else 401), and then with a 302 to the CDN's
//!   `/blobs/PATH?X-Amz-Signature=...`, as the Hub's `resolve/` URLs redirect to signed URLs;
//! - the "CDN" serves the dataset's files under `/blobs/` and refuses (400) any request that
//!   carries an `Authorization` header, as a signed URL does.
//!
//! Both log the `Authorization` header of every request ([`LogLine::authorization`]).
//! The hub can speak https (`tools/tls/`) while the CDN stays plain http: a downgrade a
//! reader must refuse.

use std::path::Path;

use crate::servers::{LogLine, Nginx, Site};

/// The dataset repository the hub serves (`hf://datasets/{REPO}`).
pub const REPO: &str = "editshard-test/pico";
/// The token the hub requires.
pub const TOKEN: &str = "hf_editshardTestToken";

pub struct HubCdn {
    pub hub: Nginx,
    pub cdn: Nginx,
}

impl HubCdn {
    /// A hub over plain http, redirecting to a CDN that serves `dataset`.
    pub fn start(dataset: &Path) -> HubCdn {
        Self::start_with(dataset, false)
    }

    /// A hub over https (trust `servers::tls_ca_path()`), redirecting to a plain-http CDN.
    pub fn start_https_hub(dataset: &Path) -> HubCdn {
        Self::start_with(dataset, true)
    }

    fn start_with(dataset: &Path, https_hub: bool) -> HubCdn {
        let dataset = dataset.canonicalize().expect("dataset dir must exist");
        let cdn = Nginx::start_site(
            &dataset,
            &Site {
                directives: format!(
                    "location /blobs/ {{ if ($http_authorization) {{ return 400; }} alias {}/; }}",
                    dataset.display()
                ),
                tls: false,
            },
        );
        let hub = Nginx::start_site(
            &dataset,
            &Site {
                directives: format!(
                    "location ~ ^/datasets/{REPO}/resolve/main/(.*)$ {{ \
                     if ($http_authorization != \"Bearer {TOKEN}\") {{ return 401; }} \
                     return 302 {cdn}/blobs/$1?X-Amz-Signature=x; }} \
                     location / {{ return 404; }}",
                    cdn = cdn.url()
                ),
                tls: https_hub,
            },
        );
        HubCdn { hub, cdn }
    }

    /// The hub's address, for `HF_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        self.hub.url()
    }

    /// The dataset as an `hf://` location.
    pub fn location(&self) -> String {
        format!("hf://datasets/{REPO}")
    }

    /// The dataset's folder as the hub's `resolve/main` URL.
    pub fn resolve_url(&self) -> String {
        format!("{}/datasets/{REPO}/resolve/main", self.hub.url())
    }

    /// The environment a reader of [`location`](Self::location) needs: the hub as
    /// `HF_ENDPOINT`, the token as `HF_TOKEN`, and `HF_HOME` somewhere empty so no token file
    /// of the machine's user is read.
    pub fn env(&self, empty_dir: &Path) -> Vec<(&'static str, String)> {
        vec![
            ("HF_ENDPOINT", self.endpoint()),
            ("HF_TOKEN", TOKEN.to_string()),
            ("HF_HOME", empty_dir.display().to_string()),
        ]
    }

    /// Both logs, once nginx has written the line of every request answered so far.
    pub fn settled_logs(&self) -> (Vec<LogLine>, Vec<LogLine>) {
        let settle = |n: &Nginx| {
            let mut last = n.request_count();
            loop {
                std::thread::sleep(std::time::Duration::from_millis(50));
                let now = n.request_count();
                if now == last {
                    return n.access_log();
                }
                last = now;
            }
        };
        (settle(&self.hub), settle(&self.cdn))
    }
}
