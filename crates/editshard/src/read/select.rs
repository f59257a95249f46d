//! What to read of each record ([`Projection`]) and which records ([`Filter`]).

use crate::label::same_label;
use crate::record::{Kind, Record};

/// Which images' bytes to fetch. Metadata (texts, types, scores, image sizes and hashes) is
/// always read; the bytes of images not selected are never transferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Images {
    /// Every image of the record.
    #[default]
    All,
    /// Metadata only.
    None,
    /// Images by role. A turn's mask (format 1.1) comes with its output.
    Only {
        source: bool,
        outputs: bool,
        rejected: bool,
    },
}

/// The role of an image in its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Source,
    Output,
    Rejected,
}

impl Images {
    pub fn wants(&self, role: Role) -> bool {
        match *self {
            Images::All => true,
            Images::None => false,
            Images::Only {
                source,
                outputs,
                rejected,
            } => match role {
                Role::Source => source,
                Role::Output => outputs,
                Role::Rejected => rejected,
            },
        }
    }
}

/// The role of each of `record`'s images, in canonical order (see [`Record::images`]): one
/// per image, masks included (a mask has its output's role: the region the edit may change
/// goes with the edit).
pub fn roles(record: &Record) -> Vec<Role> {
    let mut out = vec![Role::Source];
    for turn in &record.turns {
        out.push(Role::Output);
        out.extend(turn.rejected.iter().map(|_| Role::Rejected));
        out.extend(turn.mask.iter().map(|_| Role::Output));
    }
    out
}

/// Which records to keep. Empty lists accept everything. The kind is checked from the
/// shard index, before anything of the record is fetched; the rest from its metadata, before
/// any image bytes are fetched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub kinds: Vec<Kind>,
    /// Keep a record if one of its turns has one of these edit types. Compared as labels
    /// ([`same_label`]): case and runs of whitespace do not matter.
    pub edit_types: Vec<String>,
    /// Keep a record if one of its turns has one of these categories (compared like
    /// `edit_types`).
    pub categories: Vec<String>,
    /// Keep a record if the chosen output of one of its turns has a score of this name at or
    /// above this value (records without such a score are dropped).
    pub min_score: Option<(String, f32)>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty() && !self.needs_metadata()
    }

    /// True when deciding needs the record's metadata, not just the index.
    pub fn needs_metadata(&self) -> bool {
        !self.edit_types.is_empty() || !self.categories.is_empty() || self.min_score.is_some()
    }

    pub fn accepts_kind(&self, kind: Kind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }

    pub fn accepts(&self, record: &Record) -> bool {
        if !self.accepts_kind(record.kind) {
            return false;
        }
        let any_turn = |values: &[String], get: fn(&crate::record::Turn) -> Option<&String>| {
            if values.is_empty() {
                return true;
            }
            record
                .turns
                .iter()
                .any(|t| get(t).is_some_and(|v| values.iter().any(|w| same_label(v, w))))
        };
        if !any_turn(&self.edit_types, |t| t.edit_type.as_ref()) {
            return false;
        }
        if !any_turn(&self.categories, |t| t.category.as_ref()) {
            return false;
        }
        if let Some((name, min)) = &self.min_score {
            let ok = record.turns.iter().any(|t| {
                t.output
                    .scores
                    .iter()
                    .any(|s| &s.name == name && s.value >= *min)
            });
            if !ok {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::label::normalize_label;
    use crate::record::{Image, Turn};

    fn record(edit_type: &str, category: &str) -> Record {
        let img = || Image::with_info(bytes::Bytes::from_static(b"x"), "image/png".into(), 1, 1);
        let source = img();
        let mut turn = Turn::new(img());
        turn.edit_type = Some(edit_type.to_string());
        turn.category = Some(category.to_string());
        Record::new("sft/x", Kind::Sft, source, vec![turn])
    }

    #[test]
    fn every_image_has_a_role_masks_included() {
        let img = || Image::with_info(bytes::Bytes::from_static(b"x"), "image/png".into(), 1, 1);
        let mut first = Turn::new(img());
        first.mask = Some(img());
        let mut second = Turn::new(img());
        second.rejected = vec![img()];
        let r = Record::new("m/1", Kind::MultiTurn, img(), vec![first, second]);
        use Role::*;
        assert_eq!(roles(&r), [Source, Output, Output, Output, Rejected]);
        assert_eq!(roles(&r).len(), r.images().count());
    }

    #[test]
    fn edit_types_and_categories_match_ignoring_case_and_spacing() {
        let r = record(
            "change  weather conditions (sunny/rainy/snowy) ",
            "Scene Composition & Multi-Subject",
        );
        let f = Filter {
            edit_types: vec!["Change weather conditions (sunny/rainy/snowy)".into()],
            categories: vec!["scene composition &   multi-subject".into()],
            ..Filter::default()
        };
        assert!(f.accepts(&r));
        let other = Filter {
            edit_types: vec!["Change weather condition (sunny/rainy/snowy)".into()],
            ..Filter::default()
        };
        assert!(!other.accepts(&r), "spelling still matters");
        assert_eq!(normalize_label("  A\tB  c "), "a b c");
    }
}
