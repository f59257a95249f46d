//! `editshard repair`: a damaged dataset (a flipped image byte, a shard cut short, a missing
//! shard) becomes a new, valid dataset with every intact record; each loss is reported on
//! stderr and in `repair-report.json` with shard, offsets and ids; `verify` points to it.

use std::fs;
use std::path::Path;

use editshard::manifest::Manifest;
use editshard::record::{Image, Kind, Record, Turn};
use editshard::shard::RandomAccessShard;
use editshard::write::DatasetWriter;
use editshard_tools::cli::{editshard, s, text};
use editshard_tools::convert_support::records as records_in;

fn png(w: u32, shade: u8) -> Image {
    let img = image::RgbImage::from_pixel(w, 3, image::Rgb([shade, 255 - shade, 7]));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    Image::from_bytes(out.into()).unwrap()
}

fn records() -> Vec<Record> {
    (0..12u32)
        .map(|i| {
            Record::new(
                format!("sft/{i}.png"),
                Kind::Sft,
                png(4 + i, i as u8),
                vec![Turn::new(png(3, 100 + i as u8))],
            )
        })
        .collect()
}

fn dataset(dir: &Path) -> Manifest {
    let mut w = DatasetWriter::create(dir).unwrap().target_shard_bytes(1200);
    for r in records() {
        w.append(&r).unwrap();
    }
    let m = w.finish().unwrap();
    assert!(m.shards.len() >= 3, "{} shards", m.shards.len());
    m
}

#[test]
fn an_intact_dataset_repairs_to_the_same_records_with_exit_0() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    dataset(&src);
    let o = editshard(crate::BIN, &["repair", s(&src), "--out", s(&dst)]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(records_in(&dst), records());
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(dst.join("repair-report.json")).unwrap()).unwrap();
    assert_eq!(report["recovered"], 12);
    assert_eq!(report["losses"].as_array().unwrap().len(), 0);
}

/// `--out` must be new or empty: a directory holding anyone's files (a shard, a report) is
/// refused and left as it was.
#[test]
fn a_destination_holding_files_is_refused_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    dataset(&src);
    fs::create_dir_all(&dst).unwrap();
    fs::write(dst.join("shard-00000.esd"), b"foreign").unwrap();
    let o = editshard(crate::BIN, &["repair", s(&src), "--out", s(&dst)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("shard-00000.esd"), "{}", text(&o));
    assert_eq!(fs::read(dst.join("shard-00000.esd")).unwrap(), b"foreign");
    assert_eq!(fs::read_dir(&dst).unwrap().count(), 1);
}

#[test]
fn a_damaged_dataset_repairs_to_every_intact_record_and_names_the_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    let m = dataset(&src);
    let all = records();
    // Shard 0: one byte of one record's edited image flipped.
    let shard0 = src.join(&m.shards[0].path);
    let index = RandomAccessShard::open(fs::File::open(&shard0).unwrap(), "s0")
        .unwrap()
        .index()
        .clone();
    let victim = index.record(0).id.to_string();
    let blob = index.blob(index.record_blobs(0)[1]);
    let mut bytes = fs::read(&shard0).unwrap();
    bytes[blob.offset as usize + 5] ^= 0xff;
    fs::write(&shard0, &bytes).unwrap();
    // Shard 1: cut inside its last group frame (the index and trailer go with it).
    let shard1 = src.join(&m.shards[1].path);
    let index1 = RandomAccessShard::open(fs::File::open(&shard1).unwrap(), "s1")
        .unwrap()
        .index()
        .clone();
    let last = *index1.frames().last().unwrap();
    let cut: Vec<String> = index1
        .records()
        .filter(|r| r.frame as usize == index1.frames().len() - 1)
        .map(|r| r.id.to_string())
        .collect();
    let bytes = fs::read(&shard1).unwrap();
    fs::write(&shard1, &bytes[..(last.offset + last.len / 2) as usize]).unwrap();

    // verify finds the damage and points to repair.
    let o = editshard(crate::BIN, &["verify", s(&src)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("editshard repair"), "{}", text(&o));

    let o = editshard(crate::BIN, &["repair", s(&src), "--out", s(&dst)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.lines().any(|l| l.starts_with("LOST")
            && l.contains(&m.shards[0].path)
            && l.contains(&format!("{victim:?}"))),
        "{err}"
    );
    assert!(
        err.lines().any(|l| l.starts_with("LOST")
            && l.contains(&m.shards[1].path)
            && l.contains("bytes ")),
        "{err}"
    );
    // The new dataset is valid and holds every record but the damaged and the cut ones.
    let o = editshard(crate::BIN, &["verify", s(&dst)]);
    assert!(o.status.success(), "{}", text(&o));
    let want: Vec<Record> = all
        .iter()
        .filter(|r| r.id != victim && !cut.contains(&r.id))
        .cloned()
        .collect();
    assert_eq!(records_in(&dst), want);
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(dst.join("repair-report.json")).unwrap()).unwrap();
    assert_eq!(report["recovered"], want.len());
    let losses = report["losses"].as_array().unwrap();
    let named: Vec<&str> = losses
        .iter()
        .flat_map(|l| l["records"].as_array().unwrap())
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(named, [victim.as_str()], "{losses:?}");
    assert!(
        losses
            .iter()
            .any(|l| l["shard"] == m.shards[1].path.as_str() && l["unknown_records"] == true),
        "{losses:?}"
    );
    // Repairing into a dataset again is refused (never overwritten).
    let o = editshard(crate::BIN, &["repair", s(&src), "--out", s(&dst)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn a_missing_manifest_or_shard_is_reported_and_the_rest_salvaged() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    let m = dataset(&src);
    let gone = records_in(&src)
        .into_iter()
        .skip(m.shards[0].records as usize)
        .take(m.shards[1].records as usize)
        .map(|r| r.id)
        .collect::<Vec<_>>();
    fs::remove_file(src.join(&m.shards[1].path)).unwrap();
    fs::remove_file(src.join("manifest.json")).unwrap();
    let o = editshard(crate::BIN, &["repair", s(&src), "--out", s(&dst)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("manifest"), "{}", text(&o));
    let got: Vec<String> = records_in(&dst).into_iter().map(|r| r.id).collect();
    let want: Vec<String> = records()
        .into_iter()
        .map(|r| r.id)
        .filter(|id| !gone.contains(id))
        .collect();
    assert_eq!(got, want);
}

/// A shard cut short just after an image whose bytes hold a valid frame of `sft/smuggled`:
/// `repair` exits 1, reports the cut frame as LOST, and the new dataset (which `verify`
/// passes) holds no record that was not in the source.
#[test]
fn a_frame_inside_an_image_is_not_repaired_into_a_record() {
    use editshard_tools::smuggle;
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    let mut w = DatasetWriter::create(&src).unwrap();
    for r in smuggle::records_with_carrier() {
        w.append(&r).unwrap();
    }
    let m = w.finish().unwrap();
    let shard = src.join(&m.shards[0].path);
    let opened = RandomAccessShard::open(fs::File::open(&shard).unwrap(), "s").unwrap();
    let (image, _) = smuggle::carrier_image_and_frame(&opened);
    let bytes = fs::read(&shard).unwrap();
    fs::write(&shard, &bytes[..image.end as usize]).unwrap();

    let o = editshard(crate::BIN, &["repair", s(&src), "--out", s(&dst)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .any(|l| l.starts_with("LOST") && l.contains(&m.shards[0].path)),
        "{}",
        text(&o)
    );
    let ids: Vec<String> = records_in(&dst).into_iter().map(|r| r.id).collect();
    assert!(!ids.iter().any(|id| id == smuggle::SMUGGLED_ID), "{ids:?}");
    let o = editshard(crate::BIN, &["verify", s(&dst)]);
    assert!(o.status.success(), "{}", text(&o));
}
