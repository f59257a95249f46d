//! Replays the Hub fuzz targets' seeds (`fuzz/seeds/hub_*`) and every kept input
//! (`crates/hub/tests/fuzz-regressions/TARGET/*`) through the bodies cargo-fuzz runs
//! (`fuzz/hub_targets.rs`), on the stable toolchain: inputs that once crashed stay fixed.

#[path = "../../../fuzz/hub_targets.rs"]
mod hub_targets;

use std::path::Path;

#[test]
fn every_seed_and_kept_input_runs_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")); // crates/hub
    let mut replayed = 0;
    for (name, target) in hub_targets::TARGETS {
        for dir in [
            root.join("tests/fuzz-regressions").join(name),
            root.join("../../fuzz/seeds").join(name),
        ] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{name} panicked on {}", path.display());
                replayed += 1;
            }
        }
    }
    // A moved directory would otherwise pass silently.
    assert!(replayed >= 10, "only {replayed} inputs replayed");
}

#[test]
fn every_row_group_seed_opens_and_reads_rows() {
    use editshard_hub::reader::{Delivery, ParquetFile};
    use editshard_hub::source::Object;
    use std::ops::ControlFlow;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/hub_row_group");
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let object = Object::from_bytes(std::fs::read(&path).unwrap().into());
        let file = hub_targets::mappings()
            .iter()
            .find_map(|m| ParquetFile::open(object.clone(), 0, "seed", m).ok())
            .unwrap_or_else(|| panic!("no mapping opens {}", path.display()));
        let mut rows = 0;
        for rg in 0..file.row_groups() {
            let _: ControlFlow<()> = file
                .read_row_group(rg, 0, hub_targets::LIMITS, |d| {
                    assert!(matches!(d, Delivery::Row(_)), "{}: {d:?}", path.display());
                    rows += 1;
                    Ok(ControlFlow::Continue(()))
                })
                .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
                .unwrap();
        }
        assert!(rows >= 2, "{}: {rows} rows", path.display());
        seeds += 1;
    }
    assert!(seeds >= 8);
}

/// A few thousand mutations of every seed (flipped bits, overwritten and cut bytes) through
/// both targets on the stable toolchain: the smoke run's work in miniature, deterministic,
/// and in every `cargo test`.
#[test]
fn mutated_seeds_run_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/hub_row_group");
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    seeds.sort();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for (name, seed) in &seeds {
        for i in 0..1500 {
            let mut data = seed.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % data.len() as u64) as usize;
                match next() % 4 {
                    0 => data[at] ^= 1 << (next() % 8),
                    1 => data[at] = next() as u8,
                    2 => data[at] = [0, 0xff, 0x7f, 0x80][(next() % 4) as usize],
                    _ => data.truncate(at.max(1)),
                }
            }
            for (target, body) in hub_targets::TARGETS {
                let outcome = std::panic::catch_unwind(|| body(&data));
                if outcome.is_err() {
                    let kept = std::env::temp_dir().join(format!("hub-fuzz-{target}-{i}"));
                    std::fs::write(&kept, &data).unwrap();
                    panic!(
                        "{target} panicked on mutation {i} of {name} (kept in {})",
                        kept.display()
                    );
                }
            }
        }
    }
}
