//! Repetition levels, counted before the `parquet` crate decodes a page of a repeated
//! (list) column: how many values each row (record) holds there. A list of 30 million
//! entries in one row takes a few bytes of run-length encoding; counted here, the row is
//! refused before anything is materialised.

/// Values (levels) one row of one column may hold.
pub const MAX_ROW_LEVELS: u64 = 1 << 20;

/// What the repetition levels of the pages read so far say about records.
#[derive(Debug, Default, Clone, Copy)]
pub struct RecordCounter {
    /// Levels of the record still open (it may go on in the next page).
    open: u64,
}

impl RecordCounter {
    /// Counts the levels of one page's RLE/bit-packed hybrid run `data` (`count` levels at
    /// `bit_width` bits); `Err` when a record reaches [`MAX_ROW_LEVELS`] or the data is
    /// short.
    pub fn count(&mut self, data: &[u8], bit_width: u8, count: u64) -> Result<(), String> {
        let mut seen = 0u64;
        runs(data, bit_width, count, |value, len| {
            seen += len;
            if value == 0 {
                // A new record starts at the first of these; each of the others starts one too.
                self.open = 1;
            } else {
                self.open += len;
            }
            if self.open > MAX_ROW_LEVELS {
                return Err(format!(
                    "a row holding more than {MAX_ROW_LEVELS} values (a list that long is not \
                     read)"
                ));
            }
            Ok(())
        })?;
        if seen < count {
            return Err(format!(
                "the repetition levels end after {seen} of {count} values"
            ));
        }
        Ok(())
    }
}

/// Calls `f(value, run_length)` for the runs of an RLE/bit-packed hybrid encoding of
/// `count` values (bit-packed groups as runs of one), stopping at `count`.
pub fn runs(
    data: &[u8],
    bit_width: u8,
    count: u64,
    mut f: impl FnMut(u32, u64) -> Result<(), String>,
) -> Result<(), String> {
    if bit_width > 32 {
        return Err(format!("a bit width of {bit_width}"));
    }
    let width = usize::from(bit_width);
    let value_bytes = width.div_ceil(8);
    let mut pos = 0usize;
    let mut done = 0u64;
    while done < count && pos < data.len() {
        let mut header = 0u64;
        let mut shift = 0;
        loop {
            let Some(&b) = data.get(pos) else {
                return Err("a run header cut short".into());
            };
            pos += 1;
            if shift > 56 {
                return Err("a run header longer than 64 bits".into());
            }
            header |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        if header & 1 == 0 {
            let len = (header >> 1).min(count - done);
            let Some(bytes) = data.get(pos..pos + value_bytes) else {
                return Err("a run's value cut short".into());
            };
            pos += value_bytes;
            let mut v = 0u32;
            for (i, b) in bytes.iter().enumerate() {
                v |= u32::from(*b) << (8 * i);
            }
            if len > 0 {
                f(v, len)?;
            }
            done += len;
        } else {
            let groups = header >> 1;
            let values = groups.saturating_mul(8);
            let bytes = groups.saturating_mul(width as u64);
            let available = (data.len() - pos) as u64;
            if bytes > available {
                return Err("a bit-packed run cut short".into());
            }
            let packed = &data[pos..pos + bytes as usize];
            pos += bytes as usize;
            let take = values.min(count - done);
            for i in 0..take as usize {
                let mut v = 0u32;
                for bit in 0..width {
                    let at = i * width + bit;
                    if packed[at / 8] >> (at % 8) & 1 == 1 {
                        v |= 1 << bit;
                    }
                }
                f(v, 1)?;
            }
            done += take;
        }
    }
    Ok(())
}

/// Checks `count` levels of an RLE/bit-packed hybrid run `data`: every run's bytes present,
/// every level at most `max` (the `parquet` crate's decoders index by them unchecked).
/// Returns how many are `max` (for definition levels: the values present).
pub fn check(data: &[u8], max: i16, count: u64) -> Result<u64, String> {
    let width = (16 - (max as u16).leading_zeros()) as u8;
    let (mut seen, mut at_max) = (0u64, 0u64);
    runs(data, width, count, |value, len| {
        if value > max as u32 {
            return Err(format!("a level of {value}, over the column's {max}"));
        }
        seen += len;
        if value == max as u32 {
            at_max += len;
        }
        Ok(())
    })?;
    if seen < count {
        return Err(format!("the levels end after {seen} of {count} values"));
    }
    Ok(at_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_counted_across_runs_and_pages() {
        // Rep levels of [a, b, c], [d]: 0 1 1 0, as an RLE run of one 0, a run of two 1s and
        // a run of one 0.
        let page = [0x02, 0x00, 0x04, 0x01, 0x02, 0x00];
        let mut c = RecordCounter::default();
        c.count(&page, 1, 4).unwrap();
        assert_eq!(c.open, 1);
        // A record of 2^20 + 1 values: one 0, then 2^20 ones.
        let mut long = vec![0x02, 0x00];
        let mut header = Vec::new();
        let mut h = (1u64 << 20) << 1;
        while h >= 0x80 {
            header.push(h as u8 | 0x80);
            h >>= 7;
        }
        header.push(h as u8);
        long.extend(header);
        long.push(0x01);
        let e = RecordCounter::default()
            .count(&long, 1, (1 << 20) + 1)
            .unwrap_err();
        assert!(e.contains("1048576"), "{e}");
        // Bit-packed: one group of 8 values at width 1: 0,1,1,1,0,1,1,1 = 0b1110_1110.
        let packed = [0x03, 0b1110_1110];
        let mut c = RecordCounter::default();
        c.count(&packed, 1, 8).unwrap();
        assert_eq!(c.open, 4);
        // Cut short.
        assert!(RecordCounter::default().count(&[0x02], 1, 1).is_err());
        assert!(RecordCounter::default().count(&page, 1, 9).is_err());
    }
}
