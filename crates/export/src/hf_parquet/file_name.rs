//! The `path` of an `Image` value: a bare file name on every OS, whatever the record holds.

use editshard::record::Image;

/// Longest name kept, in bytes: the file-name limit of the common file systems (ext4, APFS,
/// NTFS in UTF-16 units, which a name within 255 bytes never exceeds).
const MAX_NAME_BYTES: usize = 255;

/// Names Windows reserves for devices, with or without an extension (`NUL.png` is a device).
const WINDOWS_DEVICES: [&str; 4] = ["CON", "PRN", "AUX", "NUL"];

/// The `path` of an `Image` value: a bare file name, as `datasets` writes it, from the image's
/// release path or else its URL's path (query and fragment dropped); null when neither gives
/// one. Only a name (`datasets` never opens it when `bytes` is set; the image's own path and
/// URL stay as they were in its `*_info` column), and one on every OS:
///
/// - only the part after the last `/` or `\`: no directory, whichever separator;
/// - control characters (NUL, the rest of C0, DEL, C1) dropped;
/// - the characters Windows refuses in a name, `< > : " | ? *`, replaced by `_` (so no drive
///   letter or alternate stream either);
/// - trailing dots and spaces dropped (Windows drops them), and a name left empty (`.`, `..`)
///   is no name;
/// - a name Windows reserves for a device (`CON`, `PRN`, `AUX`, `NUL`, `COM0`-`COM9`,
///   `LPT0`-`LPT9`, with any extension) gets a leading `_`;
/// - at most 255 bytes: a longer name keeps its end (its extension).
pub fn file_name(image: &Image) -> Option<String> {
    let url_path = image.url.as_deref().and_then(|u| {
        let u = u.split(['?', '#']).next().unwrap_or(u);
        let after_scheme = u.split_once("://").map_or(u, |(_, rest)| rest);
        // A URL with no path after its host names no file.
        after_scheme.split_once('/').map(|(_, path)| path)
    });
    image
        .path
        .as_deref()
        .and_then(bare)
        .or_else(|| url_path.and_then(bare))
}

/// `path` made a bare file name by the rules of [`file_name`].
fn bare(path: &str) -> Option<String> {
    let last = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let mut name: String = last
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if "<>:\"|?*".contains(c) { '_' } else { c })
        .collect();
    name.truncate(name.trim_end_matches(['.', ' ']).len());
    if name.is_empty() {
        return None;
    }
    if name.len() > MAX_NAME_BYTES {
        let cut = (name.len() - MAX_NAME_BYTES..name.len())
            .find(|&i| name.is_char_boundary(i))
            .unwrap_or(name.len());
        name.drain(..cut);
    }
    // After the cut: the end kept of a long name may itself start with a device's name.
    if is_windows_device(&name) {
        if name.len() < MAX_NAME_BYTES {
            name.insert(0, '_');
        } else {
            let first = name.chars().next().map_or(0, char::len_utf8);
            name.replace_range(..first, "_");
        }
    }
    Some(name)
}

fn is_windows_device(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    let upper = stem.to_ascii_uppercase();
    let numbered = |prefix: &str| {
        upper
            .strip_prefix(prefix)
            .is_some_and(|n| n.len() == 1 && n.as_bytes()[0].is_ascii_digit())
    };
    WINDOWS_DEVICES.contains(&upper.as_str()) || numbered("COM") || numbered("LPT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_bare_on_every_os() {
        let named = |path: Option<&str>, url: Option<&str>| {
            let mut i = Image::with_info(vec![0u8].into(), "image/png".into(), 1, 1);
            i.path = path.map(str::to_string);
            i.url = url.map(str::to_string);
            file_name(&i).as_deref().map(str::to_string)
        };
        let cases: [(Option<&str>, Option<&str>, Option<&str>); 18] = [
            (None, None, None),
            (None, Some("https://host/a/b/c.jpg?x=1"), Some("c.jpg")),
            (None, Some("https://host"), None),
            (Some("images/../d.png"), None, Some("d.png")),
            (Some("images\\sub\\a.png"), None, Some("a.png")),
            (Some("C:\\Users\\x\\b.png"), None, Some("b.png")),
            (Some("images/..\\..\\c.png"), None, Some("c.png")),
            (Some("a\0b.png"), None, Some("ab.png")),
            (
                Some("d\u{1}\u{1f}\u{7f}\u{85}e.png\n"),
                None,
                Some("de.png"),
            ),
            (Some("C:f.png"), None, Some("C_f.png")),
            (Some("a<b>c\"d|e?f*.png"), None, Some("a_b_c_d_e_f_.png")),
            (Some("images/.."), None, None),
            (Some("images\\. ."), None, None),
            (Some("images/\0"), Some("https://h/u\\v.jpg"), Some("v.jpg")),
            (Some("nul.png"), None, Some("_nul.png")),
            (Some("Com1"), None, Some("_Com1")),
            (None, Some("https://h/p\\q%2Fr.jpg?x=1"), Some("q%2Fr.jpg")),
            (Some("consoles.png"), None, Some("consoles.png")),
        ];
        for (path, url, want) in cases {
            assert_eq!(named(path, url).as_deref(), want, "{path:?} {url:?}");
        }
        let long = format!("{}.png", "\u{e9}".repeat(200));
        let name = named(Some(&long), None).unwrap();
        assert!(name.len() <= 255 && name.ends_with("\u{e9}.png"), "{name}");
        // A long name whose last 255 bytes start with a device's name.
        let long = format!("x/yCON.{}.png", "a".repeat(247));
        let name = named(Some(&long), None).unwrap();
        assert!(name.len() <= 255, "{}", name.len());
        assert!(!is_windows_device(&name), "{name}");
    }
}
