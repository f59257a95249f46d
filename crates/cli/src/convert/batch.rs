//! One batch of rows (one source, consecutive in the plan): read the rows again, get every
//! distinct image once, validate it, and build the records, in plan order.
//!
//! Everything a batch produces depends only on the rows and the image bytes, never on timing,
//! so batches may finish in any order: the caller consumes them in plan order.

// A failed row is an ordinary outcome here, not an exceptional one: boxing it would only
// add an allocation per failure.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::join_all;

use super::failures::Failure;
use super::fetch::{FetchError, Fetcher};
use super::openimages::OpenImages;
use super::plan::{PlanRow, read_line_at};
use super::resolve::{Location, Resolver};
use super::scores::Scores;
use crate::record::{Image, Provenance, Record, Turn};
use editshard_pico::edit_types;
use editshard_pico::rows::{self, ParsedRow, Subset};

/// The licence string stored with every record and in the manifest.
pub const LICENCE: &str = "CC BY-NC-ND 4.0 (edits); CC BY 2.0 (source images)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Validate {
    /// Media type and dimensions from the header (JPEG, PNG or WebP only).
    Header,
    /// A full, bounded decode with the image crate.
    Decode,
}

pub struct Context {
    pub fetcher: Fetcher,
    pub resolver: Resolver,
    pub openimages: Option<OpenImages>,
    pub scores: Option<Scores>,
    pub validate: Validate,
    pub inputs: HashMap<Subset, PathBuf>,
}

pub struct RowOutcome {
    /// Index of the row in the plan.
    pub index: u64,
    pub group: u32,
    pub result: Result<Record, Failure>,
    /// HTTP URLs this row read (their cache entries can go once its shard is published).
    pub http_urls: Vec<String>,
}

/// What failed for one image: the reason code, the detail and the URL or path.
#[derive(Clone)]
struct ImageError {
    reason: String,
    detail: String,
    url: String,
}

type ImageResult = Result<Image, ImageError>;

impl Context {
    /// Where a source image may come from, in order of preference: the row's
    /// `local_input_image`, the extracted Open Images file, then the URL (after `--map-url`).
    fn source_chain(&self, row: &ParsedRow) -> Vec<Location> {
        let mut chain = Vec::new();
        if let Some(p) = row
            .local_input_image
            .as_deref()
            .and_then(|l| self.resolver.local_input_image(l))
        {
            chain.push(Location::Local(p));
        }
        if let Some(p) = self
            .openimages
            .as_ref()
            .and_then(|o| o.file(&row.source_url))
        {
            chain.push(Location::Local(p));
        }
        if let Ok(loc) = self.resolver.url(&row.source_url) {
            chain.push(loc);
        }
        chain
    }

    async fn image(&self, chain: Vec<Location>) -> ImageResult {
        let mut last = ImageError {
            reason: "unsafe-path".into(),
            detail: "no usable location".into(),
            url: String::new(),
        };
        for loc in chain {
            let url = loc.describe();
            match self.fetcher.get(&loc).await {
                Ok(data) => return self.check(data, url).await,
                Err(e) => {
                    last = ImageError {
                        reason: e.reason(),
                        detail: e.detail(self.max_bytes()),
                        url,
                    };
                    // Only a missing local copy falls through to the next place.
                    if !matches!(e, FetchError::Missing(_)) {
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    fn max_bytes(&self) -> u64 {
        self.fetcher.max_image_bytes()
    }

    async fn check(&self, data: Bytes, url: String) -> ImageResult {
        let invalid = |e: crate::Error, url: String| ImageError {
            reason: "invalid-image".into(),
            detail: e.to_string(),
            url,
        };
        if self.validate == Validate::Decode {
            let d = data.clone();
            let decoded = tokio::task::spawn_blocking(move || crate::probe::decode(&d).map(|_| ()))
                .await
                .unwrap_or_else(|e| {
                    Err(crate::Error::bug(format!(
                        "the image decoder panicked: {e}"
                    )))
                });
            if let Err(e) = decoded {
                return Err(invalid(e, url));
            }
        }
        Image::from_bytes(data).map_err(|e| invalid(e, url))
    }

    pub async fn batch(self: Arc<Self>, rows: Vec<(u64, PlanRow)>) -> Vec<RowOutcome> {
        // Read and parse the rows again (the plan holds offsets only).
        let parsed: Vec<Result<ParsedRow, Failure>> = rows
            .iter()
            .map(|(_, r)| {
                let path = &self.inputs[&r.subset];
                let bytes = read_line_at(path, r.offset, r.len).map_err(|e| {
                    Failure::new(
                        r.subset,
                        r.line,
                        "bad-row",
                        format!("cannot read the line again: {e}"),
                    )
                })?;
                rows::parse_row(r.subset, r.line, &bytes).map_err(|e| {
                    Failure::new(
                        r.subset,
                        r.line,
                        "bad-row",
                        format!("the line changed since planning: {}", e.detail),
                    )
                })
            })
            .collect();

        // Every distinct place, fetched once, concurrently.
        let mut wanted: Vec<Vec<Location>> = Vec::new();
        let mut slot: HashMap<Vec<Location>, usize> = HashMap::new();
        let mut want = |chain: Vec<Location>| -> usize {
            let next = wanted.len();
            *slot.entry(chain.clone()).or_insert_with(|| {
                wanted.push(chain);
                next
            })
        };
        let mut row_slots: Vec<Option<(usize, Vec<usize>)>> = Vec::new();
        for p in &parsed {
            let Ok(row) = p else {
                row_slots.push(None);
                continue;
            };
            let source = want(self.source_chain(row));
            let edits = row
                .edited_refs()
                .map(|r| want(self.resolver.release_ref(r).into_iter().collect()))
                .collect();
            row_slots.push(Some((source, edits)));
        }
        let images: Vec<ImageResult> =
            join_all(wanted.iter().cloned().map(|chain| self.image(chain))).await;

        let mut out = Vec::with_capacity(rows.len());
        for (((index, plan_row), parsed), slots) in rows.into_iter().zip(parsed).zip(row_slots) {
            let http_urls = slots
                .iter()
                .flat_map(|(s, e)| std::iter::once(s).chain(e.iter()))
                .flat_map(|&i| wanted[i].iter())
                .filter_map(|l| match l {
                    Location::Http(u) => Some(u.clone()),
                    Location::Local(_) => None,
                })
                .collect();
            let result = match (parsed, slots) {
                (Err(f), _) => Err(f),
                (Ok(row), Some((source, edits))) => self.record(
                    row,
                    &images[source],
                    edits.iter().map(|&i| &images[i]).collect(),
                ),
                (Ok(_), None) => unreachable!("slots exist for every parsed row"),
            };
            out.push(RowOutcome {
                index,
                group: plan_row.group,
                result,
                http_urls,
            });
        }
        out
    }

    fn record(
        &self,
        row: ParsedRow,
        source: &ImageResult,
        edits: Vec<&ImageResult>,
    ) -> Result<Record, Failure> {
        let fail = |e: &ImageError| {
            Err(
                Failure::new(row.subset, row.line, e.reason.clone(), e.detail.clone())
                    .id(Some(row.id.clone()))
                    .url(Some(e.url.clone())),
            )
        };
        let mut source = match source {
            Ok(i) => i.clone(),
            Err(e) => return fail(e),
        };
        if let Some(e) = edits.iter().find_map(|r| r.as_ref().err()) {
            return fail(e);
        }
        let mut edits = edits.into_iter().filter_map(|r| r.as_ref().ok());
        source.url = Some(row.source_url.clone());
        source.rotation = self
            .openimages
            .as_ref()
            .and_then(|o| o.entry(&row.source_url))
            .and_then(|e| e.rotation);
        let mut turns = Vec::with_capacity(row.turns.len());
        for t in &row.turns {
            let mut output = edits.next().expect("one image per reference").clone();
            output.path = Some(t.output.clone());
            let rejected = t
                .rejected
                .iter()
                .map(|written| {
                    let mut r = edits.next().expect("one image per reference").clone();
                    r.path = Some(written.clone());
                    r
                })
                .collect();
            turns.push(Turn {
                instruction: t.instruction.clone(),
                short_instruction: t.short_instruction.clone(),
                category: t
                    .edit_type
                    .as_deref()
                    .and_then(edit_types::category)
                    .map(str::to_string),
                edit_type: t.edit_type.clone(),
                output,
                rejected,
            });
        }
        let mut record = Record::new(row.id.clone(), row.subset.kind(), source, turns);
        record.provenance = Provenance {
            subset: Some(row.subset.name().to_string()),
            file: Some(row.subset.file().to_string()),
            line: Some(row.line),
            licence: Some(LICENCE.to_string()),
        };
        record.extras = row.extras.clone();
        if let Some(scores) = &self.scores {
            if let Err(e) = scores.apply(&mut record) {
                return Err(Failure::new(row.subset, row.line, "bad-scores", e).id(Some(row.id)));
            }
        }
        Ok(record)
    }
}
