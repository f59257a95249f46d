//! A record whose image bytes hold a complete, valid group frame of another shard, holding a
//! record (`sft/smuggled`) that is in no dataset: what a resynchronising reader (`repair`)
//! must never take for a record of the shard it salvages.

use bytes::Bytes;
use editshard::record::{Image, Record};
use editshard::shard::{RandomAccessShard, ShardWriter, WriterOptions};

use crate::records;

/// The id of the record inside the smuggled frame.
pub const SMUGGLED_ID: &str = "sft/smuggled";
/// The id of the record carrying it in an image.
pub const CARRIER_ID: &str = "sft/carrier";

/// The bytes of a group frame holding `sft/smuggled`: the first frame of a format 1.0 shard
/// (no dictionary, so the frame reads back in any shard) written with that record alone.
pub fn smuggled_frame() -> Vec<u8> {
    let mut record = records::sft(99, 99);
    record.id = SMUGGLED_ID.to_string();
    let options = WriterOptions {
        minor_version: 0,
        ..WriterOptions::default()
    };
    let mut w = ShardWriter::with_options(Vec::new(), options).unwrap();
    w.append(&record).unwrap();
    let bytes = w.finish().unwrap().0;
    let shard = RandomAccessShard::open(Bytes::from(bytes.clone()), "smuggled").unwrap();
    let frame = shard.index().frames()[0];
    bytes[frame.offset as usize..(frame.offset + frame.len) as usize].to_vec()
}

/// The record `sft/carrier`: its edited image is a few bytes of PNG-looking data followed by
/// [`smuggled_frame`] (its SHA-256 and CRCs are those of these bytes: the record is valid).
pub fn carrier() -> Record {
    let mut record = records::sft(7, 7);
    record.id = CARRIER_ID.to_string();
    let mut data = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    data.extend_from_slice(&smuggled_frame());
    data.extend_from_slice(b"IEND");
    record.turns[0].output = Image::with_info(Bytes::from(data), "image/png".to_string(), 48, 32);
    record
}

/// [`carrier`], a record sharing its source image (so in its group, after it: a shard cut at
/// the end of the carrier's image is cut inside a frame), then [`records::mixed`].
pub fn records_with_carrier() -> Vec<Record> {
    let carrier = carrier();
    let mut sibling = records::sft(8, 8);
    sibling.id = "sft/sibling".to_string();
    sibling.source = carrier.source.clone();
    let mut all = vec![carrier, sibling];
    all.extend(records::mixed());
    all
}

/// Where the carrier's edited image (the one holding the frame) is in `shard`, and the frame
/// that holds it.
pub fn carrier_image_and_frame<R: editshard::shard::ReadAt>(
    shard: &RandomAccessShard<R>,
) -> (std::ops::Range<u64>, std::ops::Range<u64>) {
    let index = shard.index();
    let i = index
        .position(CARRIER_ID)
        .expect("the shard holds the carrier");
    let image = shard.view().image_range(i, 1).unwrap();
    let frame = index.frames()[index.record(i).frame as usize];
    (image, frame.offset..frame.offset + frame.len)
}
