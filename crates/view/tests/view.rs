//! `editshard view`'s integration tests, one binary: every endpoint over HTTP against a
//! dataset on disk, behind nginx and in s3s-fs (with the request counts of a first gallery
//! page from nginx's access log), and a real headless Chromium driven over WebDriver
//! (chromedriver), which saves screenshots of each page.
//!
//! Needs nginx, s3s-fs, chromium and chromium-driver (`scripts/install-test-deps.sh`). Run one
//! group with e.g. `cargo test -p editshard-view --test view browser::`.

#[path = "view/browser.rs"]
mod browser;
#[path = "view/hardening.rs"]
mod hardening;
#[path = "view/http_local.rs"]
mod http_local;
#[path = "view/http_remote.rs"]
mod http_remote;
#[path = "view/support.rs"]
mod support;
#[path = "view/webdriver.rs"]
mod webdriver;
