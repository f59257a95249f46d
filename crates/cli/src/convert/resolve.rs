//! Where an image reference written in a row is read from.
//!
//! Relative paths (`images/positive-edit/1.png`) resolve against the release (a directory or
//! a URL). `rejected_images` elements may carry a `nano-banana-300k/` or
//! `pico-banana-300k/nb/` prefix, or be absolute URLs on the CDN; all of these are
//! normalised to a path relative to the release. Absolute URLs then go through the
//! `--map-url PREFIX=REPLACEMENT` rules (longest prefix wins), which may point at another URL
//! or at a local directory. Anything that could escape its directory (`..`, absolute paths,
//! NUL, backslashes) is refused, so a row can never make editshard read outside the places
//! the user named.

use std::path::{Path, PathBuf};

use crate::path::check_relative_path;
use editshard_pico::layout::release_relative;

/// A resolved place to read an image from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Location {
    Local(PathBuf),
    Http(String),
}

impl Location {
    /// What failure reports call the URL: the URL, or the local path.
    pub fn describe(&self) -> String {
        match self {
            Location::Local(p) => p.display().to_string(),
            Location::Http(u) => u.clone(),
        }
    }
}

/// The release root: a local directory or an http(s) URL ending in `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    Dir(PathBuf),
    Url(String),
}

impl Release {
    pub fn parse(s: &str) -> Release {
        if is_http(s) {
            let mut u = s.to_string();
            if !u.ends_with('/') {
                u.push('/');
            }
            Release::Url(u)
        } else {
            Release::Dir(PathBuf::from(s))
        }
    }
}

fn is_http(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

#[derive(Debug, Clone)]
enum Target {
    Url(String),
    Dir(PathBuf),
}

/// Turns written references into [`Location`]s.
#[derive(Debug, Clone)]
pub struct Resolver {
    release: Release,
    /// `(prefix, target)`, longest prefix first.
    maps: Vec<(String, Target)>,
}

impl Resolver {
    /// `maps` are `PREFIX=REPLACEMENT` strings as given on the command line.
    pub fn new(release: Release, maps: &[String]) -> Result<Resolver, String> {
        let mut parsed = Vec::new();
        for m in maps {
            let (prefix, repl) = m.split_once('=').ok_or_else(|| {
                format!("--map-url {m:?}: expected PREFIX=REPLACEMENT (a URL or a directory)")
            })?;
            if prefix.is_empty() || repl.is_empty() {
                return Err(format!(
                    "--map-url {m:?}: the prefix and the replacement must not be empty"
                ));
            }
            let target = if is_http(repl) {
                Target::Url(repl.to_string())
            } else {
                Target::Dir(PathBuf::from(repl))
            };
            parsed.push((prefix.to_string(), target));
        }
        parsed.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        Ok(Resolver {
            release,
            maps: parsed,
        })
    }

    /// An edited image reference (`output_image`, a turn url, a rejected image).
    pub fn release_ref(&self, written: &str) -> Result<Location, String> {
        if let Some(rel) = release_relative(written) {
            check_path(&rel, written)?;
            return match &self.release {
                Release::Dir(d) => Ok(Location::Local(d.join(&rel))),
                Release::Url(base) => self.url(&format!("{base}{rel}")),
            };
        }
        self.url(written)
    }

    /// An absolute URL (a source image), after `--map-url`.
    pub fn url(&self, url: &str) -> Result<Location, String> {
        for (prefix, target) in &self.maps {
            let Some(rest) = url.strip_prefix(prefix.as_str()) else {
                continue;
            };
            return match target {
                Target::Url(base) => Ok(Location::Http(format!("{base}{rest}"))),
                Target::Dir(dir) => {
                    // A local mirror has no query strings.
                    let rest = rest.split(['?', '#']).next().unwrap_or("");
                    check_path(rest, url)?;
                    Ok(Location::Local(dir.join(rest)))
                }
            };
        }
        if is_http(url) {
            if url.len() > 4096 || url.chars().any(|c| c.is_control() || c == ' ') {
                return Err(format!(
                    "{:?} is not a usable URL",
                    editshard_pico::rows::truncate(url, 100)
                ));
            }
            return Ok(Location::Http(url.to_string()));
        }
        Err(format!(
            "{:?} is neither a path relative to the release nor an http(s) URL, and no --map-url \
             rule matches it",
            editshard_pico::rows::truncate(url, 100)
        ))
    }

    /// Apple's `local_input_image`: an absolute path, or one relative to a local release.
    /// Only used when the file exists; otherwise the source URL is used.
    pub fn local_input_image(&self, written: &str) -> Option<PathBuf> {
        if written.contains('\0') {
            return None;
        }
        let p = Path::new(written);
        let path = if p.is_absolute() {
            p.to_path_buf()
        } else {
            match &self.release {
                Release::Dir(d) => {
                    check_relative_path(written).ok()?;
                    d.join(p)
                }
                Release::Url(_) => return None,
            }
        };
        path.is_file().then_some(path)
    }
}

fn check_path(rel: &str, written: &str) -> Result<(), String> {
    check_relative_path(rel).map_err(|_| {
        format!(
            "{:?} does not resolve to a plain relative path (absolute, `..`, empty component, \
             backslash or NUL): refused",
            editshard_pico::rows::truncate(written, 100)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use editshard_pico::layout::CDN_BASE;

    fn dir_resolver() -> Resolver {
        Resolver::new(
            Release::Dir("/rel".into()),
            &[
                "https://farm1.staticflickr.com/=/mirror/farm1/".to_string(),
                "https://farm1.staticflickr.com/77/=http://proxy/77/".to_string(),
            ],
        )
        .unwrap()
    }

    #[test]
    fn rejected_path_forms_resolve_to_the_same_file() {
        let r = dir_resolver();
        let want = Location::Local("/rel/images/rejected-edit/14.png".into());
        for form in [
            "images/rejected-edit/14.png",
            "nano-banana-300k/images/rejected-edit/14.png",
            "pico-banana-300k/nb/images/rejected-edit/14.png",
            "https://ml-site.cdn-apple.com/datasets/pico-banana-300k/nb/images/rejected-edit/14.png",
        ] {
            assert_eq!(r.release_ref(form).unwrap(), want, "{form}");
        }
    }

    #[test]
    fn unsafe_paths_are_refused() {
        let r = dir_resolver();
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "images/../../x.png",
            "a\0b",
            "images\\x.png",
            "nano-banana-300k/../../x",
        ] {
            assert!(r.release_ref(bad).is_err(), "{bad:?}");
        }
        assert!(r.url("https://farm1.staticflickr.com/../../x").is_err());
        assert!(r.url("ftp://x/y").is_err());
        assert!(r.url("file:///etc/passwd").is_err());
    }

    #[test]
    fn map_url_longest_prefix_wins() {
        let r = dir_resolver();
        assert_eq!(
            r.url("https://farm1.staticflickr.com/77/1_o.jpg").unwrap(),
            Location::Http("http://proxy/77/1_o.jpg".into())
        );
        assert_eq!(
            r.url("https://farm1.staticflickr.com/12/1_o.jpg").unwrap(),
            Location::Local("/mirror/farm1/12/1_o.jpg".into())
        );
        assert_eq!(
            r.url("https://farm2.staticflickr.com/1.jpg").unwrap(),
            Location::Http("https://farm2.staticflickr.com/1.jpg".into())
        );
    }

    #[test]
    fn url_release_composes_then_maps() {
        let r = Resolver::new(
            Release::parse(CDN_BASE),
            &[format!("{CDN_BASE}=http://127.0.0.1:9/")],
        )
        .unwrap();
        assert_eq!(
            r.release_ref("nano-banana-300k/images/rejected-edit/1.png")
                .unwrap(),
            Location::Http("http://127.0.0.1:9/images/rejected-edit/1.png".into())
        );
    }
}
