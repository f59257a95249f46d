//! The bodies of the Hub Parquet fuzz targets, shared by the cargo-fuzz binaries
//! (`fuzz_targets/hub_*.rs`) and by `crates/hub/tests/fuzz_replay.rs`, which replays the
//! seeds (`fuzz/seeds/hub_*`) and every kept input (`crates/hub/tests/fuzz-regressions/`)
//! on the stable toolchain. A target returns normally on any input; a panic is a bug.

#![allow(dead_code)]

use std::ops::ControlFlow;

use bytes::Bytes;
use editshard_hub::Mapping;
use editshard_hub::reader::{Delivery, ParquetFile, ReadLimits};
use editshard_hub::records::{Builder, Out};
use editshard_hub::source::Object;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};

/// A fuzz target: it takes arbitrary bytes and must neither panic nor hang.
pub type Target = fn(&[u8]);

/// Every target by name, for the replay.
pub const TARGETS: &[(&str, Target)] =
    &[("hub_footer", hub_footer), ("hub_row_group", hub_row_group)];

/// A file's footer on arbitrary bytes: the bounded check, then (if it passes) the `parquet`
/// crate's decoding and the Arrow schema built from it.
pub fn hub_footer(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(meta) = editshard_hub::footer::load(&bytes) {
        let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
        let _ = ArrowReaderMetadata::try_new(meta, options);
    }
    // The metadata alone, as if it were a whole footer (the check on any bytes).
    let _ = editshard_hub::footer::check(data, data.len() as u64);
}

/// Small limits: a fuzz input may ask for no more than a few MiB.
pub const LIMITS: ReadLimits = ReadLimits {
    batch_bytes: 1 << 20,
    max_cell: 4 << 20,
};

/// The mappings a fuzzed file is tried with: the hand-made seeds' columns, then two presets.
pub fn mappings() -> Vec<Mapping> {
    let own = "name = \"fuzz\"\nid = \"id\"\nsource = \"before\"\noutput = \"after\"\n\
               optional = [\"id\"]\n";
    let mut out = vec![Mapping::parse(own, "fuzz").expect("the fuzz mapping parses")];
    for p in ["magicbrush", "instructpix2pix"] {
        out.push(Mapping::preset(p).expect("a preset"));
    }
    out
}

/// A whole file through the converter's reading path: footer, schema check, every row group
/// page by page within small limits, and every row into records (sessions included).
pub fn hub_row_group(data: &[u8]) {
    let object = Object::from_bytes(Bytes::copy_from_slice(data));
    for mapping in mappings() {
        let Ok(file) = ParquetFile::open(object.clone(), 0, "fuzz.parquet", &mapping) else {
            continue;
        };
        let mut builder = Builder::new(mapping.clone(), None);
        if mapping.session.is_some() {
            let mut index = editshard_hub::sessions::SessionIndex::default();
            let key = mapping
                .session
                .as_ref()
                .map(|s| s.key.clone())
                .unwrap_or_default();
            for rg in 0..file.row_groups() {
                let _ = file.read_column(rg, &key, LIMITS, |d| {
                    if let Delivery::Row(r) = d
                        && let Some(k) = r.cells.first().and_then(|(_, c)| c.as_key())
                    {
                        index.add(k, r.pos.row);
                    }
                    Ok(ControlFlow::Continue(()))
                });
            }
            builder = builder.with_sessions(std::sync::Arc::new(index), LIMITS.batch_bytes);
        }
        let mut outs = Vec::new();
        for rg in 0..file.row_groups() {
            let _ = file.read_row_group(rg, 0, LIMITS, |d| {
                if let Delivery::Row(r) = d {
                    let ordinal = r.pos.row;
                    builder.push(r, ordinal, &mut outs);
                }
                Ok(ControlFlow::Continue(()))
            });
            builder.passed(file.first_row(rg) + file.rows_in(rg), &mut outs);
            outs.retain(|o| !matches!(o, Out::Reread { .. }));
        }
        builder.finish(u64::MAX, &mut outs);
        return;
    }
}
