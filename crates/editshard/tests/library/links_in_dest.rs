//! Nothing is written through a symbolic link planted inside a destination: `mix` into a
//! `DEST/NAME/` holding a link where a shard's directory goes (or at a shard's own name), and
//! a `DatasetWriter` (convert, repair) whose shard directory is a link, are refused, and the
//! linked directory outside stays empty.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use editshard::mix::{MixOptions, MixSource, mix};
use editshard::storage::Location;
use editshard::write::DatasetWriter;

/// A dataset whose shards are under `part-0/` (as a split conversion writes them).
fn split_dataset(dir: &Path) -> Vec<String> {
    let mut w = DatasetWriter::create(dir)
        .unwrap()
        .shard_prefix("part-0/shard-")
        .target_shard_bytes(1);
    for r in editshard_tools::records::mixed() {
        w.append(&r).unwrap();
    }
    let m = w.finish().unwrap();
    m.shards.iter().map(|s| s.path.clone()).collect()
}

fn is_empty(dir: &Path) -> bool {
    fs::read_dir(dir).unwrap().next().is_none()
}

#[tokio::test]
async fn mix_refuses_a_link_planted_inside_dest_name() {
    for copy_only in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let (src, dest, outside) = (
            tmp.path().join("src"),
            tmp.path().join("dest"),
            tmp.path().join("outside"),
        );
        split_dataset(&src);
        fs::create_dir_all(dest.join("src")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        symlink(&outside, dest.join("src/part-0")).unwrap();
        let sources = [MixSource {
            name: "src".into(),
            given: src.display().to_string(),
            location: Location::local(&src),
        }];
        let opts = MixOptions {
            copy_only,
            ..MixOptions::default()
        };
        let e = mix(&sources, &Location::local(&dest), &opts)
            .await
            .expect_err("mix wrote through a link")
            .to_string();
        assert!(
            e.contains("symbolic link") && e.contains("part-0"),
            "copy_only {copy_only}: {e}"
        );
        assert!(
            is_empty(&outside),
            "copy_only {copy_only}: written outside DEST: {:?}",
            fs::read_dir(&outside).unwrap().collect::<Vec<_>>()
        );
        assert!(!dest.join("manifest.json").exists());
    }
}

#[tokio::test]
async fn mix_refuses_a_link_at_a_shards_name() {
    // A link to a copy of the very shard: read through, it would pass as already placed.
    let tmp = tempfile::tempdir().unwrap();
    let (src, dest, outside) = (
        tmp.path().join("src"),
        tmp.path().join("dest"),
        tmp.path().join("outside"),
    );
    let shards = split_dataset(&src);
    fs::create_dir_all(dest.join("src/part-0")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::copy(src.join(&shards[0]), outside.join("copy.esd")).unwrap();
    symlink(outside.join("copy.esd"), dest.join("src").join(&shards[0])).unwrap();
    let sources = [MixSource {
        name: "src".into(),
        given: src.display().to_string(),
        location: Location::local(&src),
    }];
    let e = mix(&sources, &Location::local(&dest), &MixOptions::default())
        .await
        .expect_err("a linked shard passed as placed")
        .to_string();
    assert!(e.contains("symbolic link"), "{e}");
}

#[test]
fn a_dataset_writer_refuses_a_linked_shard_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, outside) = (tmp.path().join("out"), tmp.path().join("outside"));
    fs::create_dir_all(&dir).unwrap();
    fs::create_dir_all(&outside).unwrap();
    symlink(&outside, dir.join("part-0")).unwrap();
    let mut w = DatasetWriter::create(&dir)
        .unwrap()
        .shard_prefix("part-0/shard-");
    let r = editshard_tools::records::mixed().remove(0);
    let e = w.append(&r).expect_err("wrote through a link").to_string();
    assert!(e.contains("symbolic link"), "{e}");
    assert!(is_empty(&outside));
}
