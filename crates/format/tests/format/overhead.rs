//! The format's own cost per record, framing and index together, stays under 64 bytes (the
//! format issue's requirement 5): everything in a shard that is neither a metadata block, nor
//! image bytes, nor the record id once.

use editshard_tools::records;

use bytes::Bytes;
use editshard_format::Record;
use editshard_format::shard::RandomAccessShard;
use editshard_format::shard::ShardWriter;

fn overhead_per_record(records: &[Record]) -> f64 {
    let mut w = ShardWriter::new(Vec::new()).unwrap();
    for r in records {
        w.append(r).unwrap();
    }
    let bytes = w.finish().unwrap().0;
    let shard = RandomAccessShard::open(Bytes::from(bytes.clone()), "o.esd").unwrap();
    let index = shard.index();
    let payload: u64 = index
        .records()
        .map(|r| u64::from(r.meta_len) + r.id.len() as u64)
        .sum::<u64>()
        + index.blobs().map(|b| u64::from(b.len)).sum::<u64>();
    (bytes.len() as u64 - payload) as f64 / records.len() as f64
}

#[test]
fn single_turn_records_cost_under_64_bytes_each() {
    // Release-like ids and one group per record: the worst case, no sharing.
    let records: Vec<Record> = (0..2000).map(|n| records::sft(n, n)).collect();
    let per = overhead_per_record(&records);
    println!("sft, no sharing: {per:.1} bytes of framing and index per record");
    assert!(per < 64.0, "{per:.1} bytes per record");
}

#[test]
fn mixed_records_cost_under_64_bytes_each() {
    let records: Vec<Record> = (0..400)
        .flat_map(|n| {
            vec![
                records::sft(n, n),
                records::preference(n, n, 2),
                records::multi_turn(n, n, 3),
            ]
        })
        .collect();
    let per = overhead_per_record(&records);
    println!("sft + preference + multi-turn, shared sources: {per:.1} bytes per record");
    assert!(per < 64.0, "{per:.1} bytes per record");
}
