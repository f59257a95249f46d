//! Mapping files: which Parquet columns hold which record fields. Every preset is a built-in
//! mapping file (`presets/*.toml`), so presets and user mappings share one code path.
//!
//! ```toml
//! name = "mydata"                    # short name: failures' `subset`, default id prefix
//! dataset = "me/my-edits"            # provenance.dataset
//! licence = "cc-by-4.0"              # provenance.licence and the manifest's licence
//! revision = "0123abc"               # provenance.revision (also `--revision`)
//! files = ["data/*.parquet"]         # which files under SOURCE (`*` within one path segment)
//! id = "sample_id"                   # id column; without it ids are `<file>#<row>`
//! source = "src"                     # the source image (Hub Image struct or binary)
//! output = "dst"                     # the edited image
//! mask = "mask"                      # the turn's mask
//! instruction = "prompt"
//! instruction_variants = "prompts"   # list<string>; its first entry is the instruction if
//!                                    # `instruction` is not given
//! source_caption = "src_caption"
//! output_caption = "dst_caption"
//! edit_type = "task"
//! scores = ["clip", "ssim"]          # numbers, as the output image's scores
//! optional = ["mask"]                # columns that may be missing (or all-null `null` type)
//! [session]                          # several rows make one multi-turn record
//! key = "session_id"                 # rows sharing it (in any order; at most 64) ...
//! turn = "turn"                      # ... ordered by it; turn k's source = turn k-1's output
//! ```
//!
//! Every column no field names goes to the record's `extras` under its own name.

use serde::{Deserialize, Serialize};

use editshard::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub name: String,
    pub dataset: Option<String>,
    pub licence: Option<String>,
    pub revision: Option<String>,
    #[serde(default)]
    pub files: Vec<String>,
    pub id: Option<String>,
    pub source: String,
    pub output: String,
    pub mask: Option<String>,
    pub instruction: Option<String>,
    pub instruction_variants: Option<String>,
    pub source_caption: Option<String>,
    pub output_caption: Option<String>,
    pub edit_type: Option<String>,
    #[serde(default)]
    pub scores: Vec<String>,
    #[serde(default)]
    pub optional: Vec<String>,
    pub session: Option<Session>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    pub key: String,
    pub turn: String,
}

/// The built-in presets: name and mapping text.
pub const PRESETS: [(&str, &str); 6] = [
    ("magicbrush", include_str!("../presets/magicbrush.toml")),
    (
        "instructpix2pix",
        include_str!("../presets/instructpix2pix.toml"),
    ),
    ("ultraedit", include_str!("../presets/ultraedit.toml")),
    ("hq-edit", include_str!("../presets/hq-edit.toml")),
    ("omniedit", include_str!("../presets/omniedit.toml")),
    ("anyedit", include_str!("../presets/anyedit.toml")),
];

/// Names accepted for the presets besides their own.
const ALIASES: [(&str, &str); 5] = [
    ("ip2p", "instructpix2pix"),
    ("ultraedit-region", "ultraedit"),
    ("ultraedit-freeform", "ultraedit"),
    ("hqedit", "hq-edit"),
    ("omniedit-filtered", "omniedit"),
];

impl Mapping {
    /// A built-in preset by name (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Mapping> {
        let lower = name.to_ascii_lowercase();
        let name = ALIASES
            .iter()
            .find(|(a, _)| *a == lower)
            .map_or(lower.as_str(), |(_, p)| p);
        let Some((_, text)) = PRESETS.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
            return Err(Error::invalid(format!(
                "unknown preset {name:?}: the presets are {}; for another dataset write a \
                 mapping file (--mapping FILE.toml)",
                names.join(", ")
            )));
        };
        Mapping::parse(text, &format!("preset {name}"))
    }

    /// Parses a mapping file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Mapping> {
        let m: Mapping =
            toml::from_str(text).map_err(|e| Error::invalid(format!("mapping {origin}: {e}")))?;
        m.check()
            .map_err(|e| Error::invalid(format!("mapping {origin}: {e}")))?;
        Ok(m)
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.name.is_empty() || self.name.contains(['/', '#']) {
            return Err("`name` must be non-empty, without '/' or '#'".into());
        }
        let mut seen = std::collections::HashSet::new();
        for c in self.columns() {
            if c.is_empty() {
                return Err("a column name is empty".into());
            }
            if !seen.insert(c) {
                return Err(format!("column {c:?} is mapped twice"));
            }
        }
        for o in &self.optional {
            if [&self.source, &self.output].contains(&o) {
                return Err(format!(
                    "column {o:?} holds an image every row needs: it cannot be optional"
                ));
            }
        }
        Ok(())
    }

    /// Every column a field names, each once.
    pub fn columns(&self) -> Vec<&str> {
        let mut out = vec![self.source.as_str(), self.output.as_str()];
        let opts = [
            &self.id,
            &self.mask,
            &self.instruction,
            &self.instruction_variants,
            &self.source_caption,
            &self.output_caption,
            &self.edit_type,
        ];
        out.extend(opts.into_iter().flatten().map(String::as_str));
        out.extend(self.scores.iter().map(String::as_str));
        if let Some(s) = &self.session {
            // The session key may also be the id column (it names the record).
            if self.id.as_deref() != Some(s.key.as_str()) {
                out.push(&s.key);
            }
            out.push(&s.turn);
        }
        out
    }

    pub fn is_optional(&self, column: &str) -> bool {
        self.optional.iter().any(|c| c == column)
    }

    /// Whether `rel` (a path under SOURCE, `/`-separated) is one of the dataset's files.
    pub fn wants_file(&self, rel: &str) -> bool {
        if !rel.ends_with(".parquet") {
            return false;
        }
        self.files.is_empty() || self.files.iter().any(|g| glob_match(g, rel))
    }
}

/// `*` matches any run of characters within one path segment, `?` one character.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), path.chars().collect());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == s[si] || (p[pi] == '?' && s[si] != '/')) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star
            && s[ss] != '/'
        {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Orders file names as people number them: `HQ-Edit_2` before `HQ-Edit_10`.
pub fn natural_key(name: &str) -> Vec<(u8, String, u128)> {
    let mut out = Vec::new();
    let mut chars = name.chars().peekable();
    while let Some(&c) = chars.peek() {
        let digit = c.is_ascii_digit();
        let mut run = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_digit() != digit {
                break;
            }
            run.push(c);
            chars.next();
        }
        if digit {
            let n = run.parse::<u128>().unwrap_or(u128::MAX);
            out.push((0, String::new(), n));
            // Ties (`01` and `1`) fall back to the text.
            out.push((0, run, 0));
        } else {
            out.push((1, run, 0));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses() {
        for (name, _) in PRESETS {
            assert_eq!(Mapping::preset(name).unwrap().name, name);
        }
        assert!(
            Mapping::preset("nope")
                .unwrap_err()
                .to_string()
                .contains("magicbrush")
        );
    }

    #[test]
    fn globs_stay_within_a_segment() {
        assert!(glob_match(
            "data/*.parquet",
            "data/train-00000-of-00002.parquet"
        ));
        assert!(!glob_match("data/*.parquet", "data/x/y.parquet"));
        assert!(!glob_match("*.parquet", "data/y.parquet"));
    }

    #[test]
    fn natural_order_numbers_runs() {
        let mut v = vec![
            "HQ-Edit_10.parquet",
            "HQ-Edit_2.parquet",
            "HQ-Edit_1.parquet",
        ];
        v.sort_by_key(|n| natural_key(n));
        assert_eq!(
            v,
            [
                "HQ-Edit_1.parquet",
                "HQ-Edit_2.parquet",
                "HQ-Edit_10.parquet"
            ]
        );
    }

    #[test]
    fn unknown_keys_and_double_mappings_are_refused() {
        let e = Mapping::parse("name='x'\nsource='a'\noutput='b'\nsorce='c'", "t").unwrap_err();
        assert!(e.to_string().contains("sorce"), "{e}");
        let e = Mapping::parse("name='x'\nsource='a'\noutput='a'", "t").unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
    }
}
