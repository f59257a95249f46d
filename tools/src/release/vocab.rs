//! The release's constants and the vocabulary generated rows are made of.

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
pub(super) const EDIT_TEMPLATES: [(&str, &str, &str); 35] = [
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
pub(super) const TURN_PROMPTS: [&str; 16] = [
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
pub(super) const OBJECTS: [(&str, &str); 12] = [
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

pub(super) const COLORS: [&str; 6] = [
    "teal",
    "crimson",
    "mustard yellow",
    "matte black",
    "pastel pink",
    "emerald green",
];

pub(super) const AUTHORS: [&str; 9] = [
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

pub(super) const FLICKR_USERS: [&str; 8] = [
    "michael-beat",
    "drstarbuck",
    "49503157467@N01",
    "jsmith_photos",
    "lensclub",
    "12345678@N02",
    "mhdubois",
    "wanderlust-ng",
];

pub(super) const TITLES: [&str; 10] = [
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
pub(super) const SOURCE_RATIOS: [(u32, u32); 6] = [(4, 3), (3, 4), (3, 2), (2, 3), (1, 1), (16, 9)];
