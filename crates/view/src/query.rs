//! The gallery's filters as they appear in the URL, so that a view can be shared as a link:
//! `/?kind=preference&edit_type=...&category=...&score=overall&min=0.6&max=0.9&id=flag&seed=7&start=48`.
//!
//! Unknown parameters are ignored and malformed numbers are reported on the page (never a
//! failed request).

use std::collections::HashMap;

use editshard::record::Kind;

use crate::html::url_encode;

/// Cards per gallery page unless `per_page` says otherwise.
pub const DEFAULT_PER_PAGE: usize = 24;
/// Largest page a request may ask for (each card costs reads).
pub const MAX_PER_PAGE: usize = 120;

/// What the gallery shows: filters, the order (`seed`: a seeded random sample) and the
/// position in that order to start from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    pub kind: Option<Kind>,
    pub edit_type: Option<String>,
    pub category: Option<String>,
    /// The score the thresholds apply to (a score of the chosen output of any turn).
    pub score: Option<String>,
    pub min: Option<f32>,
    pub max: Option<f32>,
    /// Substring of the record id.
    pub id: Option<String>,
    /// A seeded shuffle of the whole dataset instead of its stored order.
    pub seed: Option<u64>,
    /// Position in the order (not a record index when `seed` is set).
    pub start: u64,
    pub per_page: usize,
    /// Parameters that could not be read, shown on the page.
    pub problems: Vec<String>,
}

impl Selection {
    pub fn from_params(params: &HashMap<String, String>) -> Selection {
        let mut sel = Selection {
            per_page: DEFAULT_PER_PAGE,
            ..Selection::default()
        };
        let text = |name: &str| {
            params
                .get(name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        if let Some(k) = text("kind") {
            match Kind::from_name(&k) {
                Some(kind) => sel.kind = Some(kind),
                None => sel.problems.push(format!(
                    "kind {k:?} is not one of generic, sft, preference, multi-turn"
                )),
            }
        }
        sel.edit_type = text("edit_type");
        sel.category = text("category");
        sel.score = text("score");
        sel.id = text("id");
        sel.min = number(&mut sel.problems, "min", text("min"));
        sel.max = number(&mut sel.problems, "max", text("max"));
        if (sel.min.is_some() || sel.max.is_some()) && sel.score.is_none() {
            sel.score = Some("overall".to_string());
        }
        sel.seed = number(&mut sel.problems, "seed", text("seed"));
        sel.start = number(&mut sel.problems, "start", text("start")).unwrap_or(0);
        if let Some(n) = number::<usize>(&mut sel.problems, "per_page", text("per_page")) {
            sel.per_page = n.clamp(1, MAX_PER_PAGE);
        }
        sel
    }

    /// True when deciding needs each record's metadata (not just the shard index).
    pub fn needs_metadata(&self) -> bool {
        self.edit_type.is_some()
            || self.category.is_some()
            || self.min.is_some()
            || self.max.is_some()
    }

    /// The query string for this selection starting at `start` (`?` included).
    pub fn href(&self, start: u64) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut push = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                parts.push(format!("{name}={}", url_encode(&v)));
            }
        };
        push("kind", self.kind.map(|k| k.name().to_string()));
        push("edit_type", self.edit_type.clone());
        push("category", self.category.clone());
        if self.min.is_some() || self.max.is_some() {
            push("score", self.score.clone());
        }
        push("min", self.min.map(|v| v.to_string()));
        push("max", self.max.map(|v| v.to_string()));
        push("id", self.id.clone());
        push("seed", self.seed.map(|v| v.to_string()));
        if self.per_page != DEFAULT_PER_PAGE {
            push("per_page", Some(self.per_page.to_string()));
        }
        if start > 0 {
            push("start", Some(start.to_string()));
        }
        format!("/?{}", parts.join("&"))
    }
}

fn number<T: std::str::FromStr>(
    problems: &mut Vec<String>,
    name: &str,
    value: Option<String>,
) -> Option<T> {
    let v = value?;
    match v.parse() {
        Ok(n) => Some(n),
        Err(_) => {
            problems.push(format!("{name}={v:?} is not a number; ignored"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn round_trips_through_the_url() {
        let sel = Selection::from_params(&params(&[
            ("kind", "preference"),
            ("edit_type", "Remove an object & more"),
            ("min", "0.5"),
            ("id", "flag"),
            ("seed", "7"),
        ]));
        assert_eq!(sel.kind, Some(Kind::Preference));
        assert_eq!(sel.score.as_deref(), Some("overall"));
        let href = sel.href(48);
        assert!(
            href.contains("edit_type=Remove%20an%20object%20%26%20more"),
            "{href}"
        );
        let back: HashMap<String, String> = href[2..]
            .split('&')
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k.to_string(), decode(v))
            })
            .collect();
        let again = Selection::from_params(&back);
        assert_eq!(again.start, 48);
        assert_eq!(Selection { start: 0, ..again }, sel);
    }

    #[test]
    fn bad_values_are_reported_not_fatal() {
        let sel = Selection::from_params(&params(&[
            ("kind", "cats"),
            ("min", "high"),
            ("per_page", "100000"),
        ]));
        assert_eq!(sel.kind, None);
        assert_eq!(sel.min, None);
        assert_eq!(sel.per_page, MAX_PER_PAGE);
        assert_eq!(sel.problems.len(), 2, "{:?}", sel.problems);
    }

    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }
}
