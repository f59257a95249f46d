//! Deterministic generator of small Pico-Banana-400K "mini releases".
//!
//! A mini release has the raw release's exact file layout and JSONL schema (see
//! `/work/shared/domain/pico-banana-400k.md`), tiny synthetic images, and two local
//! ways to resolve the Flickr source URLs. Everything is a pure function of the
//! [`ReleaseSpec`]: the same spec always yields byte-identical files.
//!
//! Written under `root`:
//!
//! ```text
//! jsonl/sft.jsonl                 open_image_input_url, text, output_image, edit_type, summarized_text
//! jsonl/preference.jsonl          output_image, rejected_images, text, edit_type, open_image_input_url, summarized_text
//! jsonl/multi-turn.jsonl          files [{id, url}...], metadata_edit_turn_prompts
//! manifest/{sft,preference,multi_turn}_manifest.txt   absolute CDN URL of every edited image, one per line
//! images/positive-edit/<name>.png                     chosen edits (sft + preference)
//! images/rejected-edit/<name>.png                     rejected edits (preference)
//! images/multi-turn/<session>_attempt<X>_turn<K>.png  multi-turn edits
//! openimages/train-images-boxable-with-rotation.csv   Open Images metadata (OriginalURL == open_image_input_url)
//! openimages/train_0/<ImageID>.jpg                    source JPEGs keyed by ImageID
//! flickr/<host>/<path>                                the same JPEGs at their Flickr URL path
//! ```
//!
//! Local resolution: the CDN base [`CDN_BASE`] maps to `root/`; every Flickr host
//! `https://<host>/` maps to `root/flickr/<host>/` (see [`GeneratedRelease::url_maps`]).
//!
//! Only std plus `image`, `serde_json` and `sha2` are used. The test binaries use it as
//! `editshard_tools::release`; `gen_sample_release` and `gen_bench_release` run it.
//!
//! One module per concept: [`vocab`] (the release's constants and the words rows are made
//! of), the row model below, `generate` (writing a release), `images` (pixels and their
//! encodings) and `text` (JSON, CSV, hex, base64, MD5 and the seeded PRNG).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

mod generate;
mod images;
mod text;
pub mod vocab;

pub use generate::generate_release;
pub use text::{base64, csv_field, hex, js, md5, parse_csv};
pub use vocab::*;

/// What to generate. `ReleaseSpec::default()` is the committed sample's spec
/// (12 rows per subset, seed 1, 48 px, no faults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseSpec {
    /// Rows in `jsonl/sft.jsonl` (not counting the extra duplicate row added by `faults`).
    pub sft: usize,
    /// Rows in `jsonl/preference.jsonl`.
    pub preference: usize,
    /// Rows in `jsonl/multi-turn.jsonl`.
    pub multi_turn: usize,
    /// Everything is a deterministic function of the spec; the seed varies the content.
    pub seed: u64,
    /// Long side of every image in pixels (e.g. 48). Clamped to at least 8.
    pub image_px: u32,
    /// When true, also write into each JSONL file one malformed line and one blank
    /// line, and add to sft.jsonl one extra row whose `output_image` collides with
    /// an existing row's (different text). See [`Expect`].
    pub faults: bool,
}

impl Default for ReleaseSpec {
    fn default() -> Self {
        ReleaseSpec {
            sft: 12,
            preference: 12,
            multi_turn: 12,
            seed: 1,
            image_px: 48,
            faults: false,
        }
    }
}

/// The three subsets of the release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subset {
    Sft,
    Preference,
    MultiTurn,
}

impl Subset {
    pub const ALL: [Subset; 3] = [Subset::Sft, Subset::Preference, Subset::MultiTurn];

    /// The JSONL file, relative to the release root.
    pub fn jsonl_rel(self) -> &'static str {
        match self {
            Subset::Sft => "jsonl/sft.jsonl",
            Subset::Preference => "jsonl/preference.jsonl",
            Subset::MultiTurn => "jsonl/multi-turn.jsonl",
        }
    }

    /// The manifest file, relative to the release root (underscore, unlike the JSONL name).
    pub fn manifest_rel(self) -> &'static str {
        match self {
            Subset::Sft => "manifest/sft_manifest.txt",
            Subset::Preference => "manifest/preference_manifest.txt",
            Subset::MultiTurn => "manifest/multi_turn_manifest.txt",
        }
    }

    /// The subset's name as in the JSONL file name.
    pub fn name(self) -> &'static str {
        match self {
            Subset::Sft => "sft",
            Subset::Preference => "preference",
            Subset::MultiTurn => "multi-turn",
        }
    }

    /// The key order of an object of this subset.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            Subset::Sft => &SFT_KEYS,
            Subset::Preference => &PREFERENCE_KEYS,
            Subset::MultiTurn => &MULTI_TURN_KEYS,
        }
    }
}

/// What a converter is expected to do with a non-blank JSONL line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expect {
    /// A well-formed row whose images all exist: must convert.
    Convert,
    /// A line that must be reported, not converted (under the strict policy).
    Fail(FailReason),
}

/// Why a line is expected to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailReason {
    /// The line is not valid JSON.
    MalformedJson,
    /// Two rows of the same subset share this `output_image` (the release's known
    /// corrupted rows). Both rows of the pair carry this reason; a policy that keeps
    /// the first occurrence would convert the one with the lower line number.
    DuplicateOutputImage,
}

/// One well-formed row that was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedRow {
    pub subset: Subset,
    /// 1-based physical line number in the subset's JSONL file.
    pub line: usize,
    /// The exact line written (without the newline).
    pub json: String,
    /// Natural key: `output_image` (sft, preference) or the `final_image` url (multi-turn).
    pub key: String,
    /// Index into [`GeneratedRelease::sources`].
    pub source: usize,
    /// `open_image_input_url` / the `original_input_image` url.
    pub source_url: String,
    /// `text` (sft, preference).
    pub text: Option<String>,
    /// `summarized_text` (sft, preference).
    pub summarized_text: Option<String>,
    /// `edit_type` exactly as written (sft, preference).
    pub edit_type: Option<String>,
    /// Index into [`EDIT_TYPES`] of `edit_type`.
    pub edit_type_index: Option<usize>,
    /// `output_image` (sft, preference).
    pub output_image: Option<String>,
    /// `rejected_images` exactly as written, possibly prefixed (preference).
    pub rejected_images: Vec<String>,
    /// `metadata_edit_turn_prompts` (multi-turn).
    pub turn_prompts: Vec<String>,
    /// Turn image urls in turn order; the last one is the `final_image` (multi-turn).
    pub turn_images: Vec<String>,
    /// The `files[].id` values in the order written (multi-turn).
    pub file_ids: Vec<String>,
    /// Preference rows copied from an sft row (same source, text and chosen image): that row's line.
    pub from_sft_line: Option<usize>,
    /// True when non-ASCII characters were written as `\uXXXX` escapes (Python `ensure_ascii`).
    pub ascii_escaped: bool,
    pub expect: Expect,
}

impl GeneratedRow {
    /// Every edited image of the row as a path relative to the release root
    /// (rejected images with their prefix stripped), in row order.
    pub fn edited_images(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(o) = &self.output_image {
            out.push(o.clone());
        }
        for r in &self.rejected_images {
            out.push(normalize_release_path(r).unwrap_or_else(|| r.clone()));
        }
        out.extend(self.turn_images.iter().cloned());
        out
    }
}

/// A malformed or blank line deliberately written (faults on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultLine {
    pub subset: Subset,
    /// 1-based physical line number.
    pub line: usize,
    /// The exact line written (empty for a blank line).
    pub text: String,
}

/// One Open Images source (a CSV row; with files unless it is a decoy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedSource {
    /// 16 lower-case hex characters.
    pub image_id: String,
    /// `OriginalURL` == `open_image_input_url`.
    pub url: String,
    /// The URL's host, e.g. `farm8.staticflickr.com`.
    pub host: String,
    pub landing_url: String,
    pub author_profile_url: String,
    pub author: String,
    pub title: String,
    /// `Thumbnail300KURL` (may be empty).
    pub thumbnail_url: String,
    /// `Rotation` exactly as in the CSV: `0.0`, `90.0` or empty (unknown).
    pub rotation: String,
    pub width: u32,
    pub height: u32,
    /// `OriginalSize` (for sources with files: the JPEG's byte length).
    pub original_size: u64,
    /// `OriginalMD5`: base64 of the MD5 of the JPEG bytes.
    pub original_md5: String,
    /// Hex SHA-256 of the JPEG bytes (empty for decoys).
    pub sha256: String,
    /// `openimages/train_0/<ImageID>.jpg` (empty for decoys, which have no files).
    pub openimages_rel: String,
    /// `flickr/<host>/<path>` (empty for decoys).
    pub flickr_rel: String,
}

/// One image file written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedFile {
    pub width: u32,
    pub height: u32,
    pub len: u64,
    /// Hex SHA-256 of the file bytes.
    pub sha256: String,
}

/// Everything that was written, for asserting.
#[derive(Clone, Debug)]
pub struct GeneratedRelease {
    pub root: PathBuf,
    pub spec: ReleaseSpec,
    /// Every well-formed row of every subset, in subset then line order.
    pub rows: Vec<GeneratedRow>,
    /// Deliberately malformed lines (faults on); all expected to fail with `MalformedJson`.
    pub malformed: Vec<FaultLine>,
    /// Deliberately blank lines (faults on); to be skipped silently.
    pub blank_lines: Vec<FaultLine>,
    /// Sources referenced by rows (indexed by `GeneratedRow::source`); each has files.
    pub sources: Vec<GeneratedSource>,
    /// Extra CSV rows not referenced by any row and without files.
    pub csv_decoys: Vec<GeneratedSource>,
    /// Every image file written, keyed by path relative to the root.
    pub files: BTreeMap<String, GeneratedFile>,
}

impl GeneratedRelease {
    /// `root.join(rel)`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn jsonl(&self, subset: Subset) -> PathBuf {
        self.root.join(subset.jsonl_rel())
    }

    pub fn openimages_csv(&self) -> PathBuf {
        self.root.join(OPENIMAGES_CSV)
    }

    /// The directory holding `<ImageID>.jpg`.
    pub fn openimages_image_dir(&self) -> PathBuf {
        self.root.join(OPENIMAGES_IMAGE_DIR)
    }

    pub fn flickr_dir(&self) -> PathBuf {
        self.root.join(FLICKR_DIR)
    }

    /// Well-formed rows of one subset, in line order.
    pub fn rows_of(&self, subset: Subset) -> impl Iterator<Item = &GeneratedRow> {
        self.rows.iter().filter(move |r| r.subset == subset)
    }

    /// Rows of one subset that must convert.
    pub fn expected_to_convert(&self, subset: Subset) -> Vec<&GeneratedRow> {
        self.rows_of(subset)
            .filter(|r| r.expect == Expect::Convert)
            .collect()
    }

    /// `(subset, line, expectation)` for every non-blank line of every JSONL file, in order.
    pub fn expectations(&self) -> Vec<(Subset, usize, Expect)> {
        let mut out: Vec<(Subset, usize, Expect)> = self
            .rows
            .iter()
            .map(|r| (r.subset, r.line, r.expect))
            .chain(
                self.malformed
                    .iter()
                    .map(|f| (f.subset, f.line, Expect::Fail(FailReason::MalformedJson))),
            )
            .collect();
        out.sort_by_key(|&(s, l, _)| (s, l));
        out
    }

    /// URL-prefix rewrites that make every source URL resolve locally:
    /// `("https://<host>/", root/flickr/<host>/)`, one per distinct host, sorted.
    pub fn url_maps(&self) -> Vec<(String, PathBuf)> {
        let hosts: BTreeSet<&str> = self.sources.iter().map(|s| s.host.as_str()).collect();
        hosts
            .into_iter()
            .map(|h| (format!("https://{h}/"), self.root.join(FLICKR_DIR).join(h)))
            .collect()
    }

    /// [`Self::url_maps`] plus the CDN base mapped to the root, formatted as
    /// `PREFIX=DIR/` arguments (each DIR ends with a `/`).
    pub fn map_url_args(&self) -> Vec<String> {
        let mut out = vec![format!("{CDN_BASE}={}/", self.root.display())];
        for (prefix, dir) in self.url_maps() {
            out.push(format!("{prefix}={}/", dir.display()));
        }
        out
    }

    /// The local file for a source URL through the Flickr mirror.
    pub fn flickr_path_for(&self, url: &str) -> Option<PathBuf> {
        let rest = url.strip_prefix("https://")?;
        Some(self.root.join(FLICKR_DIR).join(rest))
    }

    /// The source with this `open_image_input_url`.
    pub fn source_by_url(&self, url: &str) -> Option<&GeneratedSource> {
        self.sources.iter().find(|s| s.url == url)
    }
}

/// Maps a release image reference (relative path, possibly with a
/// `nano-banana-300k/` or `pico-banana-300k/nb/` prefix, or an absolute CDN URL)
/// to a path relative to the release root. `None` for other absolute URLs.
pub fn normalize_release_path(reference: &str) -> Option<String> {
    if let Some(rest) = reference.strip_prefix(CDN_BASE) {
        return Some(rest.to_string());
    }
    if reference.contains("://") {
        return None;
    }
    for prefix in REJECTED_PREFIXES {
        if let Some(rest) = reference.strip_prefix(prefix) {
            return Some(rest.to_string());
        }
    }
    Some(reference.to_string())
}
