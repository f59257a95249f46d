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
//!
//! Local files are read only inside directories the user named: the release directory,
//! `--map-url` directories, and for `local_input_image` (which a release may set to any
//! absolute path, `/etc/passwd` included) only the `--local-images-root` directories. Each
//! local path is also resolved through symbolic links and must still lie inside its root.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use editshard::path::check_relative_path;
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
    Dir(LocalDir),
}

/// A local directory that paths resolve under, with its real path (symbolic links resolved)
/// found once rather than for every image.
#[derive(Debug, Clone)]
struct LocalDir {
    dir: PathBuf,
    real: Option<PathBuf>,
}

impl LocalDir {
    fn new(dir: PathBuf) -> LocalDir {
        let real = dir.canonicalize().ok();
        LocalDir { dir, real }
    }

    /// `dir/rel`, refused if symbolic links take it outside `dir`. A path that does not
    /// exist (yet) is returned as joined: reading it reports it missing.
    fn join(&self, rel: &str, written: &str) -> Result<PathBuf, String> {
        let path = self.dir.join(rel);
        let real_root = match &self.real {
            Some(r) => r.clone(),
            // Made after the resolver was (or missing): resolved now.
            None => match self.dir.canonicalize() {
                Ok(r) => r,
                Err(_) => return Ok(path),
            },
        };
        let Ok(real) = path.canonicalize() else {
            return Ok(path);
        };
        if !real.starts_with(&real_root) {
            return Err(format!(
                "{:?} resolves to {} through a symbolic link, outside {}: refused",
                editshard_pico::rows::truncate(written, 100),
                real.display(),
                self.dir.display()
            ));
        }
        Ok(path)
    }
}

/// Turns written references into [`Location`]s.
#[derive(Debug, Clone)]
pub struct Resolver {
    release: Release,
    /// The release directory, when the release is local.
    release_dir: Option<LocalDir>,
    /// `(prefix, target)`, longest prefix first.
    maps: Vec<(String, Target)>,
    /// Directories an absolute `local_input_image` may point into (`--local-images-root`),
    /// resolved through symbolic links.
    local_roots: Vec<PathBuf>,
    /// `local_input_image` values not used because they lie outside every allowed root.
    local_refused: Arc<AtomicU64>,
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
                Target::Dir(LocalDir::new(PathBuf::from(repl)))
            };
            parsed.push((prefix.to_string(), target));
        }
        parsed.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        let release_dir = match &release {
            Release::Dir(d) => Some(LocalDir::new(d.clone())),
            Release::Url(_) => None,
        };
        Ok(Resolver {
            release,
            release_dir,
            maps: parsed,
            local_roots: Vec::new(),
            local_refused: Arc::default(),
        })
    }

    /// Allows absolute `local_input_image` paths inside these directories.
    pub fn local_images_roots(mut self, roots: &[PathBuf]) -> Result<Resolver, String> {
        for root in roots {
            let real = root
                .canonicalize()
                .map_err(|e| format!("--local-images-root {}: {e}", root.display()))?;
            if !real.is_dir() {
                return Err(format!(
                    "--local-images-root {} is not a directory",
                    root.display()
                ));
            }
            self.local_roots.push(real);
        }
        Ok(self)
    }

    /// How many `local_input_image` values were ignored because no allowed root holds them.
    pub fn local_refused(&self) -> u64 {
        self.local_refused.load(Ordering::Relaxed)
    }

    /// An edited image reference (`output_image`, a turn url, a rejected image).
    pub fn release_ref(&self, written: &str) -> Result<Location, String> {
        if let Some(rel) = release_relative(written) {
            check_path(&rel, written)?;
            return match &self.release {
                Release::Dir(_) => {
                    let dir = self.release_dir.as_ref().expect("set for a local release");
                    Ok(Location::Local(dir.join(&rel, written)?))
                }
                Release::Url(base) => {
                    let url = format!("{base}{rel}");
                    stays_under(&url, base, written)?;
                    self.url(&url)
                }
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
                Target::Url(base) => {
                    // The server decodes the path: `..%2f` is a `..` segment to it, though
                    // not to the URL parser that `stays_under` asks.
                    let path = rest.split(['?', '#']).next().unwrap_or("");
                    check_path(path.trim_start_matches('/'), url)?;
                    let mapped = format!("{base}{rest}");
                    stays_under(&mapped, base, url)?;
                    Ok(Location::Http(mapped))
                }
                Target::Dir(dir) => {
                    // A local mirror has no query strings.
                    let rest = rest.split(['?', '#']).next().unwrap_or("");
                    check_path(rest, url)?;
                    Ok(Location::Local(dir.join(rest, url)?))
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

    /// Apple's `local_input_image`: a path relative to a local release directory, or an
    /// absolute path inside a `--local-images-root`. Used only when the file exists there;
    /// otherwise the source URL is used. A path anywhere else (the release names it, not the
    /// user) is never opened, only counted ([`Self::local_refused`]).
    pub fn local_input_image(&self, written: &str) -> Option<PathBuf> {
        if written.contains('\0') {
            return None;
        }
        let p = Path::new(written);
        if p.is_absolute() {
            let Ok(real) = p.canonicalize() else {
                // Missing: nothing is read, the URL is used. Not a refusal.
                return None;
            };
            if !self.local_roots.iter().any(|root| real.starts_with(root)) {
                self.local_refused.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            return real.is_file().then_some(real);
        }
        // A remote release names no local files.
        let dir = self.release_dir.as_ref()?;
        check_relative_path(written).ok()?;
        let path = dir.join(written, written).ok()?;
        path.is_file().then_some(path)
    }
}

/// Refuses `url` unless, once parsed the way the HTTP client will parse it (`%2e%2e` is a
/// `..` segment there, and `..` segments are removed), it is still under `base`: same scheme,
/// host and port, and a path starting with `base`'s.
fn stays_under(url: &str, base: &str, written: &str) -> Result<(), String> {
    let refuse = |why: &str| {
        format!(
            "{:?} {why}: refused",
            editshard_pico::rows::truncate(written, 100)
        )
    };
    let (Ok(u), Ok(b)) = (reqwest::Url::parse(url), reqwest::Url::parse(base)) else {
        return Err(refuse("does not make a valid URL"));
    };
    let same_origin = u.scheme() == b.scheme()
        && u.host_str() == b.host_str()
        && u.port_or_known_default() == b.port_or_known_default();
    if !same_origin || !u.path().starts_with(b.path()) {
        return Err(refuse(&format!(
            "leads to {} once the URL is normalised (an encoded `..`?), outside {base}",
            editshard_pico::rows::truncate(u.as_str(), 100)
        )));
    }
    Ok(())
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
        // Percent-encoded `..` and separators, in the release part and behind a URL map.
        let remote = Resolver::new(
            Release::parse("http://h/rel/"),
            &["https://farm1.staticflickr.com/=http://proxy/farm1/".to_string()],
        )
        .unwrap();
        for bad in [
            "images/%2e%2e/%2e%2e/x.png",
            "images/..%2f..%2fx.png",
            "images/%2E%2E/x.png",
        ] {
            assert!(remote.release_ref(bad).is_err(), "{bad:?}");
        }
        for bad in [
            "https://farm1.staticflickr.com/%2e%2e/x.jpg",
            "https://farm1.staticflickr.com/a/%2E%2E/%2e%2e/x.jpg",
            "https://farm1.staticflickr.com/../x.jpg",
            "https://farm1.staticflickr.com/6578/..%2f..%2fsecret/a.png",
            "https://farm1.staticflickr.com/6578/%2e%2e%2F%2e%2e%2Fsecret/a.png",
        ] {
            assert!(remote.url(bad).is_err(), "{bad:?}");
            assert!(r.url(bad).is_err(), "{bad:?}");
        }
        assert!(
            remote
                .url("https://farm1.staticflickr.com/1/2_o.jpg?x=%2e%2e")
                .is_ok()
        );
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
