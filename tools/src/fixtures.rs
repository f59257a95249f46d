//! Datasets for the reading tests, written with `DatasetWriter` from the deterministic
//! records of [`crate::records`].

use crate::records;

use std::path::Path;

use editshard::manifest::{MANIFEST_NAME, Manifest};
use editshard::record::Record;
use editshard::shard::WriterOptions;
use editshard::storage::Location;
use editshard::write::DatasetWriter;

/// `n` records cycling through the four kinds; every id is distinct. With `image_len`, every
/// image is replaced by one of that many bytes (same media type and size).
pub fn mixed(n: u32, image_len: Option<usize>) -> Vec<Record> {
    (0..n)
        .map(|k| {
            let mut r = match k % 4 {
                0 => records::sft(k, k),
                1 => records::preference(k, 10_000 + k, 2),
                2 => records::multi_turn(k, 20_000 + k, 2),
                _ => records::generic(k),
            };
            if let Some(len) = image_len {
                for (j, img) in r.images_mut().enumerate() {
                    let big = records::image(
                        k * 16 + j as u32,
                        &img.media_type,
                        img.width,
                        img.height,
                        len,
                    );
                    img.data = big.data;
                    img.len = big.len;
                    img.sha256 = big.sha256;
                }
            }
            r
        })
        .collect()
}

/// Writes `records` to `dir`, rolling shards at `shard_bytes`, at most `group_records` per
/// group.
pub fn write(dir: &Path, records: &[Record], shard_bytes: u64, group_records: usize) -> Manifest {
    let options = WriterOptions {
        max_group_records: group_records,
        ..WriterOptions::default()
    };
    let mut w = DatasetWriter::create(dir)
        .unwrap()
        .target_shard_bytes(shard_bytes)
        .writer_options(options);
    for r in records {
        w.append(r).unwrap();
    }
    w.finish().unwrap()
}

/// The record as a reader returns it with all images: same metadata and bytes.
pub fn same(a: &Record, b: &Record) -> bool {
    a == b && a.images().zip(b.images()).all(|(x, y)| x.data == y.data)
}

/// Uploads the dataset `manifest` describes, written in `dir`, to `loc`: shards first,
/// manifest last, as a reader must never see a manifest naming a missing shard.
pub async fn upload(loc: &Location, dir: &Path, manifest: &Manifest) {
    for s in &manifest.shards {
        loc.put_file(&s.path, &dir.join(&s.path))
            .await
            .unwrap_or_else(|e| panic!("upload {}: {e}", s.path));
    }
    loc.put_file(MANIFEST_NAME, &dir.join(MANIFEST_NAME))
        .await
        .unwrap_or_else(|e| panic!("upload {MANIFEST_NAME}: {e}"));
}
