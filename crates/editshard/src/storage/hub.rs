//! `hf://datasets/ORG/NAME[@REVISION][/PATH]`: a dataset repository on the Hugging Face Hub,
//! by the conventions of `huggingface_hub` (and of `HfFileSystem`, pandas, polars and DuckDB,
//! which take the same form). It is read over HTTP from
//! `{HF_ENDPOINT or https://huggingface.co}/datasets/ORG/NAME/resolve/{REVISION or main}/PATH`,
//! whose answers redirect to the Hub's CDN; the token (`HF_TOKEN`, else the file that
//! `hf auth login` writes) is sent to the Hub's own origin only.

use crate::error::{Error, Result};
use crate::path::check_relative_path;

/// The Hub, unless `HF_ENDPOINT` names another (a mirror, or a private deployment).
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// What a user writes after `hf://`, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HubPath {
    /// `ORG/NAME`.
    repo_id: String,
    /// A branch, tag or commit; `main` unless given.
    revision: String,
    /// A folder in the repository ("" for its root).
    path: String,
}

const FORM: &str = "expected hf://datasets/ORG/NAME[@REVISION][/PATH]";

impl HubPath {
    /// Parses `rest`, what follows `hf://`.
    pub fn parse(rest: &str) -> Result<HubPath> {
        let bad = |why: &str| Error::invalid(format!("location \"hf://{rest}\": {why} ({FORM})"));
        let Some(repo) = rest.strip_prefix("datasets/") else {
            return Err(bad(
                "editshard reads dataset repositories (hf://datasets/...), not models or spaces",
            ));
        };
        let (org, after_org) = repo.split_once('/').ok_or_else(|| bad("no dataset name"))?;
        let (name_part, tail) = match after_org.find(['@', '/']) {
            Some(at) => after_org.split_at(at),
            None => (after_org, ""),
        };
        for (what, part) in [("organization", org), ("dataset name", name_part)] {
            let valid = !part.is_empty()
                && part.len() <= 96
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                && !part.starts_with(['-', '.'])
                && !part.contains("..");
            if !valid {
                return Err(bad(&format!(
                    "{part:?} is not a valid {what} (letters, digits, '-', '_' and '.')"
                )));
            }
        }
        let (revision, path) = match tail.strip_prefix('@') {
            Some(rev_and_path) => split_revision(rev_and_path),
            None => ("main".to_string(), tail.trim_start_matches('/').to_string()),
        };
        if revision.is_empty() {
            return Err(bad("empty revision after '@'"));
        }
        if revision.chars().any(char::is_control) {
            return Err(bad("the revision holds a control character"));
        }
        let path = path.trim_matches('/').to_string();
        if !path.is_empty() {
            check_relative_path(&path).map_err(|e| e.in_shard(format!("hf://{rest}")))?;
        }
        Ok(HubPath {
            repo_id: format!("{org}/{name_part}"),
            revision,
            path,
        })
    }

    /// The HTTP(S) URL of the folder, under `endpoint` (`HF_ENDPOINT`, else the Hub).
    pub fn url(&self, endpoint: &str) -> String {
        let mut url = format!(
            "{}/datasets/{}/resolve/{}",
            endpoint.trim().trim_end_matches('/'),
            self.repo_id,
            percent_encode(&self.revision)
        );
        if !self.path.is_empty() {
            url.push('/');
            url.push_str(&self.path);
        }
        url
    }

    /// How the user would write it, revision shown only when it is not `main`.
    pub fn display(&self) -> String {
        let mut shown = format!("hf://datasets/{}", self.repo_id);
        if self.revision != "main" {
            shown.push('@');
            if self.revision.contains('/') && special_ref(&self.revision).is_none() {
                shown.push_str(&percent_encode(&self.revision));
            } else {
                shown.push_str(&self.revision);
            }
        }
        if !self.path.is_empty() {
            shown.push('/');
            shown.push_str(&self.path);
        }
        shown
    }
}

/// Splits what follows `@` into the revision and the path, as `huggingface_hub` does: a
/// revision holds a `/` only when it is percent-encoded (`refs%2Fpr%2F1`), or when it is one
/// of the Hub's special refs (`refs/pr/N`, `refs/convert/NAME`).
fn split_revision(rev_and_path: &str) -> (String, String) {
    if let Some(len) = special_ref(rev_and_path) {
        let (rev, path) = rev_and_path.split_at(len);
        return (rev.to_string(), path.trim_start_matches('/').to_string());
    }
    let (rev, path) = rev_and_path.split_once('/').unwrap_or((rev_and_path, ""));
    (percent_decode(rev), path.to_string())
}

/// The length of a special ref at the start of `s` (`refs/pr/12`, `refs/convert/parquet`).
fn special_ref(s: &str) -> Option<usize> {
    let word_end = |rest: &str, digits: bool| {
        let n = rest
            .bytes()
            .take_while(|b| {
                if digits {
                    b.is_ascii_digit()
                } else {
                    b.is_ascii_alphanumeric() || *b == b'_'
                }
            })
            .count();
        (n > 0 && (rest.len() == n || rest.as_bytes()[n] == b'/')).then_some(n)
    };
    for (prefix, digits) in [("refs/pr/", true), ("refs/convert/", false)] {
        if let Some(rest) = s.strip_prefix(prefix) {
            return word_end(rest, digits).map(|n| prefix.len() + n);
        }
    }
    None
}

/// Every byte but the unreserved ones (RFC 3986) as `%XX`: a revision is one path segment.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%XX` sequences decoded; anything else (or a malformed `%`) kept as it is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The Hub token: `HF_TOKEN`, else the file `huggingface_hub` keeps it in (`HF_TOKEN_PATH`,
/// else `HF_HOME/token`, `HF_HOME` defaulting to `$XDG_CACHE_HOME/huggingface` or
/// `~/.cache/huggingface`), as `hf auth login` writes it.
pub(crate) fn token_from_env(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if let Some(token) = set("HF_TOKEN") {
        return Some(token.trim().to_string());
    }
    let path = set("HF_TOKEN_PATH")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let home = set("HF_HOME").map(std::path::PathBuf::from).or_else(|| {
                set("XDG_CACHE_HOME")
                    .map(std::path::PathBuf::from)
                    .or_else(|| set("HOME").map(|h| std::path::Path::new(&h).join(".cache")))
                    .map(|cache| cache.join("huggingface"))
            })?;
            Some(home.join("token"))
        })?;
    // A token is a short line; anything larger is not one.
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() || meta.len() > 4096 {
        return None;
    }
    let token = std::fs::read_to_string(&path).ok()?;
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_of(s: &str) -> String {
        HubPath::parse(s.strip_prefix("hf://").unwrap())
            .unwrap()
            .url(DEFAULT_ENDPOINT)
    }

    #[test]
    fn resolves_as_huggingface_hub_does() {
        let base = "https://huggingface.co/datasets/apple/pico-banana";
        assert_eq!(
            url_of("hf://datasets/apple/pico-banana"),
            format!("{base}/resolve/main")
        );
        assert_eq!(
            url_of("hf://datasets/apple/pico-banana/editshard/sft/"),
            format!("{base}/resolve/main/editshard/sft")
        );
        assert_eq!(
            url_of("hf://datasets/apple/pico-banana@v1.0/sft"),
            format!("{base}/resolve/v1.0/sft")
        );
        assert_eq!(
            url_of("hf://datasets/apple/pico-banana@0123abc"),
            format!("{base}/resolve/0123abc")
        );
        // A revision with a '/' is percent-encoded in the URL: written encoded, or as one
        // of the Hub's special refs.
        assert_eq!(
            url_of("hf://datasets/apple/pico-banana@refs%2Fheads%2Fdev/sft"),
            format!("{base}/resolve/refs%2Fheads%2Fdev/sft")
        );
        assert_eq!(
            url_of("hf://datasets/apple/pico-banana@refs/pr/12/sft"),
            format!("{base}/resolve/refs%2Fpr%2F12/sft")
        );
        assert_eq!(
            url_of("hf://datasets/apple/pico-banana@refs/convert/parquet"),
            format!("{base}/resolve/refs%2Fconvert%2Fparquet")
        );
        let p = HubPath::parse("datasets/o/n@v2/x").unwrap();
        assert_eq!(
            p.url("http://127.0.0.1:8080/"),
            "http://127.0.0.1:8080/datasets/o/n/resolve/v2/x"
        );
    }

    #[test]
    fn displays_as_written() {
        for s in [
            "datasets/o/n",
            "datasets/o/n/a/b",
            "datasets/o/n@v1/a",
            "datasets/o/n@refs/pr/3/a",
            "datasets/o/n@refs%2Fheads%2Fdev",
        ] {
            assert_eq!(HubPath::parse(s).unwrap().display(), format!("hf://{s}"));
        }
        assert_eq!(
            HubPath::parse("datasets/o/n@main/a").unwrap().display(),
            "hf://datasets/o/n/a"
        );
    }

    #[test]
    fn refuses_what_is_not_a_dataset_path() {
        for (s, why) in [
            ("apple/model", "not models"),
            ("spaces/o/n", "not models"),
            ("datasets/o", "no dataset name"),
            ("datasets//n", "organization"),
            ("datasets/o/n@", "empty revision"),
            ("datasets/o/n@/x", "empty revision"),
            ("datasets/o/n/../x", ".."),
            ("datasets/o/bad name", "dataset name"),
            ("datasets/o/..", "dataset name"),
        ] {
            let e = HubPath::parse(s).unwrap_err().to_string();
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn decodes_and_encodes_percent() {
        assert_eq!(percent_decode("a%2Fb%zz%2"), "a/b%zz%2");
        assert_eq!(percent_encode("refs/pr/1 x"), "refs%2Fpr%2F1%20x");
    }

    #[test]
    fn finds_the_token() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("huggingface")).unwrap();
        std::fs::write(dir.path().join("huggingface/token"), "hf_file\n").unwrap();
        let home = dir.path().to_str().unwrap().to_string();
        let env = |vars: Vec<(&'static str, String)>| {
            move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        };
        let t = token_from_env(&env(vec![("HF_TOKEN", " hf_env ".into())]));
        assert_eq!(t.as_deref(), Some("hf_env"));
        let t = token_from_env(&env(vec![("XDG_CACHE_HOME", home.clone())]));
        assert_eq!(t.as_deref(), Some("hf_file"));
        let t = token_from_env(&env(vec![("HF_HOME", format!("{home}/huggingface"))]));
        assert_eq!(t.as_deref(), Some("hf_file"));
        let t = token_from_env(&env(vec![("HF_HOME", format!("{home}/none"))]));
        assert_eq!(t, None);
    }
}
