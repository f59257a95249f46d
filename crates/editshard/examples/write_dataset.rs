//! Writing a dataset with the library: records built from image bytes (here, the bundled
//! sample release's Open Images copies stand in for sources and edits), written by a
//! [`DatasetWriter`] that rolls shards over at a size and writes `manifest.json` last, then
//! read back and checked.
//!
//! ```text
//! cargo run -p editshard --example write_dataset -- examples/sample-release/openimages/train_0 /tmp/my-shards
//! ```

use std::path::PathBuf;

use editshard::read::blocking::BlockingDataset;
use editshard::record::{Image, Kind, Record, Turn};
use editshard::storage::StorageOptions;
use editshard::write::DatasetWriter;

fn main() -> editshard::Result<()> {
    let mut args = std::env::args().skip(1);
    let images = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "examples/sample-release/openimages/train_0".into()),
    );
    let out = PathBuf::from(args.next().unwrap_or_else(|| "/tmp/my-shards".into()));

    let mut files: Vec<PathBuf> = std::fs::read_dir(&images)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();

    std::fs::create_dir_all(&out)?;
    let mut writer = DatasetWriter::create(&out)?.target_shard_bytes(64 << 20);
    // Pair each image with the next one: source and "edited" output of one SFT record.
    for pair in files.chunks_exact(2) {
        // `Image::from_bytes` reads the media type and size from the header and hashes the
        // bytes; anything that is not a JPEG, PNG or WebP is refused here.
        let source = Image::from_bytes(std::fs::read(&pair[0])?.into())?;
        let output = Image::from_bytes(std::fs::read(&pair[1])?.into())?;
        let mut turn = Turn::new(output);
        turn.instruction = Some("Make it look like the other photo".into());
        turn.edit_type = Some("Change overall color tone (warm ↔ cool)".into());
        let id = format!("example/{}", pair[1].file_name().unwrap().to_string_lossy());
        writer.append(&Record::new(id, Kind::Sft, source, vec![turn]))?;
    }
    let manifest = writer.finish()?;
    println!(
        "wrote {} records in {} shard(s) to {}",
        manifest.records,
        manifest.shards.len(),
        out.display()
    );

    // Read it back: every record decodes and every image matches its hash.
    let ds = BlockingDataset::open(out.to_str().unwrap(), &StorageOptions::default())?;
    for i in 0..manifest.records {
        let record = ds.get(i)?;
        for image in record.images() {
            image.check_data()?;
        }
    }
    println!("read back {} records: all bytes verified", manifest.records);
    Ok(())
}
