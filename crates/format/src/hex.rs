//! Lower-case hexadecimal, as SHA-256 digests appear in manifests, JSON and messages.

/// `bytes` as lower-case hex digits.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Parses exactly 64 hex digits (either case) into 32 bytes.
pub fn unhex32(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let d: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(super::unhex32(&super::hex(&d)), Some(d));
        assert_eq!(super::unhex32(&super::hex(&d).to_uppercase()), Some(d));
        assert_eq!(super::unhex32("zz"), None);
    }
}
