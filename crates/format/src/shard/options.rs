//! [`ReadOptions`]: how every reader checks what it reads, and the [`Verify`] level at the
//! heart of it.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::format::Limits;

/// How much a reader checks of what it reads (spec section 7, "What a read checks").
///
/// Damage on disk or in transit is caught by the CRCs, at memory speed; the image SHA-256s
/// catch only a shard whose index and metadata disagree while every CRC is valid, which a
/// broken writer makes, not damage (a hostile writer writes a consistent shard: the
/// manifest's per-shard SHA-256, checked by `editshard verify` and `mirror`, is what defends
/// against tampering). Hashing runs at about 1 GB/s a core, several times the cost of the
/// CRC, so it is a level to ask for, not the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verify {
    /// Nothing is checked beyond what parsing needs (limits, lengths, structure): damaged
    /// bytes may be returned. For measurements and for salvaging by hand.
    None,
    /// The default. Every byte read is checked against its CRC32 (each frame's body when
    /// streaming; a record's metadata block and each image when reading at random), and a
    /// random read checks its frame's head (header and group table) against the index, so
    /// one record's data never comes back under another's id.
    #[default]
    Crc,
    /// [`Verify::Crc`], plus every image returned is hashed and compared with the SHA-256 in
    /// its record's metadata (a random reader hashes each stored image once while its
    /// shard's footer stays loaded).
    Full,
}

impl Verify {
    /// True when CRCs and frame heads are checked ([`Verify::Crc`] and [`Verify::Full`]).
    pub fn checks_crc(self) -> bool {
        self != Verify::None
    }

    /// True when images are checked against their records' SHA-256 ([`Verify::Full`]).
    pub fn checks_hashes(self) -> bool {
        self == Verify::Full
    }

    /// The level's name: `none`, `crc` or `full`.
    pub fn name(self) -> &'static str {
        match self {
            Verify::None => "none",
            Verify::Crc => "crc",
            Verify::Full => "full",
        }
    }
}

impl fmt::Display for Verify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Verify {
    type Err = Error;
    fn from_str(s: &str) -> Result<Verify> {
        match s {
            "none" => Ok(Verify::None),
            "crc" => Ok(Verify::Crc),
            "full" => Ok(Verify::Full),
            other => Err(Error::invalid(format!(
                "verification level {other:?}: expected \"none\", \"crc\" (the default) or \
                 \"full\" (also each image's SHA-256)"
            ))),
        }
    }
}

/// How a reader checks what it reads.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// What is checked: [`Verify::Crc`] by default.
    pub verify: Verify,
    pub limits: Limits,
}

impl ReadOptions {
    /// The default options at verification level `verify`.
    pub fn verifying(verify: Verify) -> ReadOptions {
        ReadOptions {
            verify,
            ..ReadOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Verify;

    #[test]
    fn levels_parse_from_their_names_and_nothing_else() {
        for v in [Verify::None, Verify::Crc, Verify::Full] {
            assert_eq!(v.name().parse::<Verify>().unwrap(), v);
            assert_eq!(v.to_string(), v.name());
        }
        assert_eq!(Verify::default(), Verify::Crc);
        let e = "sha".parse::<Verify>().unwrap_err();
        assert!(e.to_string().contains("\"full\""), "{e}");
        assert!("Full".parse::<Verify>().is_err());
    }

    #[test]
    fn each_level_checks_what_it_names() {
        assert!(!Verify::None.checks_crc() && !Verify::None.checks_hashes());
        assert!(Verify::Crc.checks_crc() && !Verify::Crc.checks_hashes());
        assert!(Verify::Full.checks_crc() && Verify::Full.checks_hashes());
    }
}
