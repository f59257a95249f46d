//! HTML building: the one escaping helper every string from a dataset goes through, URL
//! encoding for query values and paths, and the page frame shared by every page.
//!
//! Pages are built as plain strings. Anything that comes from the dataset (ids, instructions,
//! labels, URLs, error messages) is untrusted and passes through [`esc`] before it is written;
//! the server's Content-Security-Policy forbids scripts besides, so a string that escaped
//! escaping still could not run.

use std::fmt::Write;

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value or path segment (everything but unreserved characters).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `text` cut to at most `max` characters, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Which top-level page a frame is for (its navigation link is marked).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Gallery,
    Record,
    Stats,
}

/// A whole page: the title (escaped here), the dataset's name, navigation and `body` (already
/// HTML). The stylesheet is a file the app serves: no inline styles or scripts.
pub fn page(title: &str, dataset: &str, nav: Nav, body: &str) -> String {
    let link = |href: &str, label: &str, which: Nav| {
        let current = if nav == which {
            " aria-current=\"page\""
        } else {
            ""
        };
        format!("<a href=\"{href}\"{current}>{label}</a>")
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · editshard view</title>\
         <link rel=\"stylesheet\" href=\"/static/style.css\"></head>\n<body>\
         <header class=\"top\"><strong>editshard view</strong> <span class=\"dataset\">{dataset}</span>\
         <nav>{gallery} {stats}</nav></header>\n<main>{body}</main></body></html>\n",
        title = esc(title),
        dataset = esc(dataset),
        gallery = link("/", "Gallery", Nav::Gallery),
        stats = link("/stats", "Statistics", Nav::Stats),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<img src=x onerror=alert(1)> & \"'"),
            "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;&#39;"
        );
    }

    #[test]
    fn url_encoding_keeps_only_unreserved_bytes() {
        assert_eq!(url_encode("a b/ü&=#"), "a%20b%2F%C3%BC%26%3D%23");
    }

    #[test]
    fn truncates_on_character_boundaries() {
        assert_eq!(truncate("ééé", 2), "éé…");
        assert_eq!(truncate("ab", 2), "ab");
    }
}
