//! `editshard view`: browse an editshard dataset in a web browser, wherever it is stored
//! (a local directory, `https://...`, `s3://...`), reading only what is on screen.
//!
//! | module | what it holds |
//! |---|---|
//! | [`server`], [`app`] | the axum routes and security headers; the state they share |
//! | [`hosts`] | the `Host` names the app answers to (DNS rebinding) |
//! | [`gallery`], [`cards`], [`pick`], [`query`] | the paged, filtered grid and its URL |
//! | [`record_page`] | one record: every field, full images, downloads |
//! | [`stats`], [`svg`] | counts and distributions, charts as inline SVG |
//! | [`thumbs`], [`images`] | one image by ranged read; thumbnails and their cache |
//! | [`budget`] | the memory image requests may hold at once, shared by all of them |
//! | [`report`] | the self-contained static HTML report |
//! | [`html`] | escaping and the page frame |
//!
//! The app is read-only, binds to loopback unless told otherwise, answers only requests for
//! the host names it was started under, escapes every string from the dataset and sends a
//! Content-Security-Policy that allows no script at all.

pub mod app;
pub mod budget;
pub mod cards;
pub mod gallery;
pub mod hosts;
pub mod html;
pub mod images;
pub mod pick;
pub mod query;
pub mod record_page;
pub mod report;
pub mod server;
pub mod stats;
pub mod svg;
pub mod thumbs;

use std::net::SocketAddr;
use std::sync::Arc;

use editshard::read::Dataset;

pub use app::{App, ViewOptions};
pub use report::{ReportOptions, report_html};
pub use server::router;

/// A bound listener for the app over `ds`; `serve` runs it.
pub struct Viewer {
    listener: tokio::net::TcpListener,
    app: Arc<App>,
}

impl Viewer {
    /// Binds `addr` (port 0 picks a free one), with the default options.
    pub async fn bind(ds: Dataset, name: &str, addr: SocketAddr) -> editshard::Result<Viewer> {
        Viewer::bind_with(ds, name, addr, &ViewOptions::default()).await
    }

    /// Binds `addr` (port 0 picks a free one). The app answers to the loopback names, the
    /// bound address and `options.allow_hosts`.
    pub async fn bind_with(
        ds: Dataset,
        name: &str,
        addr: SocketAddr,
        options: &ViewOptions,
    ) -> editshard::Result<Viewer> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| editshard::Error::from(e).in_shard(format!("listening on {addr}")))?;
        Ok(Viewer {
            listener,
            app: App::with_options(ds, name, addr.ip(), options),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn app(&self) -> Arc<App> {
        self.app.clone()
    }

    /// Serves until the process ends (or the future is dropped).
    pub async fn serve(self) -> editshard::Result<()> {
        axum::serve(self.listener, router(self.app))
            .await
            .map_err(editshard::Error::from)
    }
}
