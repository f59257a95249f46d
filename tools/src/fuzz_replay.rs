//! Replaying fuzz inputs on the stable toolchain: every file in a target's folders (kept
//! inputs that once crashed, and the seeds) through the target's body, as cargo-fuzz runs it.
//! The format's and the Hub's replay tests share it.

use std::path::{Path, PathBuf};

/// A fuzz target's body: takes any bytes, returns normally unless it found a bug.
pub type Target = fn(&[u8]);

/// Runs every file of `folders(name)` through each target, failing (naming the target and the
/// file) if one panics; a folder that does not exist is passed over. Returns how many inputs
/// ran, for the caller to check against a silently empty replay (a moved folder).
pub fn replay(targets: &[(&str, Target)], folders: impl Fn(&str) -> Vec<PathBuf>) -> usize {
    let mut replayed = 0;
    for (name, target) in targets {
        for dir in folders(name) {
            replayed += replay_folder(name, *target, &dir);
        }
    }
    replayed
}

/// Runs every file in `dir` through `target`; returns how many.
fn replay_folder(name: &str, target: Target, dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut replayed = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| target(&data));
        assert!(outcome.is_ok(), "{name} panicked on {}", path.display());
        replayed += 1;
    }
    replayed
}
