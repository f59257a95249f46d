//! Sizes for people: `1.2 kB`, `3.4 MB`, `5.6 GB` (decimal units, as disks and networks
//! are sold).

/// `1.2 kB`, `3.4 MB`, `5.6 GB`.
pub fn human_bytes(b: u64) -> String {
    let b = b as f64;
    if b < 1e6 {
        format!("{:.1} kB", b / 1e3)
    } else if b < 1e9 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.2} GB", b / 1e9)
    }
}
