//! The release's 35 edit types and the 8 categories they belong to (Pico-Banana-400K paper,
//! table 1). Rows spell types inconsistently (some lower-cased), so lookups compare
//! case-insensitively after collapsing whitespace. An unknown type is not an error: the row is
//! kept with its type verbatim and no category, and the summary counts it.

/// `(category, edit types)` in the paper's order.
pub const CATEGORIES: [(&str, &[&str]); 8] = [
    (
        "Pixel & Photometric",
        &[
            "Change overall color tone (warm ↔ cool)",
            "Add film grain or vintage filter",
        ],
    ),
    (
        "Object-Level Semantic",
        &[
            "Add a new object to the scene",
            "Remove an existing object",
            "Replace one object category with another",
            "Change an object's attribute (e.g., color/material)",
            "Relocate an object (change its position/spatial relation)",
            "Change the size/shape/orientation of an object",
        ],
    ),
    (
        "Scene Composition & Multi-Subject",
        &[
            "Add new scene context/background",
            "Apply seasonal transformation (summer ↔ winter)",
            "Change weather conditions (sunny/rainy/snowy)",
            "Adjust global lighting (golden hour/fluorescent)",
        ],
    ),
    (
        "Stylistic",
        &[
            "Strong artistic style transfer (e.g., Van Gogh/anime/etc.)",
            "Photo to cartoon/sketch/comic",
            "Modern ↔ historical style/look",
        ],
    ),
    (
        "Text & Symbol",
        &[
            "Replace text in signs/posters/billboards",
            "Add new (handwritten/printed/etc) text",
            "Change font style or color of visible text if there is text",
            "Translate written text into other languages",
        ],
    ),
    (
        "Human-Centric",
        &[
            "Add/Remove/Replace accessories (glasses, hats, jewelry, masks)",
            "Clothing edit (change color/outfit)",
            "Pose tweak (minor plausible change)",
            "Modify expressions (smile, frown, neutral)",
            "Change age / gender",
            "Convert person to 2D anime/manga style (identity-preserving)",
            "Convert person to Pixar/Disney-like 3D cartoon look",
            "Convert person to Western comic cel-shaded style",
            "Line-art ink sketch of the person",
            "Sticker-ify the person with bold outline and white border",
            "Caricature with mild feature exaggeration (keep identity)",
            "Funko-Pop–style toy figure of the person",
            "LEGO-minifigure rendition of the person",
            "Simpsonize the person (yellow-skin cartoon style)",
        ],
    ),
    ("Scale & Perspective", &["Zoom in"]),
    (
        "Spatial / Layout",
        &["Outpainting (extend canvas beyond boundaries)"],
    ),
];

/// Lower case with every run of whitespace collapsed to one space and the ends trimmed (the
/// format core's label comparison, shared with the readers' filters).
pub use editshard_format::label::normalize_label as normalize;
use editshard_format::label::same_label;

/// The category of an edit type, or `None` if the type is not one of the 35.
pub fn category(edit_type: &str) -> Option<&'static str> {
    CATEGORIES
        .iter()
        .find(|(_, types)| types.iter().any(|t| same_label(t, edit_type)))
        .map(|(c, _)| *c)
}

/// The table's spelling of an edit type ("change  weather conditions (sunny/rainy/snowy)" ->
/// "Change weather conditions (sunny/rainy/snowy)"), or `None` if it is not one of the 35.
/// Records keep the release's spelling (export rebuilds rows exactly); counts and filters use
/// this one.
pub fn canonical(edit_type: &str) -> Option<&'static str> {
    CATEGORIES
        .iter()
        .flat_map(|(_, types)| types.iter())
        .find(|t| same_label(t, edit_type))
        .copied()
}

/// The table's spelling of a category, or `None` if it is not one of the 8.
pub fn canonical_category(category: &str) -> Option<&'static str> {
    CATEGORIES
        .iter()
        .map(|(c, _)| *c)
        .find(|c| same_label(c, category))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirty_five_distinct_types() {
        let all: std::collections::BTreeSet<String> = CATEGORIES
            .iter()
            .flat_map(|(_, t)| t.iter().map(|s| normalize(s)))
            .collect();
        assert_eq!(all.len(), 35);
    }

    #[test]
    fn lookup_ignores_case_and_spacing_but_not_spelling() {
        assert_eq!(
            category("change overall color tone (warm ↔ cool)"),
            Some("Pixel & Photometric")
        );
        assert_eq!(
            category("  Funko-Pop–style   toy figure of the PERSON "),
            Some("Human-Centric")
        );
        assert_eq!(category("Zoom in"), Some("Scale & Perspective"));
        // A hyphen instead of the en dash is a different (unknown) type: never guess.
        assert_eq!(category("Funko-Pop-style toy figure of the person"), None);
        assert_eq!(category(""), None);
    }

    #[test]
    fn canonical_spelling() {
        assert_eq!(
            canonical(" change  WEATHER conditions (sunny/rainy/snowy)"),
            Some("Change weather conditions (sunny/rainy/snowy)")
        );
        assert_eq!(canonical("Zoom in"), Some("Zoom in"));
        assert_eq!(canonical("Zoom out"), None);
        for (_, types) in CATEGORIES {
            for t in types {
                assert_eq!(canonical(&t.to_lowercase()), Some(*t));
            }
        }
    }
}
