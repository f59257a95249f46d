//! Multi-turn sessions in any row order. A first pass reads the session key column alone
//! (a few bytes a row) and notes, for every key, the rows that hold it, by ordinal (the
//! row's number across all the dataset's files). The converting pass then knows, at each
//! row, whether its session is complete: at its last row, the session's turns are put
//! together, wherever its other rows were (other row groups, other files, any order).
//!
//! Memory is bounded per session, not per dataset: the turns of sessions still open are
//! kept up to a budget; past it, the largest open session lets go of its turns and is read
//! again, row by row, when its last row comes ([`SessionIndex::rows`] says where). A session
//! of more than [`MAX_SESSION_TURNS`] rows is refused, each row with a located failure.

use std::collections::HashMap;

/// Most rows (turns) one session may have. MagicBrush sessions have at most 5; a session
/// is one record, held whole while it is written.
pub const MAX_SESSION_TURNS: usize = 64;

/// Where each session's rows are.
#[derive(Debug, Default)]
pub struct SessionIndex {
    sessions: HashMap<String, Vec<u64>>,
}

/// What the index says of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The ordinal of the session's first and last row.
    pub first: u64,
    pub last: u64,
    pub rows: usize,
}

impl SessionIndex {
    /// Notes that row `ordinal` holds `key`; rows come in ordinal order.
    pub fn add(&mut self, key: String, ordinal: u64) {
        let rows = self.sessions.entry(key).or_default();
        // Past the turn limit the positions are not needed, only the count.
        if rows.len() <= MAX_SESSION_TURNS {
            rows.push(ordinal);
        } else if let Some(last) = rows.last_mut() {
            *last = ordinal;
        }
    }

    /// How many rows past the limit a too-long session had is not kept: it is refused.
    pub fn span(&self, key: &str) -> Option<Span> {
        let rows = self.sessions.get(key)?;
        Some(Span {
            first: *rows.first()?,
            last: *rows.last()?,
            rows: rows.len(),
        })
    }

    /// Whether the session of `key` has more rows than [`MAX_SESSION_TURNS`].
    pub fn too_long(&self, key: &str) -> bool {
        self.sessions
            .get(key)
            .is_some_and(|r| r.len() > MAX_SESSION_TURNS)
    }

    /// The ordinals of the session's rows, in order (a session within the turn limit).
    pub fn rows(&self, key: &str) -> &[u64] {
        self.sessions.get(key).map_or(&[], |r| r.as_slice())
    }

    /// Every session, as (key, span).
    pub fn spans(&self) -> impl Iterator<Item = (&str, Span)> {
        self.sessions
            .keys()
            .filter_map(|k| Some((k.as_str(), self.span(k)?)))
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_span_their_rows_and_long_ones_are_known() {
        let mut ix = SessionIndex::default();
        for (k, o) in [("a", 0), ("b", 1), ("a", 5), ("c", 6), ("a", 9)] {
            ix.add(k.into(), o);
        }
        assert_eq!(
            ix.span("a"),
            Some(Span {
                first: 0,
                last: 9,
                rows: 3
            })
        );
        assert_eq!(ix.rows("a"), [0, 5, 9]);
        assert!(!ix.too_long("a"));
        for o in 0..100 {
            ix.add("long".into(), 100 + o);
        }
        assert!(ix.too_long("long"));
        let s = ix.span("long").unwrap();
        assert_eq!((s.first, s.last), (100, 199));
        assert_eq!(ix.len(), 4);
    }
}
