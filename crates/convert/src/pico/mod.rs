//! Pico-Banana-400K: the raw release (three JSONL files plus ~400K image
//! URLs) into verified shards, resumably and politely.
//!
//! # Record mapping (the format team and `export` rely on it)
//!
//! | record field | sft / preference row | multi-turn row |
//! |---|---|---|
//! | `id` | `sft/<output_image>`, `preference/<output_image>` | `multi-turn/<final_image url>` |
//! | `kind` | `Sft`, `Preference` | `MultiTurn` |
//! | `source` | bytes of `open_image_input_url`; `url` = it verbatim; `rotation` = Open Images `Rotation` (when `--openimages-csv` is given; pixels never rotated) | same, from the `original_input_image` entry |
//! | `turns` | one turn: `instruction` = `text`, `short_instruction` = `summarized_text`, `edit_type` verbatim, `category` from the 35-type table (case- and whitespace-insensitive; unknown type: kept, `None`, counted), `output.path` = `output_image`, `rejected[k].path` = `rejected_images[k]` exactly as written | one turn per `edit_turn1..edit_turnK-1` then `final_image` (selected by `id`, never by position), `instruction` = `metadata_edit_turn_prompts[i]`, `output.path` = the entry's `url` as written |
//! | `provenance` | `subset`, `file` (`jsonl/sft.jsonl`, ...), 1-based physical `line`, `licence` = [`LICENCE`] | same |
//! | `extras` | every field not mapped above, verbatim (e.g. `local_input_image`), plus `"editshard.release": {"keys": [...]}` | plus `"files"`: the `files` list verbatim (order and ids) |
//!
//! The subset prefix in ids is needed because sft and preference rows share `output_image`
//! paths. `editshard.release.keys` is the row's key order; with the mapped fields it rebuilds
//! the source row exactly (same keys, order and values): see [`rows::rebuild_row`]. A mapped
//! optional field that was `null` comes back as `null`, an absent one stays absent. Scores
//! from `--scores` go into `Image::scores` of the scored image (see [`scores`]).
//!
//! # Determinism and resume
//!
//! The [`plan`] orders rows by source (sources in order of first appearance) from the JSONL
//! bytes alone; batches are fetched concurrently but written strictly in plan order, and a
//! record depends only on its row and its image bytes. So the shards are byte-identical
//! whatever `--jobs` is and whatever order downloads finish in. Shards are written to a local
//! staging directory, then published to DEST (renamed, or uploaded to S3); after each
//! publication the work directory's `state.json` records how far the plan got ([`state`]),
//! and downloaded images wait in a cache until their shard is published ([`cache`]). A run
//! killed at any point and started again with the same command re-plans, skips what is
//! published, reads what it had downloaded from the cache, and ends with the same bytes.
//! `manifest.json` is written last: a DEST without it is unfinished.
//!
//! # Network
//!
//! See [`fetch`]: global and per-host concurrency, per-host rate limits, connect and idle
//! timeouts, bounded retries with exponential back-off and jitter, `Retry-After` on 429/503,
//! truncation checks. Every row that does not become a record is listed in
//! `failures.jsonl` ([`failures`]).
//!
//! # Split conversions
//!
//! `--part I/N` converts the rows whose source hashes to part I (0-based) into
//! `DEST/part-IIII-of-NNNN/`; [`merge`] combines the parts.

pub mod batch;
pub mod cache;
pub mod fetch;
pub mod openimages;
pub mod plan;
pub mod resolve;
pub mod run;
pub mod scores;

pub use batch::Validate;
pub use plan::CollisionPolicy;
pub use run::{ConvertOptions, convert};
