//! Editing datasets published on the Hugging Face Hub as Parquet, into editshard records.
//!
//! - [`mapping`]: which columns hold which record fields; every preset (MagicBrush,
//!   InstructPix2Pix, UltraEdit, HQ-Edit, OmniEdit, AnyEdit) is a built-in mapping file.
//! - [`source`]: the dataset's files, local or remote (ranged reads through the editshard
//!   storage layer).
//! - [`thrift`], [`footer`], [`footer_types`]: a file's footer checked against its own bytes
//!   (types, counts, nesting, placement) before the `parquet` crate decodes it.
//! - [`schema`]: the mapping's columns checked against a file's schema (present, and of a
//!   type their field can use).
//! - [`reader`]: one file's footer, schema check and rows, a row group at a time
//!   ([`rowgroup`]) in batches bounded by a memory budget.
//! - [`pages`], [`codec`], [`levels`]: each page checked, charged to the budget and
//!   decompressed to its stated size before the `parquet` crate decodes it.
//! - [`cell`]: a row's values, whatever Arrow type holds them (images as the Hub's `Image`
//!   struct or as plain binary).
//! - [`records`], [`sessions`]: rows into records; multi-turn sessions rebuilt from rows in
//!   any order, with memory bounded per session.

pub mod cell;
pub mod codec;
pub mod footer;
pub mod footer_types;
pub mod levels;
pub mod mapping;
pub mod pages;
pub mod reader;
pub mod records;
pub mod rowgroup;
pub mod schema;
pub mod sessions;
pub mod source;
pub mod thrift;

pub use mapping::Mapping;
