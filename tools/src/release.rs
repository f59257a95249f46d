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

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};
use sha2::{Digest, Sha256};

/// Base URL that every relative path in the release is resolved against.
pub const CDN_BASE: &str = "https://ml-site.cdn-apple.com/datasets/pico-banana-300k/nb/";
/// Open Images metadata CSV, relative to the release root.
pub const OPENIMAGES_CSV: &str = "openimages/train-images-boxable-with-rotation.csv";
/// Directory holding `<ImageID>.jpg`, relative to the release root (an extracted `train_0.tar.gz`).
pub const OPENIMAGES_IMAGE_DIR: &str = "openimages/train_0";
/// Flickr mirror directory, relative to the release root: `flickr/<host>/<url path>`.
pub const FLICKR_DIR: &str = "flickr";
/// Exact header of `train-images-boxable-with-rotation.csv`.
pub const OPENIMAGES_HEADER: [&str; 12] = [
    "ImageID",
    "Subset",
    "OriginalURL",
    "OriginalLandingURL",
    "License",
    "AuthorProfileURL",
    "Author",
    "Title",
    "OriginalSize",
    "OriginalMD5",
    "Thumbnail300KURL",
    "Rotation",
];
/// Licence URL used in the `License` column (Open Images sources are CC BY 2.0).
pub const CC_BY_2: &str = "https://creativecommons.org/licenses/by/2.0/";

/// Key order of an sft.jsonl object.
pub const SFT_KEYS: [&str; 5] = [
    "open_image_input_url",
    "text",
    "output_image",
    "edit_type",
    "summarized_text",
];
/// Key order of a preference.jsonl object.
pub const PREFERENCE_KEYS: [&str; 6] = [
    "output_image",
    "rejected_images",
    "text",
    "edit_type",
    "open_image_input_url",
    "summarized_text",
];
/// Key order of a multi-turn.jsonl object.
pub const MULTI_TURN_KEYS: [&str; 2] = ["files", "metadata_edit_turn_prompts"];
/// Key order of each element of a multi-turn `files` list.
pub const FILE_ENTRY_KEYS: [&str; 2] = ["id", "url"];
/// Prefixes seen (or suspected) on `rejected_images` elements.
pub const REJECTED_PREFIXES: [&str; 2] = ["nano-banana-300k/", "pico-banana-300k/nb/"];
/// The editor's fixed output sizes (scaled down to `image_px` on the long side).
pub const EDITOR_SIZES: [(u32, u32); 5] = [
    (1024, 1024),
    (1248, 832),
    (832, 1248),
    (1184, 864),
    (1152, 896),
];

/// The 35 edit types with a long and a short instruction template each.
/// Slots: `{obj}` ("the red flag"), `{a_obj}` ("a red flag"), `{Obj}` ("Flag"),
/// `{obj2}`/`{a_obj2}`/`{Obj2}` (a second, different object), `{color}`.
const EDIT_TEMPLATES: [(&str, &str, &str); 35] = [
    (
        "Change overall color tone (warm ↔ cool)",
        "Shift the overall color tone of the photo toward cooler blue hues, keeping whites neutral and the lighting direction unchanged.",
        "Cooler blue overall tone.",
    ),
    (
        "Add film grain or vintage filter",
        "Apply a subtle vintage film look with fine grain, slightly faded blacks and a warm cast across the whole image.",
        "Vintage film grain filter.",
    ),
    (
        "Add a new object to the scene",
        "Add {a_obj} on the ground near the center of the image, matching the scene's lighting, shadows and perspective.",
        "Add {obj_short} near center.",
    ),
    (
        "Remove an existing object",
        "Remove {obj} from the image, seamlessly filling the area with the surrounding background texture.",
        "{Obj} removed; fill background seamlessly.",
    ),
    (
        "Replace one object category with another",
        "Replace {obj} with {a_obj2} of similar size, keeping the position, lighting and shadows consistent.",
        "Swap {obj_short} for {obj2_short}.",
    ),
    (
        "Change an object's attribute (e.g., color/material)",
        "Change the color of {obj} to {color}, preserving its texture, reflections and shading.",
        "{Obj} recolored {color}.",
    ),
    (
        "Relocate an object (change its position/spatial relation)",
        "Move {obj} to the left side of the frame, filling the vacated area naturally and keeping its scale.",
        "Move {obj_short} to the left.",
    ),
    (
        "Change the size/shape/orientation of an object",
        "Make {obj} about twice as large while keeping its proportions, position and contact shadow plausible.",
        "Enlarge {obj_short} about 2x.",
    ),
    (
        "Add new scene context/background",
        "Replace the background behind the main subject with a misty mountain landscape, matching the light direction.",
        "New misty mountain background.",
    ),
    (
        "Apply seasonal transformation (summer ↔ winter)",
        "Transform the scene into winter: cover the ground and rooftops with fresh snow and make the trees bare.",
        "Summer to winter, fresh snow.",
    ),
    (
        "Change weather conditions (sunny/rainy/snowy)",
        "Make it a rainy day: darken the sky with heavy clouds, add falling rain and wet, reflective surfaces.",
        "Rainy weather, wet surfaces.",
    ),
    (
        "Adjust global lighting (golden hour/fluorescent)",
        "Relight the whole scene as if at golden hour, with low warm sunlight from the left and long soft shadows.",
        "Golden hour lighting.",
    ),
    (
        "Strong artistic style transfer (e.g., Van Gogh/anime/etc.)",
        "Repaint the image in the style of Van Gogh's \"The Starry Night\", with thick swirling brush strokes.",
        "Van Gogh style repaint.",
    ),
    (
        "Photo to cartoon/sketch/comic",
        "Convert the photo into a black-and-white pencil sketch with clean outlines and light cross-hatching.",
        "Pencil sketch version.",
    ),
    (
        "Modern ↔ historical style/look",
        "Make the scene look like a photograph from the 1920s: sepia tones, soft focus and period-appropriate details.",
        "1920s sepia look.",
    ),
    (
        "Replace text in signs/posters/billboards",
        "Replace the text on the storefront sign with \"OPEN LATE\", matching the original font, color and perspective.",
        "Sign now reads \"OPEN LATE\".",
    ),
    (
        "Add new (handwritten/printed/etc) text",
        "Add the handwritten words \"See you soon\" in white chalk on the dark wall at the upper left.",
        "Add chalk text \"See you soon\".",
    ),
    (
        "Change font style or color of visible text if there is text",
        "Change the lettering on the banner to a bold {color} serif font without altering the words.",
        "Banner text bold {color} serif.",
    ),
    (
        "Translate written text into other languages",
        "Translate the shop sign into French so that it reads \"Boulangerie – café\", keeping the layout and typeface.",
        "Sign translated to French.",
    ),
    (
        "Add/Remove/Replace accessories (glasses, hats, jewelry, masks)",
        "Give the person in the foreground a pair of round tortoiseshell glasses that fit naturally on the face.",
        "Add round glasses.",
    ),
    (
        "Clothing edit (change color/outfit)",
        "Change the person's jacket to a {color} wool coat, keeping folds, shadows and pose identical.",
        "Jacket now a {color} coat.",
    ),
    (
        "Pose tweak (minor plausible change)",
        "Tilt the person's head slightly to the right and relax the shoulders, keeping identity and background unchanged.",
        "Slight head tilt.",
    ),
    (
        "Modify expressions (smile, frown, neutral)",
        "Change the person's expression to a gentle, closed-mouth smile while preserving their identity.",
        "Gentle smile.",
    ),
    (
        "Change age / gender",
        "Make the person look about twenty years older, with grey hair and subtle wrinkles, keeping the same identity.",
        "Aged about twenty years.",
    ),
    (
        "Convert person to 2D anime/manga style (identity-preserving)",
        "Redraw the person as a 2D anime character with clean line art and cel shading, keeping hairstyle and outfit.",
        "Anime-style person.",
    ),
    (
        "Convert person to Pixar/Disney-like 3D cartoon look",
        "Turn the person into a Pixar-like 3D cartoon character with soft lighting and slightly enlarged eyes.",
        "3D cartoon person.",
    ),
    (
        "Convert person to Western comic cel-shaded style",
        "Render the person in a Western comic book style with bold ink outlines, flat colors and halftone shading.",
        "Comic cel-shaded person.",
    ),
    (
        "Line-art ink sketch of the person",
        "Convert the person into a black ink line-art sketch on a plain white background.",
        "Ink line-art of person.",
    ),
    (
        "Sticker-ify the person with bold outline and white border",
        "Turn the person into a die-cut sticker with a bold dark outline and a thick white border.",
        "Person as a sticker.",
    ),
    (
        "Caricature with mild feature exaggeration (keep identity)",
        "Create a friendly caricature of the person, slightly enlarging the head and smile while keeping them recognizable.",
        "Mild caricature.",
    ),
    (
        "Funko-Pop–style toy figure of the person",
        "Transform the person into a Funko-Pop–style vinyl figure with an oversized head and a glossy finish.",
        "Funko-Pop figure.",
    ),
    (
        "LEGO-minifigure rendition of the person",
        "Rebuild the person as a LEGO minifigure with the same outfit colors, standing in the original scene.",
        "LEGO minifigure version.",
    ),
    (
        "Simpsonize the person (yellow-skin cartoon style)",
        "Redraw the person in the Simpsons cartoon style with yellow skin, an overbite and bulging eyes.",
        "Simpsons-style person.",
    ),
    (
        "Zoom in",
        "Zoom in on {obj}, cropping tightly around it while keeping the result sharp and detailed.",
        "Zoom in on {obj_short}.",
    ),
    (
        "Outpainting (extend canvas beyond boundaries)",
        "Extend the canvas on both sides, continuing the scene around {obj} naturally beyond the original borders.",
        "Canvas extended sideways.",
    ),
];

/// The 35 edit type strings, in the domain document's order.
pub const EDIT_TYPES: [&str; 35] = {
    let mut out = [""; 35];
    let mut i = 0;
    while i < 35 {
        out[i] = EDIT_TEMPLATES[i].0;
        i += 1;
    }
    out
};

/// Multi-turn prompts (same slots as the edit templates).
const TURN_PROMPTS: [&str; 16] = [
    "Shift the color tone to a warmer, golden hue",
    "Zoom in on {obj}",
    "Transform the scene into a comic book style",
    "Remove {obj}",
    "Add {a_obj} in the foreground",
    "Make it snow",
    "Change the color of {obj} to {color}",
    "Turn the sky into a dramatic sunset",
    "Apply a vintage film filter",
    "Make the scene look like a watercolor painting",
    "Add a faint rainbow in the sky",
    "Replace the background with a sandy beach",
    "Brighten the overall lighting",
    "Convert the image to black and white",
    "Add the word \"Bonjour\" on the wall",
    "Make {obj} look like it is made of glass",
];

/// (long form, short form) of the objects used in instructions.
const OBJECTS: [(&str, &str); 12] = [
    ("red flag", "flag"),
    ("wooden bench", "bench"),
    ("silver race car", "race car"),
    ("street lamp", "lamp"),
    ("potted plant", "plant"),
    ("blue umbrella", "umbrella"),
    ("parked bicycle", "bicycle"),
    ("ceramic mug", "mug"),
    ("stop sign", "sign"),
    ("small rowing boat", "boat"),
    ("yellow taxi", "taxi"),
    ("brown dog", "dog"),
];

const COLORS: [&str; 6] = [
    "teal",
    "crimson",
    "mustard yellow",
    "matte black",
    "pastel pink",
    "emerald green",
];

const AUTHORS: [&str; 9] = [
    "Smith, John",
    "Michael Beat",
    "Dave \"Doc\" Brown",
    "Karen",
    "Marie-Hélène Dubois",
    "O'Brien, Seán",
    "the \"lens\" club, Berlin",
    "jdoe",
    "Ng, Wei \"Will\"",
];

const FLICKR_USERS: [&str; 8] = [
    "michael-beat",
    "drstarbuck",
    "49503157467@N01",
    "jsmith_photos",
    "lensclub",
    "12345678@N02",
    "mhdubois",
    "wanderlust-ng",
];

const TITLES: [&str; 10] = [
    "Beach, \"golden\" hour",
    "...die FNF-Kerze",
    "Three boys on a hill",
    "IMG_4021",
    "Café, Paris ☕",
    "\"Untitled\"",
    "Snow, ice, and more snow",
    "DSC00123.JPG",
    "",
    "🚲 morning commute, day 3",
];

/// Source aspect ratios (w, h) before scaling to `image_px`.
const SOURCE_RATIOS: [(u32, u32); 6] = [(4, 3), (3, 4), (3, 2), (2, 3), (1, 1), (16, 9)];

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------

/// Writes a mini release under `root` (created if missing). Existing files at the
/// same paths are overwritten; nothing else under `root` is touched, so use an
/// empty directory for exact comparisons.
pub fn generate_release(root: &Path, spec: &ReleaseSpec) -> io::Result<GeneratedRelease> {
    let px = spec.image_px.max(8);
    let mut g = Gen {
        seed: spec.seed,
        px,
        src_rng: Rng::stream(spec.seed, "sources"),
        sources: Vec::new(),
        ids: BTreeSet::new(),
        images: BTreeMap::new(),
        positive_names: Namer::new(Rng::stream(spec.seed, "positive-names"), 2),
        rejected_names: Namer::new(Rng::stream(spec.seed, "rejected-names"), 1),
    };

    let mut sft = g.sft_rows(spec.sft);
    let (mut pref, derived) = g.preference_rows(spec.preference, &sft);
    let mut mt = g.multi_turn_rows(spec.multi_turn, !sft.is_empty(), &sft);

    let mut layouts = [
        rows_layout(sft.len()),
        rows_layout(pref.len()),
        rows_layout(mt.len()),
    ];
    if spec.faults {
        let mut rng = Rng::stream(spec.seed, "faults");
        if !sft.is_empty() {
            let candidates: Vec<usize> = (0..sft.len()).filter(|i| !derived.contains(i)).collect();
            let target = if candidates.is_empty() {
                rng.below(sft.len())
            } else {
                candidates[rng.below(candidates.len())]
            };
            let dup = g.duplicate_row(&mut rng, &sft[target]);
            sft[target].expect = Expect::Fail(FailReason::DuplicateOutputImage);
            sft.push(dup);
            layouts[0] = rows_layout(sft.len());
        }
        for (i, layout) in layouts.iter_mut().enumerate() {
            insert_faults(layout, Subset::ALL[i]);
        }
    }

    // Assign line numbers and the JSON text of every row.
    let mut rows = Vec::new();
    let mut malformed = Vec::new();
    let mut blank_lines = Vec::new();
    let mut jsonl_text: [String; 3] = Default::default();
    for (si, subset) in Subset::ALL.into_iter().enumerate() {
        let list: &mut Vec<GeneratedRow> = match subset {
            Subset::Sft => &mut sft,
            Subset::Preference => &mut pref,
            Subset::MultiTurn => &mut mt,
        };
        for (ln, item) in layouts[si].iter().enumerate() {
            let line = ln + 1;
            let text = match item {
                LineItem::Row(i) => {
                    list[*i].line = line;
                    list[*i].json.clone()
                }
                LineItem::Blank => {
                    blank_lines.push(FaultLine {
                        subset,
                        line,
                        text: String::new(),
                    });
                    String::new()
                }
                LineItem::Malformed(t) => {
                    malformed.push(FaultLine {
                        subset,
                        line,
                        text: t.clone(),
                    });
                    t.clone()
                }
            };
            jsonl_text[si].push_str(&text);
            jsonl_text[si].push('\n');
        }
    }
    // Preference rows point at the line of the sft row they copy.
    for p in pref.iter_mut() {
        if let Some(idx) = p.from_sft_line {
            p.from_sft_line = Some(sft[idx].line);
        }
    }
    for list in [sft, pref, mt] {
        let mut list = list;
        list.sort_by_key(|r| r.line);
        rows.extend(list);
    }

    // Write everything.
    fs::create_dir_all(root.join("jsonl"))?;
    fs::create_dir_all(root.join("manifest"))?;
    for (si, subset) in Subset::ALL.into_iter().enumerate() {
        fs::write(root.join(subset.jsonl_rel()), &jsonl_text[si])?;
        let mut seen = BTreeSet::new();
        let mut manifest = String::new();
        for r in rows.iter().filter(|r| r.subset == subset) {
            for img in r.edited_images() {
                if seen.insert(img.clone()) {
                    manifest.push_str(CDN_BASE);
                    manifest.push_str(&img);
                    manifest.push('\n');
                }
            }
        }
        fs::write(root.join(subset.manifest_rel()), manifest)?;
    }

    // Images are encoded and written on every core (large releases have hundreds of
    // thousands); each is a pure function of its path, so the bytes do not depend on it.
    let mut files = BTreeMap::new();
    let edits: Vec<(&String, &(u32, u32))> = g.images.iter().collect();
    let infos = par_map(&edits, |&(rel, &(w, h))| {
        let key = mix(g.seed ^ fnv1a(rel.as_bytes()));
        let bytes = encode_png(&draw(w, h, key), w, h)?;
        write_file(root, rel, &bytes)?;
        Ok(file_info(w, h, &bytes))
    })?;
    for ((rel, _), info) in edits.into_iter().zip(infos) {
        files.insert(rel.clone(), info);
    }
    let encoded = par_map(&g.sources, |s| {
        let key = mix(g.seed.rotate_left(7) ^ fnv1a(s.image_id.as_bytes()));
        let bytes = encode_jpeg(&draw(s.width, s.height, key), s.width, s.height)?;
        for rel in [&s.openimages_rel, &s.flickr_rel] {
            write_file(root, rel, &bytes)?;
        }
        Ok((base64(&md5(&bytes)), file_info(s.width, s.height, &bytes)))
    })?;
    for (s, (md5_b64, info)) in g.sources.iter_mut().zip(encoded) {
        s.original_size = info.len;
        s.original_md5 = md5_b64;
        s.sha256 = info.sha256.clone();
        for rel in [&s.openimages_rel, &s.flickr_rel] {
            files.insert(rel.clone(), info.clone());
        }
    }

    let decoys = g.decoys();
    let mut csv_rows: Vec<&GeneratedSource> = g.sources.iter().chain(decoys.iter()).collect();
    Rng::stream(spec.seed, "csv-order").shuffle(&mut csv_rows);
    let mut csv = OPENIMAGES_HEADER.join(",");
    csv.push('\n');
    for s in csv_rows {
        let size = s.original_size.to_string();
        let fields: [&str; 12] = [
            &s.image_id,
            "train",
            &s.url,
            &s.landing_url,
            CC_BY_2,
            &s.author_profile_url,
            &s.author,
            &s.title,
            &size,
            &s.original_md5,
            &s.thumbnail_url,
            &s.rotation,
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        csv.push_str(&line.join(","));
        csv.push('\n');
    }
    write_file(root, OPENIMAGES_CSV, csv.as_bytes())?;

    Ok(GeneratedRelease {
        root: root.to_path_buf(),
        spec: spec.clone(),
        rows,
        malformed,
        blank_lines,
        sources: g.sources,
        csv_decoys: decoys,
        files,
    })
}

#[derive(Clone, Debug)]
enum LineItem {
    Row(usize),
    Blank,
    Malformed(String),
}

fn rows_layout(n: usize) -> Vec<LineItem> {
    (0..n).map(LineItem::Row).collect()
}

/// One blank line after the first third of the rows and one malformed line after
/// two thirds (both in the middle of the file, so a reader must carry on after them).
fn insert_faults(layout: &mut Vec<LineItem>, subset: Subset) {
    let n = layout.len();
    let bad = match subset {
        // Truncated object (a torn write).
        Subset::Sft => {
            "{\"open_image_input_url\": \"https://farm2.staticflickr.com/1234/5678901234_0a1b2c3d4e_o.jpg\", \"text\": \"Make the sky".to_string()
        }
        // Trailing comma in the list.
        Subset::Preference => {
            "{\"output_image\": \"images/positive-edit/999999.png\", \"rejected_images\": [\"images/rejected-edit/999999.png\",], \"text\": \"Add a hat\", \"edit_type\": \"Zoom in\", \"open_image_input_url\": \"https://farm2.staticflickr.com/1234/5678901234_0a1b2c3d4e_o.jpg\", \"summarized_text\": \"Hat.\"}".to_string()
        }
        // Missing closing brace.
        Subset::MultiTurn => {
            "{\"files\": [{\"id\": \"final_image\", \"url\": \"images/multi-turn/999999_attemptA_turn2.png\"}], \"metadata_edit_turn_prompts\": [\"Zoom in\", \"Make it snow\"]".to_string()
        }
    };
    layout.insert((2 * n).div_ceil(3), LineItem::Malformed(bad));
    layout.insert(n / 3, LineItem::Blank);
}

struct Gen {
    seed: u64,
    px: u32,
    src_rng: Rng,
    sources: Vec<GeneratedSource>,
    ids: BTreeSet<String>,
    /// Edited images to write: relative path -> (width, height).
    images: BTreeMap<String, (u32, u32)>,
    positive_names: Namer,
    rejected_names: Namer,
}

impl Gen {
    fn scaled(&self, (w, h): (u32, u32)) -> (u32, u32) {
        let l = self.px;
        if w >= h {
            (l, ((l * h + w / 2) / w).max(1))
        } else {
            (((l * w + h / 2) / h).max(1), l)
        }
    }

    fn editor_size(&self, rng: &mut Rng) -> (u32, u32) {
        self.scaled(EDITOR_SIZES[rng.below(EDITOR_SIZES.len())])
    }

    fn add_image(&mut self, rel: &str, size: (u32, u32)) {
        self.images.entry(rel.to_string()).or_insert(size);
    }

    /// A new referenced source with files; returns its index.
    fn new_source(&mut self) -> usize {
        let idx = self.sources.len();
        let image_id = self.fresh_id('0');
        let s = self.source_fields(image_id, Some(idx));
        self.sources.push(s);
        idx
    }

    fn fresh_id(&mut self, first: char) -> String {
        loop {
            let mut id = String::from(first);
            id.push_str(&hex_digits(&mut self.src_rng, 15));
            if self.ids.insert(id.clone()) {
                return id;
            }
        }
    }

    /// CSV fields of a source; `forced` (the source index) pins a few values so that
    /// even tiny releases contain every interesting case.
    fn source_fields(&mut self, image_id: String, forced: Option<usize>) -> GeneratedSource {
        let rng = &mut self.src_rng;
        let farm = 1 + rng.below(9);
        let server = 1000 + rng.below(8999);
        let photo = 1_000_000_000 + rng.next_u64() % 14_000_000_000;
        let secret = hex_digits(rng, 10);
        let c1 = match forced {
            Some(1) => true,
            Some(0) => false,
            _ => rng.chance(20),
        };
        let (host, path) = if c1 {
            (
                "c1.staticflickr.com".to_string(),
                format!("{farm}/{server}/{photo}_{secret}_o.jpg"),
            )
        } else {
            (
                format!("farm{farm}.staticflickr.com"),
                format!("{server}/{photo}_{secret}_o.jpg"),
            )
        };
        let user = FLICKR_USERS[rng.below(FLICKR_USERS.len())];
        let author = match forced {
            Some(i) if i < 3 => AUTHORS[i],
            _ => AUTHORS[rng.below(AUTHORS.len())],
        };
        let title = match forced {
            Some(i) if i < 3 => TITLES[i],
            _ => TITLES[rng.below(TITLES.len())],
        };
        let rotation = match forced {
            Some(0) => "0.0",
            Some(1) => "90.0",
            Some(2) => "",
            _ => match rng.below(10) {
                0 => "90.0",
                1 => "",
                _ => "0.0",
            },
        };
        let thumbnail_url = if rng.chance(15) {
            String::new()
        } else {
            let secret2 = hex_digits(rng, 10);
            let cdn = 1 + rng.below(8);
            let zz = if rng.chance(30) { "?zz=1" } else { "" };
            format!("https://c{cdn}.staticflickr.com/{farm}/{server}/{photo}_{secret2}_z.jpg{zz}")
        };
        let ratio = SOURCE_RATIOS[rng.below(SOURCE_RATIOS.len())];
        let (width, height) = self.scaled(ratio);
        let with_files = forced.is_some();
        GeneratedSource {
            openimages_rel: if with_files {
                format!("{OPENIMAGES_IMAGE_DIR}/{image_id}.jpg")
            } else {
                String::new()
            },
            flickr_rel: if with_files {
                format!("{FLICKR_DIR}/{host}/{path}")
            } else {
                String::new()
            },
            image_id,
            url: format!("https://{host}/{path}"),
            landing_url: format!("https://www.flickr.com/photos/{user}/{photo}"),
            author_profile_url: format!("https://www.flickr.com/people/{user}/"),
            host,
            author: author.to_string(),
            title: title.to_string(),
            thumbnail_url,
            rotation: rotation.to_string(),
            width,
            height,
            original_size: 0,
            original_md5: String::new(),
            sha256: String::new(),
        }
    }

    /// CSV rows nobody references, with ImageIDs outside `train_0` and no files.
    fn decoys(&mut self) -> Vec<GeneratedSource> {
        let n = 2 + self.sources.len() / 4;
        (0..n)
            .map(|_| {
                let first = char::from_digit(2 + self.src_rng.below(14) as u32, 16).unwrap_or('f');
                let id = self.fresh_id(first);
                let mut s = self.source_fields(id, None);
                s.original_size = 100_000 + self.src_rng.below(6_000_000) as u64;
                let fake: Vec<u8> = (0..16).map(|_| self.src_rng.next_u64() as u8).collect();
                s.original_md5 = base64(&fake);
                s
            })
            .collect()
    }

    fn sft_rows(&mut self, n: usize) -> Vec<GeneratedRow> {
        let mut rng = Rng::stream(self.seed, "sft");
        let plan = plan_edit_types(&mut rng, n);
        let mut rows: Vec<GeneratedRow> = Vec::with_capacity(n);
        for (i, &ti) in plan.iter().enumerate() {
            let source = if i == 1 || (i > 1 && rng.chance(30)) {
                rows[rng.below(i)].source
            } else {
                self.new_source()
            };
            let edit_type = style_edit_type(&mut rng, ti, i == 2);
            let (text, summary) = fill_edit(&mut rng, ti);
            let output_image = format!("images/positive-edit/{}", self.positive_names.next());
            let size = self.editor_size(&mut rng);
            self.add_image(&output_image, size);
            // Row 0 (the ↔ type) escapes non-ASCII, row n/2 (the en dash type) writes it raw.
            let ascii = match i {
                0 => true,
                _ if i == n / 2 => false,
                _ => rng.chance(50),
            };
            rows.push(self.single_row(
                Subset::Sft,
                source,
                text,
                summary,
                edit_type,
                ti,
                output_image,
                Vec::new(),
                ascii,
            ));
        }
        rows
    }

    #[allow(clippy::too_many_arguments)]
    fn single_row(
        &self,
        subset: Subset,
        source: usize,
        text: String,
        summary: String,
        edit_type: String,
        edit_type_index: usize,
        output_image: String,
        rejected: Vec<String>,
        ascii: bool,
    ) -> GeneratedRow {
        let url = self.sources[source].url.clone();
        let json = match subset {
            Subset::Sft => format!(
                "{{\"open_image_input_url\": {}, \"text\": {}, \"output_image\": {}, \"edit_type\": {}, \"summarized_text\": {}}}",
                js(&url, ascii),
                js(&text, ascii),
                js(&output_image, ascii),
                js(&edit_type, ascii),
                js(&summary, ascii)
            ),
            _ => {
                let list: Vec<String> = rejected.iter().map(|r| js(r, ascii)).collect();
                format!(
                    "{{\"output_image\": {}, \"rejected_images\": [{}], \"text\": {}, \"edit_type\": {}, \"open_image_input_url\": {}, \"summarized_text\": {}}}",
                    js(&output_image, ascii),
                    list.join(", "),
                    js(&text, ascii),
                    js(&edit_type, ascii),
                    js(&url, ascii),
                    js(&summary, ascii)
                )
            }
        };
        GeneratedRow {
            subset,
            line: 0,
            json,
            key: output_image.clone(),
            source,
            source_url: url,
            text: Some(text),
            summarized_text: Some(summary),
            edit_type: Some(edit_type),
            edit_type_index: Some(edit_type_index),
            output_image: Some(output_image),
            rejected_images: rejected,
            turn_prompts: Vec::new(),
            turn_images: Vec::new(),
            file_ids: Vec::new(),
            from_sft_line: None,
            ascii_escaped: ascii,
            expect: Expect::Convert,
        }
    }

    /// Returns the rows and the set of sft row indices they were copied from.
    /// `from_sft_line` temporarily holds the sft row *index*.
    fn preference_rows(
        &mut self,
        n: usize,
        sft: &[GeneratedRow],
    ) -> (Vec<GeneratedRow>, BTreeSet<usize>) {
        let mut rng = Rng::stream(self.seed, "preference");
        let mut order: Vec<usize> = (0..sft.len()).collect();
        rng.shuffle(&mut order);
        let mut next = 0;
        let mut derived = BTreeSet::new();
        let mut rows = Vec::with_capacity(n);
        let mut rejected_count = 0usize;
        for j in 0..n {
            let derive = next < order.len() && (j == 0 || rng.chance(75));
            let n_rejected = match j {
                0 => 2,
                1 => 1,
                _ => 1 + rng.below(2),
            };
            let size = self.editor_size(&mut rng);
            let mut rejected = Vec::with_capacity(n_rejected);
            for _ in 0..n_rejected {
                let local = format!("images/rejected-edit/{}", self.rejected_names.next());
                let size = self.editor_size(&mut rng);
                self.add_image(&local, size);
                let form = if rejected_count < 3 {
                    rejected_count
                } else {
                    rng.below(3)
                };
                rejected_count += 1;
                rejected.push(match form {
                    0 => local,
                    1 => format!("{}{local}", REJECTED_PREFIXES[0]),
                    _ => format!("{}{local}", REJECTED_PREFIXES[1]),
                });
            }
            let ascii = rng.chance(50);
            let row = if derive {
                let si = order[next];
                next += 1;
                derived.insert(si);
                let s = &sft[si];
                let mut row = self.single_row(
                    Subset::Preference,
                    s.source,
                    s.text.clone().unwrap_or_default(),
                    s.summarized_text.clone().unwrap_or_default(),
                    s.edit_type.clone().unwrap_or_default(),
                    s.edit_type_index.unwrap_or_default(),
                    s.output_image.clone().unwrap_or_default(),
                    rejected,
                    ascii,
                );
                row.from_sft_line = Some(si);
                row
            } else {
                let source = if !sft.is_empty() && rng.chance(50) {
                    sft[rng.below(sft.len())].source
                } else {
                    self.new_source()
                };
                let ti = rng.below(EDIT_TYPES.len());
                let edit_type = style_edit_type(&mut rng, ti, false);
                let (text, summary) = fill_edit(&mut rng, ti);
                let output_image = format!("images/positive-edit/{}", self.positive_names.next());
                self.add_image(&output_image, size);
                self.single_row(
                    Subset::Preference,
                    source,
                    text,
                    summary,
                    edit_type,
                    ti,
                    output_image,
                    rejected,
                    ascii,
                )
            };
            rows.push(row);
        }
        (rows, derived)
    }

    fn multi_turn_rows(
        &mut self,
        n: usize,
        share_sft: bool,
        sft: &[GeneratedRow],
    ) -> Vec<GeneratedRow> {
        let mut rng = Rng::stream(self.seed, "multi-turn");
        let mut session = 100 + rng.below(50) as u64;
        let mut words = BTreeSet::new();
        let mut rows = Vec::with_capacity(n);
        for r in 0..n {
            let source = if share_sft && rng.chance(60) {
                sft[rng.below(sft.len())].source
            } else {
                self.new_source()
            };
            let turns = match r {
                0 => 5,
                1 => 2,
                _ => 2 + rng.below(4),
            };
            let name = if r == 1 || rng.chance(15) {
                loop {
                    let w = word(&mut rng);
                    if words.insert(w.clone()) {
                        break w;
                    }
                }
            } else {
                session += 1 + rng.below(7) as u64;
                session.to_string()
            };
            let attempt = ['A', 'B', 'C'][rng.below(3)];
            let size = self.editor_size(&mut rng);
            let urls: Vec<String> = (1..=turns)
                .map(|t| format!("images/multi-turn/{name}_attempt{attempt}_turn{t}.png"))
                .collect();
            for u in &urls {
                self.add_image(u, size);
            }
            let mut prompt_idx: Vec<usize> = (0..TURN_PROMPTS.len()).collect();
            rng.shuffle(&mut prompt_idx);
            let prompts: Vec<String> = prompt_idx[..turns]
                .iter()
                .map(|&p| fill(&mut rng, TURN_PROMPTS[p]))
                .collect();

            let url = self.sources[source].url.clone();
            let mut files: Vec<(String, String)> = (1..turns)
                .map(|t| (format!("edit_turn{t}"), urls[t - 1].clone()))
                .collect();
            files.push(("final_image".to_string(), urls[turns - 1].clone()));
            files.push(("original_input_image".to_string(), url.clone()));
            let variant = match r {
                2 => 1,
                3 => 2,
                _ if rng.chance(30) => 1 + rng.below(4),
                _ => 0,
            };
            match variant {
                1 => {
                    // original_input_image first
                    let o = files.pop().expect("original entry");
                    files.insert(0, o);
                }
                2 => {
                    // final_image in the middle of the edit turns
                    let f = files.remove(turns - 1);
                    files.insert((turns - 1) / 2, f);
                }
                3 => files.reverse(),
                4 => rng.shuffle(&mut files),
                _ => {}
            }
            let ascii = rng.chance(50);
            let entries: Vec<String> = files
                .iter()
                .map(|(id, u)| format!("{{\"id\": {}, \"url\": {}}}", js(id, ascii), js(u, ascii)))
                .collect();
            let prompt_json: Vec<String> = prompts.iter().map(|p| js(p, ascii)).collect();
            let json = format!(
                "{{\"files\": [{}], \"metadata_edit_turn_prompts\": [{}]}}",
                entries.join(", "),
                prompt_json.join(", ")
            );
            rows.push(GeneratedRow {
                subset: Subset::MultiTurn,
                line: 0,
                json,
                key: urls[turns - 1].clone(),
                source,
                source_url: url,
                text: None,
                summarized_text: None,
                edit_type: None,
                edit_type_index: None,
                output_image: None,
                rejected_images: Vec::new(),
                turn_prompts: prompts,
                turn_images: urls,
                file_ids: files.into_iter().map(|(id, _)| id).collect(),
                from_sft_line: None,
                ascii_escaped: ascii,
                expect: Expect::Convert,
            });
        }
        rows
    }

    /// A row with the same `output_image` as `target` but another source, edit type and text.
    fn duplicate_row(&mut self, rng: &mut Rng, target: &GeneratedRow) -> GeneratedRow {
        let source = self.new_source();
        let mut ti = rng.below(EDIT_TYPES.len());
        if Some(ti) == target.edit_type_index {
            ti = (ti + 1) % EDIT_TYPES.len();
        }
        let edit_type = style_edit_type(rng, ti, false);
        let (text, summary) = fill_edit(rng, ti);
        let mut row = self.single_row(
            Subset::Sft,
            source,
            text,
            summary,
            edit_type,
            ti,
            target.key.clone(),
            Vec::new(),
            false,
        );
        row.expect = Expect::Fail(FailReason::DuplicateOutputImage);
        row
    }
}

/// Edit type indices for `n` rows: shuffled rounds over all 35, with the ↔ type
/// moved to row 0 and the en dash type to row `n / 2` (when `n` allows).
fn plan_edit_types(rng: &mut Rng, n: usize) -> Vec<usize> {
    let mut plan = Vec::with_capacity(n + EDIT_TYPES.len());
    while plan.len() < n {
        let mut round: Vec<usize> = (0..EDIT_TYPES.len()).collect();
        rng.shuffle(&mut round);
        plan.extend(round);
    }
    let arrow = 0; // "Change overall color tone (warm ↔ cool)"
    let dash = EDIT_TYPES
        .iter()
        .position(|t| t.contains('–'))
        .expect("en dash type");
    for (slot, want) in [(0usize, arrow), (n / 2, dash)] {
        if slot >= n || (want == dash && slot == 0) {
            continue;
        }
        match plan[..n].iter().position(|&t| t == want) {
            Some(p) => plan.swap(p, slot),
            None => plan[slot] = want,
        }
    }
    plan.truncate(n);
    plan
}

fn style_edit_type(rng: &mut Rng, index: usize, force_lower: bool) -> String {
    let t = EDIT_TYPES[index];
    if force_lower || rng.chance(25) {
        t.to_lowercase()
    } else {
        t.to_string()
    }
}

fn fill_edit(rng: &mut Rng, index: usize) -> (String, String) {
    let (_, long, short) = EDIT_TEMPLATES[index];
    let objects = pick_objects(rng);
    let color = COLORS[rng.below(COLORS.len())];
    (
        fill_with(long, objects, color),
        fill_with(short, objects, color),
    )
}

fn fill(rng: &mut Rng, template: &str) -> String {
    let objects = pick_objects(rng);
    let color = COLORS[rng.below(COLORS.len())];
    fill_with(template, objects, color)
}

fn pick_objects(rng: &mut Rng) -> (usize, usize) {
    let a = rng.below(OBJECTS.len());
    let b = (a + 1 + rng.below(OBJECTS.len() - 1)) % OBJECTS.len();
    (a, b)
}

fn fill_with(template: &str, (a, b): (usize, usize), color: &str) -> String {
    let cap = |s: &str| {
        let mut c = s.chars();
        match c.next() {
            Some(f) => f.to_uppercase().chain(c).collect::<String>(),
            None => String::new(),
        }
    };
    template
        .replace("{obj_short}", OBJECTS[a].1)
        .replace("{obj2_short}", OBJECTS[b].1)
        .replace("{a_obj2}", &format!("a {}", OBJECTS[b].0))
        .replace("{a_obj}", &format!("a {}", OBJECTS[a].0))
        .replace("{obj2}", &format!("the {}", OBJECTS[b].0))
        .replace("{obj}", &format!("the {}", OBJECTS[a].0))
        .replace("{Obj}", &cap(OBJECTS[a].1))
        .replace("{color}", color)
}

/// File names for one image directory: mostly increasing numbers with gaps, about a
/// fifth non-numeric (`kewsee_retry1.png`); the name with index `forced_word` is
/// always non-numeric.
struct Namer {
    rng: Rng,
    counter: u64,
    issued: usize,
    forced_word: usize,
    used: BTreeSet<String>,
}

impl Namer {
    fn new(mut rng: Rng, forced_word: usize) -> Namer {
        let counter = rng.below(3) as u64;
        Namer {
            rng,
            counter,
            issued: 0,
            forced_word,
            used: BTreeSet::new(),
        }
    }

    fn next(&mut self) -> String {
        let wordy = self.issued == self.forced_word || self.rng.chance(22);
        self.issued += 1;
        loop {
            let name = if wordy {
                format!("{}_retry{}.png", word(&mut self.rng), 1 + self.rng.below(2))
            } else {
                self.counter += 1 + self.rng.below(4) as u64;
                format!("{}.png", self.counter)
            };
            if self.used.insert(name.clone()) {
                return name;
            }
        }
    }
}

/// A pronounceable lower-case word of six letters.
fn word(rng: &mut Rng) -> String {
    const C: &[u8] = b"bdfghjklmnprstvwz";
    const V: &[u8] = b"aeiou";
    let mut s = String::new();
    for i in 0..6 {
        let set = if i % 2 == 0 { C } else { V };
        s.push(set[rng.below(set.len())] as char);
    }
    s
}

// ---------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------

/// An RGB picture seeded by `key`: a two-colour gradient plus three flat rectangles.
/// Smooth enough to compress to well under 4 KB at 48 px.
fn draw(w: u32, h: u32, key: u64) -> Vec<u8> {
    let mut rng = Rng(key);
    let color = |rng: &mut Rng| {
        let v = rng.next_u64();
        [v as u8, (v >> 8) as u8, (v >> 16) as u8]
    };
    let c0 = color(&mut rng);
    let c1 = color(&mut rng);
    let dir = rng.below(3);
    let (wu, hu) = (w as usize, h as usize);
    let mut px = vec![0u8; wu * hu * 3];
    for y in 0..hu {
        for x in 0..wu {
            let (num, den) = match dir {
                0 => (x, wu.max(2) - 1),
                1 => (y, hu.max(2) - 1),
                _ => (x + y, wu + hu - 2),
            };
            let o = (y * wu + x) * 3;
            for c in 0..3 {
                let a = c0[c] as usize;
                let b = c1[c] as usize;
                px[o + c] = ((a * (den - num) + b * num) / den.max(1)) as u8;
            }
        }
    }
    for _ in 0..3 {
        let col = color(&mut rng);
        let rw = 1 + rng.below(wu / 2);
        let rh = 1 + rng.below(hu / 2);
        let x0 = rng.below(wu - rw + 1);
        let y0 = rng.below(hu - rh + 1);
        for y in y0..y0 + rh {
            for x in x0..x0 + rw {
                let o = (y * wu + x) * 3;
                px[o..o + 3].copy_from_slice(&col);
            }
        }
    }
    px
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Best, FilterType::Adaptive)
        .write_image(rgb, w, h, ExtendedColorType::Rgb8)
        .map_err(io::Error::other)?;
    Ok(out)
}

fn encode_jpeg(rgb: &[u8], w: u32, h: u32) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 80)
        .encode(rgb, w, h, ExtendedColorType::Rgb8)
        .map_err(io::Error::other)?;
    Ok(out)
}

fn file_info(width: u32, height: u32, bytes: &[u8]) -> GeneratedFile {
    GeneratedFile {
        width,
        height,
        len: bytes.len() as u64,
        sha256: hex(&Sha256::digest(bytes)),
    }
}

/// `f` of every item, in order, computed on all cores in contiguous chunks.
fn par_map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> io::Result<R> + Sync,
) -> io::Result<Vec<R>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<io::Result<Vec<R>>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for w in workers {
            out.extend(
                w.join()
                    .map_err(|_| io::Error::other("a writer thread panicked"))??,
            );
        }
        Ok(out)
    })
}

fn write_file(root: &Path, rel: &str, bytes: &[u8]) -> io::Result<()> {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, bytes)
}

// ---------------------------------------------------------------------------
// Text helpers: JSON strings, CSV, hex, base64, MD5, PRNG
// ---------------------------------------------------------------------------

/// A JSON string literal. With `ascii`, non-ASCII characters become `\uXXXX`
/// escapes (lower-case hex, surrogate pairs), as Python's `json.dumps` writes them.
pub fn js(s: &str, ascii: bool) -> String {
    let quoted = serde_json::to_string(s).expect("a str always serializes");
    if !ascii {
        return quoted;
    }
    let mut out = String::with_capacity(quoted.len());
    for ch in quoted.chars() {
        if ch.is_ascii() {
            out.push(ch);
        } else {
            let mut buf = [0u16; 2];
            for unit in ch.encode_utf16(&mut buf) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

/// One CSV field, quoted only when needed (Python `csv` QUOTE_MINIMAL).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A small RFC 4180 parser (quoted fields, doubled quotes, embedded newlines,
/// LF or CRLF line ends). Returns `None` on an unterminated quoted field.
pub fn parse_csv(text: &str) -> Option<Vec<Vec<String>>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            ',' => record.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                any = false;
            }
            _ => field.push(c),
        }
    }
    if in_quotes {
        return None;
    }
    if any {
        record.push(field);
        records.push(record);
    }
    Some(records)
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn hex_digits(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(rng.below(16) as u32, 16).unwrap_or('0'))
        .collect()
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// MD5 (RFC 1321), for the Open Images `OriginalMD5` column.
pub fn md5(data: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    const K: [u32; 64] = [
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
        0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
        0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
        0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
        0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
        0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
        0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
        0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
        0xeb86d391,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    let mut st: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
    for block in msg.chunks_exact(64) {
        let m: Vec<u32> = block
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = st;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(K[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        st[0] = st[0].wrapping_add(a);
        st[1] = st[1].wrapping_add(b);
        st[2] = st[2].wrapping_add(c);
        st[3] = st[3].wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, v) in st.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    }
    out
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The splitmix64 finalizer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

/// splitmix64.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    /// An independent stream per purpose, so that e.g. adding multi-turn rows does
    /// not change the sft rows.
    fn stream(seed: u64, label: &str) -> Rng {
        Rng(mix(seed.wrapping_add(0x9e3779b97f4a7c15)) ^ fnv1a(label.as_bytes()))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        mix(self.0)
    }

    /// Uniform-enough integer in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}
