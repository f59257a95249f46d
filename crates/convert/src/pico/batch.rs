//! One batch of rows (one source, consecutive in the plan): read the rows again, get every
//! distinct image once, validate it, and build the records, in plan order.
//!
//! Everything a batch produces depends only on the rows and the image bytes, never on timing,
//! so batches may finish in any order: the caller consumes them in plan order.
//!
//! A batch holds no image bytes: images stay on disk (the download cache or the local file)
//! and a record leaves the batch as a [`PendingRecord`], whose bytes are read only when the
//! writer takes it. However many batches are in flight, memory holds one record's images.

// A failed row is an ordinary outcome here, not an exceptional one: boxing it would only
// add an allocation per failure.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::future::join_all;
use tokio::sync::Semaphore;

use super::fetch::{FetchError, Fetched, Fetcher, Stamp};
use super::openimages::OpenImages;
use super::plan::{PlanRow, read_line_at};
use super::resolve::{Location, Resolver};
use super::scores::Scores;
use crate::failures::Failure;
use editshard::record::{Image, Provenance, Record, Turn};
use editshard_pico::edit_types;
use editshard_pico::rows::{self, ParsedRow, Subset};

/// The licence string stored with every record and in the manifest.
pub const LICENCE: &str = "CC BY-NC-ND 4.0 (edits); CC BY 2.0 (source images)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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
    /// Full decodes at once (`--validate decode`): each may hold a whole decoded image.
    pub decodes: Semaphore,
    /// HTTP URLs of rows not yet written, with how many such rows use each: their cache
    /// entries must stay until those rows take their bytes ([`Context::in_use`]).
    pub pending_urls: Mutex<HashMap<String, usize>>,
}

pub struct RowOutcome {
    /// Index of the row in the plan.
    pub index: u64,
    pub group: u32,
    pub result: Result<PendingRecord, Failure>,
    /// HTTP URLs this row read (their cache entries can go once its shard is published).
    /// Held in [`Context::pending_urls`] until [`Context::done_with`] is called.
    pub http_urls: Vec<String>,
}

/// A record whose image bytes are still on disk, in [`Record::images`] order.
pub struct PendingRecord {
    pub record: Record,
    files: Vec<ImageFile>,
    subset: Subset,
    line: u64,
}

/// Where an image's bytes are, and what to check when reading them.
#[derive(Debug, Clone)]
struct ImageFile {
    path: PathBuf,
    len: u64,
    stamp: Option<Stamp>,
}

impl PendingRecord {
    /// Reads the images into the record. The bytes were hashed as they arrived; what is
    /// checked here is that they are still those bytes: the length, and for a local file
    /// (not ours) also its modification time.
    pub fn load(mut self) -> Result<Record, Failure> {
        let fail = |detail: String| {
            Failure::new(self.subset, self.line, "missing-file", detail)
                .id(Some(self.record.id.clone()))
        };
        let mut loaded = Vec::with_capacity(self.files.len());
        for f in &self.files {
            if let Some(stamp) = &f.stamp {
                stamp.check(&f.path).map_err(fail)?;
            }
            let data =
                std::fs::read(&f.path).map_err(|e| fail(format!("{}: {e}", f.path.display())))?;
            if data.len() as u64 != f.len {
                return Err(fail(format!(
                    "{} changed while it was being converted",
                    f.path.display()
                )));
            }
            loaded.push(Bytes::from(data));
        }
        for (image, data) in self.record.images_mut().zip(loaded) {
            image.data = Some(data);
        }
        Ok(self.record)
    }
}

impl Context {
    /// Marks `urls` as needed by a row not yet written.
    fn hold(&self, urls: &[String]) {
        let mut held = self.pending_urls.lock().unwrap_or_else(|e| e.into_inner());
        for u in urls {
            *held.entry(u.clone()).or_insert(0) += 1;
        }
    }

    /// The row that held `urls` has been written (or failed).
    pub fn done_with(&self, urls: &[String]) {
        let mut held = self.pending_urls.lock().unwrap_or_else(|e| e.into_inner());
        for u in urls {
            if let Some(n) = held.get_mut(u) {
                *n -= 1;
                if *n == 0 {
                    held.remove(u);
                }
            }
        }
    }

    /// Whether a row not yet written still needs `url`'s cache entry.
    pub fn in_use(&self, url: &str) -> bool {
        let held = self.pending_urls.lock().unwrap_or_else(|e| e.into_inner());
        held.contains_key(url)
    }
}

/// An image checked and described; its bytes still on disk.
#[derive(Clone)]
struct Located {
    image: Image,
    file: ImageFile,
}

/// What failed for one image: the reason code, the detail and the URL or path.
#[derive(Clone)]
struct ImageError {
    reason: String,
    detail: String,
    url: String,
}

type ImageResult = Result<Located, ImageError>;

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

    async fn check(&self, fetched: Fetched, url: String) -> ImageResult {
        let invalid = |e: editshard::Error, url: String| ImageError {
            reason: "invalid-image".into(),
            detail: e.to_string(),
            url,
        };
        if self.validate == Validate::Decode {
            let _permit = self.decodes.acquire().await.expect("never closed");
            let path = fetched.path.clone();
            let decoded = read_then(path, |d| editshard::probe::decode(&d).map(|_| ())).await;
            if let Err(e) = decoded {
                return Err(invalid(e, url));
            }
        }
        let info = match editshard::image_info::probe(&fetched.head) {
            Ok(info) => info,
            // The header runs past the head kept in memory (a JPEG whose metadata segments
            // are larger than that): probe the whole file, once.
            Err(_) if (fetched.head.len() as u64) < fetched.len => {
                read_then(fetched.path.clone(), |d| editshard::image_info::probe(&d))
                    .await
                    .map_err(|e| invalid(e, url.clone()))?
            }
            Err(e) => return Err(invalid(e, url)),
        };
        let mut image = Image::with_info(
            Bytes::new(),
            info.media_type.to_string(),
            info.width,
            info.height,
        );
        image.len = fetched.len;
        image.sha256 = fetched.sha256;
        image.data = None;
        Ok(Located {
            image,
            file: ImageFile {
                path: fetched.path,
                len: fetched.len,
                stamp: fetched.stamp,
            },
        })
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
        // Every row's URLs are held before anything is fetched: a cache entry found now must
        // still be there when the row is written.
        let row_urls: Vec<Vec<String>> = row_slots
            .iter()
            .map(|slots| {
                slots
                    .iter()
                    .flat_map(|(s, e)| std::iter::once(s).chain(e.iter()))
                    .flat_map(|&i| wanted[i].iter())
                    .filter_map(|l| match l {
                        Location::Http(u) => Some(u.clone()),
                        Location::Local(_) => None,
                    })
                    .collect()
            })
            .collect();
        for urls in &row_urls {
            self.hold(urls);
        }
        let images: Vec<ImageResult> =
            join_all(wanted.iter().cloned().map(|chain| self.image(chain))).await;

        let mut out = Vec::with_capacity(rows.len());
        for ((((index, plan_row), parsed), slots), http_urls) in
            rows.into_iter().zip(parsed).zip(row_slots).zip(row_urls)
        {
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
    ) -> Result<PendingRecord, Failure> {
        let fail = |e: &ImageError| {
            Err(
                Failure::new(row.subset, row.line, e.reason.clone(), e.detail.clone())
                    .id(Some(row.id.clone()))
                    .url(Some(e.url.clone())),
            )
        };
        let source = match source {
            Ok(i) => i,
            Err(e) => return fail(e),
        };
        if let Some(e) = edits.iter().find_map(|r| r.as_ref().err()) {
            return fail(e);
        }
        // Files in `Record::images` order: the source, then each turn's output and rejected.
        let mut files = vec![source.file.clone()];
        let mut source = source.image.clone();
        let mut edits = edits.into_iter().filter_map(|r| r.as_ref().ok());
        source.url = Some(row.source_url.clone());
        source.rotation = self
            .openimages
            .as_ref()
            .and_then(|o| o.entry(&row.source_url))
            .and_then(|e| e.rotation);
        let mut turns = Vec::with_capacity(row.turns.len());
        for t in &row.turns {
            let located = edits.next().expect("one image per reference");
            files.push(located.file.clone());
            let mut output = located.image.clone();
            output.path = Some(t.output.clone());
            let rejected = t
                .rejected
                .iter()
                .map(|written| {
                    let located = edits.next().expect("one image per reference");
                    files.push(located.file.clone());
                    let mut r = located.image.clone();
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
                mask: None,
                instruction_variants: Vec::new(),
            });
        }
        let mut record = Record::new(row.id.clone(), row.subset.kind(), source, turns);
        record.provenance = Provenance {
            subset: Some(row.subset.name().to_string()),
            file: Some(row.subset.file().to_string()),
            line: Some(row.line),
            licence: Some(LICENCE.to_string()),
            ..Provenance::default()
        };
        record.extras = row.extras.clone();
        if let Some(scores) = &self.scores {
            if let Err(e) = scores.apply(&mut record) {
                return Err(Failure::new(row.subset, row.line, "bad-scores", e).id(Some(row.id)));
            }
        }
        Ok(PendingRecord {
            record,
            files,
            subset: row.subset,
            line: row.line,
        })
    }
}

/// Reads a whole image file on a blocking thread and hands the bytes to `f` (a probe or a
/// decode); the bytes are dropped when it returns.
async fn read_then<T: Send + 'static>(
    path: PathBuf,
    f: impl FnOnce(Vec<u8>) -> editshard::Result<T> + Send + 'static,
) -> editshard::Result<T> {
    tokio::task::spawn_blocking(move || {
        let data = std::fs::read(&path)
            .map_err(|e| editshard::Error::from(e).in_shard(path.display().to_string()))?;
        f(data)
    })
    .await
    .unwrap_or_else(|e| {
        Err(editshard::Error::bug(format!(
            "an image check panicked: {e}"
        )))
    })
}
