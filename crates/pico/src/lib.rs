//! Pico-Banana-400K's release, row by row: its three JSONL subsets parsed into
//! [`ParsedRow`](rows::ParsedRow)s ([`rows`]), and its 35 edit types with their categories
//! ([`edit_types`]). `editshard convert` builds records from these rows and `editshard export`
//! rebuilds the rows from records ([`rows::rebuild_row`]), so both share this one model.
//!
//! Pure and sans-I/O apart from reading lines from any `BufRead`; the fuzz target
//! `release_row` drives it with hostile lines.

pub mod edit_types;
pub mod layout;
pub mod rows;
