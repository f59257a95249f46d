//! Where the release keeps its files: the public CDN base, and how the paths written in rows
//! (relative, with a stray prefix, or as absolute CDN URLs) map to release-relative paths.
//! `convert` resolves rows with it and `export` writes files back at the same places.

/// The public CDN base every relative path of the real release resolves against.
pub const CDN_BASE: &str = "https://ml-site.cdn-apple.com/datasets/pico-banana-300k/nb/";
/// Prefixes seen (or suspected) on `rejected_images` elements.
const RELEASE_PREFIXES: [&str; 2] = ["nano-banana-300k/", "pico-banana-300k/nb/"];

/// A release-relative path for references that are one: plain relative paths, the same with a
/// `nano-banana-300k/` or `pico-banana-300k/nb/` prefix, and absolute URLs on the CDN.
/// `None` for other absolute URLs.
pub fn release_relative(written: &str) -> Option<String> {
    for scheme in ["https://", "http://"] {
        let cdn = CDN_BASE.replacen("https://", scheme, 1);
        if let Some(rest) = written.strip_prefix(cdn.as_str()) {
            return Some(rest.to_string());
        }
    }
    if written.contains("://") {
        return None;
    }
    for prefix in RELEASE_PREFIXES {
        if let Some(rest) = written.strip_prefix(prefix) {
            return Some(rest.to_string());
        }
    }
    Some(written.to_string())
}
