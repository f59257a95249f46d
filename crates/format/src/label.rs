//! Labels written by people (edit types, categories): two spellings that differ only in case
//! or in runs of whitespace are the same label. Records keep the spelling they were given;
//! counting and filtering compare labels this way.

/// The label's words, lower-cased and joined by single spaces.
fn folded(label: &str) -> impl Iterator<Item = char> + '_ {
    label.split_whitespace().enumerate().flat_map(|(i, word)| {
        (i > 0)
            .then_some(' ')
            .into_iter()
            .chain(word.chars().flat_map(char::to_lowercase))
    })
}

/// The form labels are compared in: `"  Relight\tthe SCENE "` -> `"relight the scene"`.
pub fn normalize_label(label: &str) -> String {
    folded(label).collect()
}

/// True when `a` and `b` are the same label ([`normalize_label`]s equal), without allocating.
pub fn same_label(a: &str, b: &str) -> bool {
    folded(a).eq(folded(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_spacing_do_not_matter_spelling_does() {
        assert_eq!(normalize_label("  A\tB  c "), "a b c");
        assert!(same_label("Relight  the scene", "relight the SCENE"));
        assert!(!same_label("Relight the scene", "Relight the scenes"));
        assert!(!same_label("ab", "a b"));
        assert!(same_label("", "  "));
    }
}
