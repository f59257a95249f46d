//! Sizes for people: `1.2 kB`, `3.4 MB`, `5.6 GB` (decimal units, as disks and networks
//! are sold), and sizes from people (`512MiB`, `2GB`), as options take them.

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

/// `512MiB`, `2GB`, `64k`, `1000`: bytes (decimal `k`/`kB`, `M`/`MB`, `G`/`GB`; binary `KiB`,
/// `MiB`, `GiB`; case-insensitive), from 1 byte to 10^15.
pub fn parse_size(s: &str) -> crate::Result<u64> {
    use crate::Error;
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => {
            return Err(Error::invalid(format!(
                "size {s:?}: unknown unit (use e.g. 512MiB, 2GB)"
            )));
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| Error::invalid(format!("size {s:?} is not a number with a unit")))?;
    let bytes = n * mult as f64;
    if !(1.0..=1e15).contains(&bytes) {
        return Err(Error::invalid(format!("size {s:?} is out of range")));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_with_units() {
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size(" 2GB ").unwrap(), 2_000_000_000);
        assert_eq!(parse_size("1.5k").unwrap(), 1_500);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        for bad in ["", "0", "12 parsecs", "-1MB", "1e20"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }
}
